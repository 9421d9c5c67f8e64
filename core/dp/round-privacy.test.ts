// Tests for per-round privacy cost, composition over rounds and the budget hard stop.
import { describe, expect, it } from 'vitest';
import { BudgetExhaustedError } from '../errors.ts';
import { DEFAULT_ORDERS, epsilonFromRdp, gaussianEpsilon, rdpSkellam } from './accountant.ts';
import { roundingL2Bound } from './noise.ts';
import {
  checkBudget,
  perRobotSkellamMu,
  privacySpent,
  roundRdp,
  validateRoundPrivacy,
  type RoundPrivacyParams,
} from './round-privacy.ts';

const local: RoundPrivacyParams = {
  mode: 'local',
  clip: 1,
  noiseMultiplier: 1.1,
  delta: 1e-5,
  epsilonBudget: 8,
  quorum: 10,
  dimension: 4096,
  scale: 256,
};
const distributed: RoundPrivacyParams = { ...local, mode: 'distributed' };
const off: RoundPrivacyParams = { ...local, mode: 'off' };

describe('validateRoundPrivacy', () => {
  it('off needs nothing else', () => {
    expect(() =>
      validateRoundPrivacy({ params: { mode: 'off', clip: NaN, noiseMultiplier: -1, delta: 5, epsilonBudget: 0, quorum: 0, dimension: 0, scale: 0 } }),
    ).not.toThrow();
  });

  it('accepts valid local and distributed params', () => {
    expect(() => validateRoundPrivacy({ params: local })).not.toThrow();
    expect(() => validateRoundPrivacy({ params: distributed })).not.toThrow();
  });

  it('names the offending field', () => {
    const cases: [Partial<RoundPrivacyParams>, RegExp][] = [
      [{ clip: 0 }, /"params\.clip"/],
      [{ noiseMultiplier: 0 }, /"params\.noiseMultiplier"/],
      [{ delta: 0 }, /"params\.delta"/],
      [{ delta: 1 }, /"params\.delta"/],
      [{ epsilonBudget: 0 }, /"params\.epsilonBudget"/],
      [{ quorum: 0 }, /"params\.quorum"/],
      [{ quorum: 2.5 }, /"params\.quorum"/],
    ];
    cases.push([{ clip: NaN }, /"params\.clip"/], [{ delta: '0.1' as never }, /"params\.delta"/]);
    for (const [patch, re] of cases) {
      expect(() => validateRoundPrivacy({ params: { ...local, ...patch } })).toThrow(RangeError);
      expect(() => validateRoundPrivacy({ params: { ...local, ...patch } })).toThrow(re);
      expect(() => validateRoundPrivacy({ params: { ...distributed, ...patch } })).toThrow(re);
    }
    expect(() => validateRoundPrivacy({ params: { ...local, mode: 'central' as never } })).toThrow(/"params\.mode"/);
  });

  it('distributed also needs dimension and scale; local does not', () => {
    expect(() => validateRoundPrivacy({ params: { ...distributed, dimension: 0 } })).toThrow(/"params\.dimension"/);
    expect(() => validateRoundPrivacy({ params: { ...distributed, scale: 0 } })).toThrow(/"params\.scale"/);
    expect(() => validateRoundPrivacy({ params: { ...local, dimension: 0, scale: 0 } })).not.toThrow();
  });
});

describe('roundRdp', () => {
  it('local: Gaussian with full participation, alpha / (2 z^2), independent of clip and scale', () => {
    const rdp = roundRdp({ params: local });
    DEFAULT_ORDERS.forEach((a, i) => expect(rdp[i]).toBeCloseTo(a / (2 * 1.1 * 1.1), 13));
    const other = roundRdp({ params: { ...local, clip: 7, scale: 3 } });
    expect(Array.from(other)).toEqual(Array.from(rdp));
  });

  it('distributed: Skellam with D2 = roundingL2Bound(C*s, d), D1 = min(D2^2, sqrt(d) D2), mu = (zCs)^2/2', () => {
    const cs = distributed.clip * distributed.scale;
    const d2 = roundingL2Bound({ scaledClip: cs, dimension: distributed.dimension });
    const d1 = Math.min(d2 * d2, Math.sqrt(distributed.dimension) * d2);
    const mu = (distributed.noiseMultiplier * cs) ** 2 / 2;
    const expected = rdpSkellam({ l1Sensitivity: d1, l2Sensitivity: d2, mu, steps: 1 });
    expect(Array.from(roundRdp({ params: distributed }))).toEqual(Array.from(expected));
  });

  it('distributed costs at least as much as local and converges to it with fine quantization', () => {
    // epsilon, where only the minimum over orders matters, converges too
    const e = (p: RoundPrivacyParams) => privacySpent({ rounds: [p, p, p], delta: 1e-5 }).epsilon;
    expect(e({ ...distributed, scale: 2 ** 16 }) / e(local)).toBeLessThan(1.01);
    const coarse = roundRdp({ params: distributed });
    const fine = roundRdp({ params: { ...distributed, scale: 2 ** 16 } });
    const gaussian = roundRdp({ params: local });
    for (let i = 0; i < gaussian.length; i++) {
      expect(coarse[i]!).toBeGreaterThan(gaussian[i]!);
      expect(fine[i]!).toBeGreaterThanOrEqual(gaussian[i]!);
      // at integer orders the Skellam bound tends to the Gaussian one; fractional orders interpolate
      if (Number.isInteger(DEFAULT_ORDERS[i])) expect(fine[i]! / gaussian[i]!).toBeLessThan(1.001);
    }
  });

  it('off: refused, there is no guarantee', () => {
    expect(() => roundRdp({ params: off })).toThrow(RangeError);
  });
});

describe('perRobotSkellamMu', () => {
  it('is the total mu split across the quorum', () => {
    const total = (1.1 * 1 * 256) ** 2 / 2;
    expect(perRobotSkellamMu({ params: distributed })).toBeCloseTo(total / 10, 9);
    // quorum honest robots together reach the total
    expect(perRobotSkellamMu({ params: distributed }) * distributed.quorum).toBeCloseTo(total, 9);
  });

  it('only applies to distributed mode', () => {
    expect(() => perRobotSkellamMu({ params: local })).toThrow(/"params\.mode"/);
  });
});

describe('privacySpent', () => {
  it('composes local rounds like a q = 1 Gaussian over that many steps', () => {
    const rounds = Array.from({ length: 5 }, () => local);
    const spent = privacySpent({ rounds, delta: 1e-5 });
    const direct = gaussianEpsilon({ noiseMultiplier: 1.1, sampleRate: 1, steps: 5, delta: 1e-5 });
    expect(spent.epsilon).toBeCloseTo(direct.epsilon, 12);
    expect(spent.order).toBe(direct.order);
  });

  it('mixes modes by adding RDP per order', () => {
    const orders = [2, 4, 8, 16, 32];
    const mixed = privacySpent({ rounds: [local, distributed], delta: 1e-6, orders });
    const a = roundRdp({ params: local, orders });
    const b = roundRdp({ params: distributed, orders });
    const expected = epsilonFromRdp({ rdp: a.map((v, i) => v + b[i]!), orders, delta: 1e-6 });
    expect(mixed).toEqual(expected);
  });

  it('grows with every round', () => {
    let previous = 0;
    for (let k = 1; k <= 6; k++) {
      const e = privacySpent({ rounds: Array.from({ length: k }, () => distributed), delta: 1e-5 }).epsilon;
      expect(e).toBeGreaterThan(previous);
      previous = e;
    }
  });

  it('refuses off rounds; no rounds spend nothing', () => {
    expect(() => privacySpent({ rounds: [local, off], delta: 1e-5 })).toThrow(/"rounds\[1\]\.mode"/);
    expect(privacySpent({ rounds: [], delta: 1e-5 }).epsilon).toBe(0);
  });
});

describe('checkBudget', () => {
  it('returns the epsilon after the round when it fits', () => {
    const { epsilonAfter } = checkBudget({ spentRounds: [local, local], next: local, budget: 100, delta: 1e-5 });
    expect(epsilonAfter).toBeCloseTo(privacySpent({ rounds: [local, local, local], delta: 1e-5 }).epsilon, 14);
  });

  it('is a hard stop once the budget would be exceeded', () => {
    const spent: RoundPrivacyParams[] = [];
    const budget = 8;
    let accepted = 0;
    for (;;) {
      try {
        checkBudget({ spentRounds: spent, next: local, budget, delta: 1e-5 });
      } catch (error) {
        expect(error).toBeInstanceOf(BudgetExhaustedError);
        const e = error as InstanceType<typeof BudgetExhaustedError>;
        expect(e.code).toBe('dp_budget_exhausted');
        expect(e.status).toBe(403);
        expect(e.details?.budget).toBe(budget);
        expect(e.details?.epsilonAfter as number).toBeGreaterThan(budget);
        expect(e.message).toContain(String(budget));
        expect(e.message).toContain(String(e.details?.epsilonAfter));
        break;
      }
      spent.push(local);
      accepted++;
    }
    expect(accepted).toBeGreaterThan(0);
    expect(privacySpent({ rounds: spent, delta: 1e-5 }).epsilon).toBeLessThanOrEqual(budget);
  });

  it('refuses an off round as `next`', () => {
    expect(() => checkBudget({ spentRounds: [], next: off, budget: 1, delta: 1e-5 })).toThrow(RangeError);
  });
});
