// Tests for the DP mechanisms: clipping exactness, and statistical checks (6-sigma tolerances) of the samplers.
import { describe, expect, it } from 'vitest';
import { UniformSource } from '../random.ts';
import {
  addGaussianNoise,
  addSkellamNoise,
  clipL2,
  conditionalRandomizedRounding,
  l2Norm,
  roundingL2Bound,
  samplePoisson,
} from './noise.ts';

const random = new UniformSource();

function moments(xs: ArrayLike<number>): { mean: number; variance: number } {
  let sum = 0;
  for (let i = 0; i < xs.length; i++) sum += xs[i]!;
  const mean = sum / xs.length;
  let ss = 0;
  for (let i = 0; i < xs.length; i++) ss += (xs[i]! - mean) ** 2;
  return { mean, variance: ss / (xs.length - 1) };
}

function randomVector(n: number, scale: number): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = (random.next() * 2 - 1) * scale;
  return v;
}

describe('l2Norm and clipL2', () => {
  it('computes the Euclidean norm', () => {
    expect(l2Norm({ values: new Float32Array([3, 4]) })).toBe(5);
    expect(l2Norm({ values: new Float32Array(0) })).toBe(0);
  });

  it('leaves an update within the clip unchanged (as a copy)', () => {
    const values = new Float32Array([0.3, -0.4]);
    const r = clipL2({ values, clip: 1 });
    expect(r.clipped).toBe(false);
    expect(r.norm).toBeCloseTo(0.5, 7);
    expect(Array.from(r.values)).toEqual(Array.from(values));
    expect(r.values).not.toBe(values);
  });

  it('scales larger updates to norm <= clip exactly, preserving direction', () => {
    for (const [n, scale, clip] of [
      [10, 5, 1],
      [100_000, 1, 0.37],
      [4097, 1e3, 1e-3],
      [1, 7, 2],
    ] as const) {
      const values = randomVector(n, scale);
      if (n === 1) values[0] = -scale;
      const before = Float32Array.from(values);
      const r = clipL2({ values, clip });
      expect(r.clipped).toBe(true);
      const after = l2Norm({ values: r.values });
      expect(after).toBeLessThanOrEqual(clip);
      expect(after).toBeGreaterThan(clip * (1 - 1e-5));
      const ratio = r.values[0]! / values[0]!;
      expect(ratio).toBeCloseTo(clip / r.norm, 5);
      expect(Array.from(values)).toEqual(Array.from(before)); // input untouched
    }
  });

  it('rejects a non-positive clip and non-finite entries', () => {
    expect(() => clipL2({ values: new Float32Array(2), clip: 0 })).toThrow(/"clip"/);
    expect(() => clipL2({ values: new Float32Array([NaN]), clip: 1 })).toThrow(/"values"/);
  });
});

describe('addGaussianNoise', () => {
  it('adds N(0, sigma^2): mean and variance over 1e5 draws', () => {
    const n = 100_001; // odd length exercises the unpaired last draw
    const sigma = 2.5;
    const values = new Float32Array(n).fill(1);
    const noisy = addGaussianNoise({ values, sigma, random });
    expect(noisy).not.toBe(values);
    expect(values[0]).toBe(1);
    const { mean, variance } = moments(noisy);
    expect(Math.abs(mean - 1)).toBeLessThan((6 * sigma) / Math.sqrt(n));
    expect(Math.abs(variance / (sigma * sigma) - 1)).toBeLessThan(6 * Math.sqrt(2 / n));
    let beyond = 0; // P(|Z| > 2) = 0.0455
    for (const x of noisy) if (Math.abs(x - 1) > 2 * sigma) beyond++;
    expect(Math.abs(beyond / n - 0.0455)).toBeLessThan(6 * Math.sqrt((0.0455 * 0.9545) / n));
  });

  it('sigma 0 returns a copy', () => {
    const values = new Float32Array([1, 2, 3]);
    expect(Array.from(addGaussianNoise({ values, sigma: 0, random }))).toEqual([1, 2, 3]);
  });
});

describe('samplePoisson', () => {
  for (const lambda of [0.05, 0.7, 3.5, 9.99, 10, 42.5, 1e4, 3.3e7]) {
    it(`lambda = ${lambda}: mean and variance over 1e5 draws`, () => {
      const n = 100_000;
      const xs = new Float64Array(n);
      for (let i = 0; i < n; i++) xs[i] = samplePoisson({ lambda, random });
      expect(xs.every((x) => Number.isInteger(x) && x >= 0)).toBe(true);
      const { mean, variance } = moments(xs);
      expect(Math.abs(mean - lambda)).toBeLessThan(6 * Math.sqrt(lambda / n));
      // Var of the sample variance ~ (mu4 - sigma^4)/n with mu4 = lambda (1 + 3 lambda)
      expect(Math.abs(variance - lambda)).toBeLessThan(6 * Math.sqrt((lambda + 2 * lambda * lambda) / n));
    });
  }

  it('matches the Poisson pmf point by point (PTRS region, lambda = 12.3)', () => {
    const lambda = 12.3;
    const n = 200_000;
    const counts = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const k = samplePoisson({ lambda, random });
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    let logP = -lambda; // log pmf(0)
    for (let k = 0; k <= 30; k++) {
      if (k > 0) logP += Math.log(lambda / k);
      const p = Math.exp(logP);
      const freq = (counts.get(k) ?? 0) / n;
      expect(Math.abs(freq - p)).toBeLessThan(6 * Math.sqrt((p * (1 - p)) / n) + 1e-6);
    }
  });

  it('lambda 0 gives 0; negative or huge lambda is refused', () => {
    expect(samplePoisson({ lambda: 0, random })).toBe(0);
    expect(() => samplePoisson({ lambda: -1, random })).toThrow(/"lambda"/);
    expect(() => samplePoisson({ lambda: 1e16, random })).toThrow(/"lambda"/);
  });
});

describe('addSkellamNoise', () => {
  for (const mu of [0.4, 2, 300, 5e5]) {
    it(`mu = ${mu}: integer output, mean 0, variance 2 mu`, () => {
      const n = 100_000;
      const integers = new Float64Array(n).fill(-7);
      const out = addSkellamNoise({ integers, mu, random });
      expect(integers[0]).toBe(-7);
      const noise = out.map((x) => x + 7);
      expect(noise.every((x) => Number.isInteger(x))).toBe(true);
      const { mean, variance } = moments(noise);
      expect(Math.abs(mean)).toBeLessThan(6 * Math.sqrt((2 * mu) / n));
      // Skellam excess kurtosis is 1/(2 mu): Var(s^2) ~ (2 (2mu)^2 + 2mu) / n
      expect(Math.abs(variance - 2 * mu)).toBeLessThan(6 * Math.sqrt((2 * (2 * mu) ** 2 + 2 * mu) / n));
    });
  }

  it('refuses non-integer inputs', () => {
    expect(() => addSkellamNoise({ integers: new Float64Array([1.5]), mu: 1, random })).toThrow(/"integers\[0\]"/);
  });
});

describe('roundingL2Bound', () => {
  // google-research/federated distributed_dp/accounting_utils.py rounded_l2_norm_bound, transcribed.
  function reference(c: number, beta: number, d: number): number {
    const bound1 = c + Math.sqrt(d);
    if (beta === 0) return bound1;
    const sq = c * c + 0.25 * d + Math.sqrt(2 * Math.log(1 / beta)) * (c + 0.5 * Math.sqrt(d));
    return Math.min(bound1, Math.sqrt(sq));
  }

  it('matches the reference for several (c, d, beta)', () => {
    for (const [c, d, beta] of [
      [1, 1, Math.exp(-0.5)],
      [1024, 65536, Math.exp(-0.5)],
      [10, 1e7, 1e-3],
      [0.5, 16, 0],
      [3, 2, 0.9],
    ] as const) {
      expect(roundingL2Bound({ scaledClip: c, dimension: d, beta })).toBeCloseTo(reference(c, beta, d), 10);
    }
    expect(roundingL2Bound({ scaledClip: 50, dimension: 100 })).toBeCloseTo(reference(50, Math.exp(-0.5), 100), 12);
  });

  it('never exceeds the deterministic worst case c + sqrt(d)', () => {
    for (const d of [1, 10, 1000, 1e6]) expect(roundingL2Bound({ scaledClip: 7, dimension: d })).toBeLessThanOrEqual(7 + Math.sqrt(d));
  });

  it('rejects beta outside [0, 1) and a non-integer dimension', () => {
    expect(() => roundingL2Bound({ scaledClip: 1, dimension: 4, beta: 1 })).toThrow(/"beta"/);
    expect(() => roundingL2Bound({ scaledClip: 1, dimension: 4.5 })).toThrow(/"dimension"/);
  });
});

describe('conditionalRandomizedRounding', () => {
  it('always meets the bound and is unbiased on average', () => {
    const d = 256;
    const c = 40; // scaled clip
    const x = randomVector(d, 1);
    const scaleTo = c / l2Norm({ values: x });
    for (let i = 0; i < d; i++) x[i] = x[i]! * scaleTo;
    const l2Bound = roundingL2Bound({ scaledClip: c, dimension: d });
    const trials = 4000;
    const sums = new Float64Array(d);
    let offGrid = 0;
    let overBound = 0;
    for (let t = 0; t < trials; t++) {
      const r = conditionalRandomizedRounding({ values: x, l2Bound, random });
      let ss = 0;
      for (let i = 0; i < d; i++) {
        const v = r[i]!;
        if (v !== Math.floor(x[i]!) && v !== Math.floor(x[i]!) + 1) offGrid++;
        ss += v * v;
        sums[i]! += v;
      }
      if (Math.sqrt(ss) > l2Bound) overBound++;
    }
    expect(offGrid).toBe(0);
    expect(overBound).toBe(0);
    let meanError = 0;
    for (let i = 0; i < d; i++) {
      const err = sums[i]! / trials - x[i]!;
      expect(Math.abs(err)).toBeLessThan(6 * 0.5 / Math.sqrt(trials)); // per coordinate: Bernoulli sd <= 1/2
      meanError += err / d;
    }
    expect(Math.abs(meanError)).toBeLessThan(6 * 0.5 / Math.sqrt(trials * d));
  });

  it('keeps integers as they are', () => {
    const r = conditionalRandomizedRounding({ values: new Float32Array([3, -2, 0]), l2Bound: 4, random });
    expect(Array.from(r)).toEqual([3, -2, 0]);
  });

  it('throws after maxAttempts when the bound cannot be met', () => {
    const values = new Float32Array([2.5, 2.5, 2.5, 2.5]);
    expect(() => conditionalRandomizedRounding({ values, l2Bound: 3, random, maxAttempts: 5 })).toThrow(/"l2Bound"/);
  });
});
