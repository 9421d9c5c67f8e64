// DP mechanisms applied on the robot: L2 clipping, Gaussian noise, Poisson/Skellam noise and
// conditional randomized rounding to integers. Every random draw comes from the CSPRNG (UniformSource).
//
// Local mode:       clipL2 -> addGaussianNoise -> (quantizer's stochastic rounding, post-processing)
// Distributed mode: clipL2 -> scale by s -> conditionalRandomizedRounding -> addSkellamNoise -> mod 2^b
import { expectFinite, expectInteger } from '../errors.ts';
import type { UniformSource } from '../random.ts';

function expectFloat32Array(name: string, value: unknown): Float32Array {
  if (!(value instanceof Float32Array)) throw new TypeError(`"${name}" expected Float32Array, got ${typeof value}`);
  return value;
}

function expectRandom(value: unknown): UniformSource {
  if (typeof value !== 'object' || value === null || typeof (value as UniformSource).next !== 'function')
    throw new TypeError(`"random" expected UniformSource, got ${value === null ? 'null' : typeof value}`);
  return value as UniformSource;
}

/** Euclidean norm, accumulated in double precision. */
export function l2Norm(options: { values: Float32Array }): number {
  const values = expectFloat32Array('values', options.values);
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    sum += v * v;
  }
  return Math.sqrt(sum);
}

/**
 * Scale the whole update by min(1, clip/||x||_2) (Abadi et al. 2016, "Deep Learning with DP", Alg. 1,
 * per-example clipping; here one example = one robot's update), so the L2 sensitivity of a contribution
 * is `clip`. Returns a new array; the input is not modified. The float32 result is checked: if rounding
 * pushed its norm above `clip`, the factor is shrunk until ||result||_2 <= clip holds exactly.
 */
export function clipL2(options: { values: Float32Array; clip: number }): {
  values: Float32Array;
  norm: number;
  clipped: boolean;
} {
  const values = expectFloat32Array('values', options.values);
  const clip = expectFinite('clip', options.clip, 0);
  if (!(clip > 0)) throw new RangeError(`"clip" expected number > 0, got ${clip}`);
  const norm = l2Norm({ values });
  if (!Number.isFinite(norm)) throw new RangeError(`"values" expected finite entries, got norm ${norm}`);
  if (norm <= clip) return { values: Float32Array.from(values), norm, clipped: false };
  const out = new Float32Array(values.length);
  let factor = clip / norm;
  for (let attempt = 0; attempt < 64; attempt++) {
    for (let i = 0; i < values.length; i++) out[i] = values[i]! * factor;
    if (l2Norm({ values: out }) <= clip) return { values: out, norm, clipped: true };
    factor *= 1 - 2 ** -20; // float32 rounding overshoot is ~2^-24 relative; back off a little more
  }
  throw new RangeError(`"clip" could not be met in float32 for clip ${clip}`);
}

/**
 * values + N(0, sigma^2) per coordinate, returned as a new array (the input is not modified).
 * Normal deviates by the Box–Muller transform (Box & Muller 1958), both outputs of each pair used;
 * u1 is drawn in (0, 1] so log(u1) is finite.
 */
export function addGaussianNoise(options: { values: Float32Array; sigma: number; random: UniformSource }): Float32Array {
  const values = expectFloat32Array('values', options.values);
  const sigma = expectFinite('sigma', options.sigma, 0);
  const random = expectRandom(options.random);
  const out = new Float32Array(values.length);
  const n = values.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const r = sigma * Math.sqrt(-2 * Math.log(random.nextOpenZero()));
    const theta = 2 * Math.PI * random.next();
    out[i] = values[i]! + r * Math.cos(theta);
    out[i + 1] = values[i + 1]! + r * Math.sin(theta);
  }
  if (i < n) {
    const r = sigma * Math.sqrt(-2 * Math.log(random.nextOpenZero()));
    out[i] = values[i]! + r * Math.cos(2 * Math.PI * random.next());
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Poisson sampling
// ---------------------------------------------------------------------------------------------

const MAX_LAMBDA = 1e15; // keeps every draw an exactly representable integer

const LOG_FACTORIAL_TABLE_SIZE = 256;
const LOG_FACTORIAL_TABLE: Float64Array = (() => {
  const t = new Float64Array(LOG_FACTORIAL_TABLE_SIZE);
  for (let k = 2; k < LOG_FACTORIAL_TABLE_SIZE; k++) t[k] = t[k - 1]! + Math.log(k);
  return t;
})();

/** log(k!) : table below 256, Stirling's series beyond (error < 1e-17 relative there). */
function logFactorial(k: number): number {
  if (k < LOG_FACTORIAL_TABLE_SIZE) return LOG_FACTORIAL_TABLE[k]!;
  const inv = 1 / k;
  const inv2 = inv * inv;
  return (
    k * Math.log(k) - k + 0.5 * Math.log(2 * Math.PI * k) +
    inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 / 1680)))
  );
}

/**
 * A Poisson(lambda) sampler with its constants precomputed, so long vectors pay the setup once.
 * lambda < 10: inversion by sequential search (Devroye 1986, Non-Uniform Random Variate Generation),
 * one uniform per draw.
 * lambda >= 10: PTRS, transformed rejection with squeeze (Hörmann 1993, "The transformed rejection
 * method for generating Poisson random variables", Insurance: Mathematics and Economics 12, algorithm
 * PTRS), with the constants of that paper as numpy's random_poisson_ptrs uses them.
 */
function poissonSampler(lambda: number, random: UniformSource): () => number {
  if (lambda === 0) return () => 0;
  if (lambda < 10) {
    const p0 = Math.exp(-lambda);
    return () => {
      for (;;) {
        const u = random.next();
        let k = 0;
        let p = p0;
        let cdf = p0;
        while (u > cdf) {
          k++;
          p *= lambda / k;
          cdf += p;
          if (p === 0 || k > 1000) break; // cdf stalled below u by rounding: redraw (probability ~2^-50)
        }
        if (u <= cdf) return k;
      }
    };
  }
  const slam = Math.sqrt(lambda);
  const loglam = Math.log(lambda);
  const b = 0.931 + 2.53 * slam;
  const a = -0.059 + 0.02483 * b;
  const logInvAlpha = Math.log(1.1239 + 1.1328 / (b - 3.4));
  const vr = 0.9277 - 3.6224 / (b - 2);
  return () => {
    for (;;) {
      const u = random.next() - 0.5;
      const v = random.nextOpenZero();
      const us = 0.5 - Math.abs(u);
      const k = Math.floor(((2 * a) / us + b) * u + lambda + 0.43);
      if (us >= 0.07 && v <= vr) return k; // squeeze: accept without evaluating the density
      if (k < 0 || (us < 0.013 && v > us)) continue;
      if (Math.log(v) + logInvAlpha - Math.log(a / (us * us) + b) <= -lambda + k * loglam - logFactorial(k)) return k;
    }
  };
}

function expectLambda(name: string, value: unknown): number {
  return expectFinite(name, value, 0, MAX_LAMBDA);
}

/** One Poisson(lambda) draw, 0 <= lambda <= 1e15 (exact inversion below 10, PTRS from 10). */
export function samplePoisson(options: { lambda: number; random: UniformSource }): number {
  const lambda = expectLambda('lambda', options.lambda);
  return poissonSampler(lambda, expectRandom(options.random))();
}

/**
 * integers + (Poisson(mu) - Poisson(mu)) per coordinate: symmetric Skellam noise of variance 2 mu
 * (Agarwal, Kairouz, Liu 2021, NeurIPS, arXiv 2110.04995). Returns a new array; the input is not modified.
 */
export function addSkellamNoise(options: { integers: Float64Array; mu: number; random: UniformSource }): Float64Array {
  const integers = options.integers;
  if (!(integers instanceof Float64Array)) throw new TypeError(`"integers" expected Float64Array, got ${typeof integers}`);
  const mu = expectLambda('mu', options.mu);
  const draw = poissonSampler(mu, expectRandom(options.random));
  const out = new Float64Array(integers.length);
  for (let i = 0; i < integers.length; i++) {
    const x = integers[i]!;
    if (!Number.isSafeInteger(x)) throw new RangeError(`"integers[${i}]" expected safe integer, got ${x}`);
    out[i] = x + draw() - draw();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Conditional randomized rounding (Kairouz, Liu, Steinke 2021, ICML, arXiv 2102.06387)
// ---------------------------------------------------------------------------------------------

/**
 * Stochastic rounding of each coordinate to floor(x) or floor(x)+1 with P(up) = x - floor(x)
 * (unbiased), redrawn as a whole until ||result||_2 <= l2Bound: the conditional randomized rounding
 * of Kairouz, Liu, Steinke 2021, which makes l2Bound a hard sensitivity bound for the
 * integer vector. With l2Bound from `roundingL2Bound` one draw is accepted with probability >= 1 - beta,
 * so the default 1000 attempts fail with probability <= beta^1000. Conditioning adds a small bias that
 * shrinks with beta (same paper). Throws RangeError when no draw fits within `maxAttempts`.
 */
export function conditionalRandomizedRounding(options: {
  values: Float32Array;
  l2Bound: number;
  random: UniformSource;
  maxAttempts?: number;
}): Float64Array {
  const values = expectFloat32Array('values', options.values);
  const l2Bound = expectFinite('l2Bound', options.l2Bound, 0);
  const random = expectRandom(options.random);
  const maxAttempts = expectInteger('maxAttempts', options.maxAttempts ?? 1000, 1, 1_000_000);
  const n = values.length;
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(values[i]!)) throw new RangeError(`"values[${i}]" expected finite number, got ${values[i]}`);
  }
  const bound2 = l2Bound * l2Bound;
  const out = new Float64Array(n);
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const x = values[i]!;
      const f = Math.floor(x);
      const r = f + (random.next() < x - f ? 1 : 0); // x - f is exact: x is a float32 widened to double
      out[i] = r;
      sum += r * r; // exact while the sum stays below 2^53
    }
    if (sum <= bound2) return out;
  }
  throw new RangeError(
    `"l2Bound" ${l2Bound} not met by conditional rounding after ${maxAttempts} attempts (input norm ${l2Norm({ values })})`,
  );
}

/**
 * The L2 bound that conditional randomized rounding enforces for a vector of norm <= c in d dimensions
 * (Kairouz, Liu, Steinke 2021, arXiv 2102.06387: the authors' code, google-research/federated
 * distributed_dp/accounting_utils.py `rounded_l2_norm_bound`, cites Theorem 1 and Proposition 22):
 *   sqrt( min( c^2 + d/4 + sqrt(2 log(1/beta)) (c + sqrt(d)/2), (c + sqrt(d))^2 ) ),
 * where the second term is the deterministic worst case (each coordinate moves by < 1). beta = 0 means
 * no conditioning: c + sqrt(d). Default beta = exp(-1/2).
 */
export function roundingL2Bound(options: { scaledClip: number; dimension: number; beta?: number }): number {
  const c = expectFinite('scaledClip', options.scaledClip, 0);
  const d = expectInteger('dimension', options.dimension, 1, Number.MAX_SAFE_INTEGER);
  const beta = expectFinite('beta', options.beta ?? Math.exp(-0.5), 0, 1);
  if (beta === 1) throw new RangeError(`"beta" expected number in [0, 1), got 1`);
  const worst = c + Math.sqrt(d);
  if (beta === 0) return worst;
  const squared = c * c + d / 4 + Math.sqrt(2 * Math.log(1 / beta)) * (c + Math.sqrt(d) / 2);
  return Math.min(worst, Math.sqrt(squared));
}
