// Tests for the RDP accountant against published TF Privacy / dp_accounting / Opacus values (tests/vectors/dp/).
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_ORDERS,
  epsilonFromRdp,
  gaussianEpsilon,
  rdpSkellam,
  rdpSubsampledGaussian,
} from './accountant.ts';
import tfDpSgd from '../../tests/vectors/dp/tf-privacy-dp-sgd.json';
import rdpVectors from '../../tests/vectors/dp/rdp-subsampled-gaussian.json';
import conversionVectors from '../../tests/vectors/dp/rdp-conversion.json';
import opacusVectors from '../../tests/vectors/dp/opacus-rdp.json';
import logAVectors from '../../tests/vectors/dp/log-a-mpmath.json';

const num = (v: number | string): number => (v === 'Infinity' ? Infinity : (v as number));

describe('DEFAULT_ORDERS', () => {
  it('is the Opacus default list', () => {
    expect(DEFAULT_ORDERS).toHaveLength(99 + 52);
    expect(DEFAULT_ORDERS[0]).toBe(1.1);
    expect(DEFAULT_ORDERS[98]).toBe(1 + 99 / 10);
    expect(DEFAULT_ORDERS[99]).toBe(12);
    expect(DEFAULT_ORDERS.at(-1)).toBe(63);
  });
});

describe('gaussianEpsilon: TF Privacy compute_dp_sgd_privacy_test', () => {
  for (const c of tfDpSgd.cases) {
    it(`${c.name}: n=${c.n} batch=${c.batchSize} sigma=${c.noiseMultiplier} epochs=${c.epochs}`, () => {
      const steps = Math.ceil((c.epochs * c.n) / c.batchSize);
      const { epsilon, order } = gaussianEpsilon({
        noiseMultiplier: c.noiseMultiplier,
        sampleRate: c.batchSize / c.n,
        steps,
        delta: c.delta,
        orders: tfDpSgd.orders,
      });
      expect(Math.abs(epsilon - c.epsilon) / c.epsilon).toBeLessThan(1e-9);
      expect(order).toBe(c.order);
    });
  }

  it('the headline check also holds with DEFAULT_ORDERS (order 19 is in both lists)', () => {
    const { epsilon, order } = gaussianEpsilon({ noiseMultiplier: 1.3, sampleRate: 0.0025, steps: 6000, delta: 1e-5 });
    expect(Math.abs(epsilon - 0.7242234026109595) / 0.7242234026109595).toBeLessThan(1e-9);
    expect(order).toBe(19);
  });
});

describe('rdpSubsampledGaussian: published RDP values', () => {
  for (const c of rdpVectors.cases) {
    it(c.source.split(' ').at(-1)!, () => {
      const orders = c.orders.map(num);
      const rdp = rdpSubsampledGaussian({ sampleRate: c.sampleRate, noiseMultiplier: c.noiseMultiplier, steps: c.steps, orders });
      c.rdp.map(num).forEach((expected, i) => {
        if (expected === Infinity) expect(rdp[i]).toBe(Infinity);
        else expect(Math.abs(rdp[i]! - expected)).toBeLessThanOrEqual(c.absTolerance);
      });
    });
  }

  it('dp_accounting (absolute-value series): equal at integer orders, an upper bound at fractional ones', () => {
    for (const c of rdpVectors.upperBounds) {
      const orders = c.orders.map(num);
      const rdp = rdpSubsampledGaussian({ sampleRate: c.sampleRate, noiseMultiplier: c.noiseMultiplier, steps: c.steps, orders });
      c.rdp.map(num).forEach((expected, i) => {
        if (expected === Infinity) return expect(rdp[i]).toBe(Infinity);
        if (Number.isInteger(orders[i])) expect(Math.abs(rdp[i]! - expected) / expected).toBeLessThan(c.relTolerance);
        else expect(rdp[i]!).toBeLessThanOrEqual(expected * (1 + c.relTolerance));
      });
    }
  });

  it('log A_alpha agrees with multi-precision quadrature on TF Privacy\'s extreme parameters', () => {
    for (const c of logAVectors.cases) {
      const rdp = rdpSubsampledGaussian({ sampleRate: c.q, noiseMultiplier: c.sigma, steps: 1, orders: [c.order] });
      const logA = rdp[0]! * (c.order - 1);
      expect(Math.abs(logA - c.logA) / Math.abs(c.logA)).toBeLessThan(logAVectors.relTolerance);
    }
  });

  it('q = 1 is the Gaussian closed form alpha / (2 sigma^2), times steps', () => {
    const orders = [1.5, 2, 7.25, 32, 256];
    const rdp = rdpSubsampledGaussian({ sampleRate: 1, noiseMultiplier: 1.7, steps: 3, orders });
    orders.forEach((a, i) => expect(rdp[i]).toBeCloseTo((3 * a) / (2 * 1.7 * 1.7), 14));
  });

  it('q = 0, sigma = 0 and steps = 0 edge cases', () => {
    expect(Array.from(rdpSubsampledGaussian({ sampleRate: 0, noiseMultiplier: 1, steps: 5, orders: [2, 3] }))).toEqual([0, 0]);
    expect(Array.from(rdpSubsampledGaussian({ sampleRate: 0.1, noiseMultiplier: 0, steps: 5, orders: [2] }))).toEqual([Infinity]);
    expect(Array.from(rdpSubsampledGaussian({ sampleRate: 0.1, noiseMultiplier: 0, steps: 0, orders: [2] }))).toEqual([0]);
  });

  it('is monotone: grows with q, steps and the order, shrinks with sigma', () => {
    const base = { sampleRate: 0.01, noiseMultiplier: 1.1, steps: 100 };
    const r = rdpSubsampledGaussian(base);
    const moreQ = rdpSubsampledGaussian({ ...base, sampleRate: 0.02 });
    const moreSteps = rdpSubsampledGaussian({ ...base, steps: 200 });
    const moreSigma = rdpSubsampledGaussian({ ...base, noiseMultiplier: 1.5 });
    for (let i = 0; i < r.length; i++) {
      expect(moreQ[i]!).toBeGreaterThan(r[i]!);
      expect(moreSteps[i]!).toBeCloseTo(2 * r[i]!, 12);
      expect(moreSigma[i]!).toBeLessThan(r[i]!);
      if (i > 0) expect(r[i]!).toBeGreaterThanOrEqual(r[i - 1]! * (1 - 1e-12));
    }
  });

  it('never exceeds the unsampled Gaussian (q = 1) value', () => {
    for (const q of [1e-6, 0.003, 0.2, 0.9, 0.999]) {
      const sub = rdpSubsampledGaussian({ sampleRate: q, noiseMultiplier: 0.8, steps: 1 });
      const full = rdpSubsampledGaussian({ sampleRate: 1, noiseMultiplier: 0.8, steps: 1 });
      sub.forEach((v, i) => expect(v).toBeLessThanOrEqual(full[i]! * (1 + 1e-9)));
    }
  });

  it('rejects bad arguments with the field name', () => {
    expect(() => rdpSubsampledGaussian({ sampleRate: 1.5, noiseMultiplier: 1, steps: 1 })).toThrow(/"sampleRate"/);
    expect(() => rdpSubsampledGaussian({ sampleRate: 0.1, noiseMultiplier: -1, steps: 1 })).toThrow(/"noiseMultiplier"/);
    expect(() => rdpSubsampledGaussian({ sampleRate: 0.1, noiseMultiplier: 1, steps: 1.5 })).toThrow(/"steps"/);
    expect(() => rdpSubsampledGaussian({ sampleRate: 0.1, noiseMultiplier: 1, steps: 1, orders: [1] })).toThrow(/"orders\[0\]"/);
  });
});

describe('epsilonFromRdp: published conversions', () => {
  for (const c of conversionVectors.cases) {
    it(c.kind, () => {
      let orders: number[];
      let rdp: Float64Array;
      if (c.kind === 'constant') {
        orders = c.orders!;
        rdp = new Float64Array(orders.length).fill(c.rdpConstant!);
      } else {
        const g = c.orderGrid!;
        orders = [];
        for (let i = g.indexStart; i < g.indexEnd; i++) orders.push(g.scale * i);
        rdp = rdpSubsampledGaussian({ sampleRate: c.sampleRate!, noiseMultiplier: c.noiseMultiplier!, steps: c.steps!, orders });
      }
      const { epsilon, order } = epsilonFromRdp({ rdp, orders, delta: c.delta });
      expect(Math.abs(epsilon - c.epsilon)).toBeLessThan(c.absTolerance);
      if (c.order !== undefined) expect(order).toBe(c.order);
    });
  }

  it('matches Balle et al. 2020 Thm 21 term by term and takes the minimum', () => {
    const orders = [2, 5, 10];
    const rdp = new Float64Array([0.5, 1, 3]);
    const delta = 1e-6;
    const each = orders.map((a, i) => rdp[i]! - (Math.log(delta) + Math.log(a)) / (a - 1) + Math.log((a - 1) / a));
    const best = Math.min(...each);
    const { epsilon, order } = epsilonFromRdp({ rdp, orders, delta });
    expect(epsilon).toBeCloseTo(best, 14);
    expect(order).toBe(orders[each.indexOf(best)]);
  });

  it('zero RDP costs nothing; infinite RDP everywhere gives infinity', () => {
    expect(epsilonFromRdp({ rdp: new Float64Array(3), orders: [2, 3, 4], delta: 1e-5 }).epsilon).toBe(0);
    const inf = epsilonFromRdp({ rdp: new Float64Array([Infinity, Infinity]), orders: [2, 3], delta: 1e-5 });
    expect(inf.epsilon).toBe(Infinity);
    expect(inf.order).toBeNaN();
  });

  it('rejects mismatched lengths, negative RDP and delta outside (0, 1)', () => {
    expect(() => epsilonFromRdp({ rdp: new Float64Array(2), orders: [2], delta: 1e-5 })).toThrow(/"rdp"/);
    expect(() => epsilonFromRdp({ rdp: new Float64Array([-1]), orders: [2], delta: 1e-5 })).toThrow(/"rdp\[0\]"/);
    expect(() => epsilonFromRdp({ rdp: new Float64Array([1]), orders: [2], delta: 0 })).toThrow(/"delta"/);
    expect(() => epsilonFromRdp({ rdp: new Float64Array([1]), orders: [2], delta: 1 })).toThrow(/"delta"/);
  });
});

describe('Opacus published values', () => {
  for (const c of opacusVectors.cases) {
    it(c.source.split(' ').slice(-3).join(' '), () => {
      const orders = c.orders === 'default' ? DEFAULT_ORDERS : (c.orders as number[]);
      const total = new Float64Array(orders.length);
      for (const step of c.compositions) {
        const rdp = rdpSubsampledGaussian({ ...step, orders });
        rdp.forEach((v, i) => (total[i]! += v));
      }
      const { epsilon, order } = epsilonFromRdp({ rdp: total, orders, delta: c.delta });
      expect(Math.abs(epsilon - c.epsilon)).toBeLessThan(c.absTolerance);
      if ('order' in c) expect(order).toBe(c.order);
    });
  }
});

describe('gaussianEpsilon monotonicity', () => {
  it('epsilon grows with steps and sampling rate, falls with sigma and delta', () => {
    const base = { noiseMultiplier: 1.0, sampleRate: 0.01, steps: 1000, delta: 1e-5 };
    const e = gaussianEpsilon(base).epsilon;
    expect(gaussianEpsilon({ ...base, steps: 2000 }).epsilon).toBeGreaterThan(e);
    expect(gaussianEpsilon({ ...base, sampleRate: 0.02 }).epsilon).toBeGreaterThan(e);
    expect(gaussianEpsilon({ ...base, noiseMultiplier: 1.2 }).epsilon).toBeLessThan(e);
    expect(gaussianEpsilon({ ...base, delta: 1e-3 }).epsilon).toBeLessThan(e);
  });
});

describe('rdpSkellam', () => {
  // The authors' reference (google-research/federated distributed_dp/accounting_utils.py `_skellam_rdp`)
  // in its own unscaled units: l1, l2 sensitivities and central variance divided by the scale s.
  function referenceSkellamRdp(l1: number, l2: number, centralVar: number, s: number, a: number): number {
    return (a / (2 * centralVar)) * l2 ** 2 + Math.min(((2 * a - 1) * s * l2 ** 2 + 6 * l1) / (4 * s ** 3 * centralVar ** 2), (3 * l1) / (2 * s * centralVar));
  }

  it('equals the reference formula after converting units (variance 2 mu, scale s)', () => {
    const s = 37.5;
    const d2 = 61.2;
    const d1 = 180.4;
    const mu = 812.3;
    const orders = [2, 3, 10, 64];
    const rdp = rdpSkellam({ l1Sensitivity: d1, l2Sensitivity: d2, mu, steps: 4, orders });
    orders.forEach((a, i) => {
      const ref = 4 * referenceSkellamRdp(d1 / s, d2 / s, (2 * mu) / (s * s), s, a);
      expect(Math.abs(rdp[i]! - ref) / ref).toBeLessThan(1e-12);
    });
  });

  it('approaches the Gaussian RDP alpha D2^2 / (2 * variance) when mu is large', () => {
    const rdp = rdpSkellam({ l1Sensitivity: 1e3, l2Sensitivity: 100, mu: 1e9, steps: 1, orders: [8] });
    const gaussian = (8 * 100 * 100) / (2 * 2e9);
    expect(rdp[0]! / gaussian).toBeGreaterThan(1);
    expect(rdp[0]! / gaussian).toBeLessThan(1 + 1e-4);
  });

  it('interpolates (alpha - 1) eps between integer orders at fractional orders', () => {
    const opts = { l1Sensitivity: 20, l2Sensitivity: 10, mu: 50, steps: 1 };
    const [e2, e23, e3, e15] = Array.from(rdpSkellam({ ...opts, orders: [2, 2.3, 3, 1.5] }));
    expect(e23).toBeCloseTo((0.7 * 1 * e2! + 0.3 * 2 * e3!) / 1.3, 14);
    expect(e23!).toBeGreaterThan(e2!);
    expect(e23!).toBeLessThan(e3!);
    expect(e15).toBeCloseTo(e2!, 14); // below 2: (alpha - 1) eps vanishes at alpha = 1
  });

  it('is monotone in order, steps, sensitivity and mu', () => {
    const base = { l1Sensitivity: 30, l2Sensitivity: 12, mu: 400, steps: 2 };
    const r = rdpSkellam(base);
    const more = rdpSkellam({ ...base, l2Sensitivity: 13 });
    const quieter = rdpSkellam({ ...base, mu: 800 });
    for (let i = 0; i < r.length; i++) {
      expect(more[i]!).toBeGreaterThan(r[i]!);
      expect(quieter[i]!).toBeLessThan(r[i]!);
      if (i > 0) expect(r[i]!).toBeGreaterThanOrEqual(r[i - 1]!);
    }
  });

  it('rejects mu <= 0', () => {
    expect(() => rdpSkellam({ l1Sensitivity: 1, l2Sensitivity: 1, mu: 0, steps: 1 })).toThrow(/"mu"/);
  });
});
