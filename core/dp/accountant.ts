// Rényi-DP accountant: RDP curves of the Poisson-subsampled Gaussian and the Skellam mechanisms, and
// the RDP -> (epsilon, delta) conversion. Pure arithmetic, identical on robot, server and browser.
//
// Data flow: mechanism parameters -> rdp[i] at orders[i] (RDP composes by addition, Mironov 2017
// Prop. 1) -> epsilonFromRdp minimises the conversion over the orders.
import { expectFinite, expectInteger } from '../errors.ts';

/** Opacus' default orders: 1.1, 1.2, ..., 10.9, then 12, 13, ..., 63. */
export const DEFAULT_ORDERS: number[] = [
  ...Array.from({ length: 99 }, (_, k) => 1 + (k + 1) / 10),
  ...Array.from({ length: 52 }, (_, k) => 12 + k),
];

// ---------------------------------------------------------------------------------------------
// Log-space helpers
// ---------------------------------------------------------------------------------------------

/** log(exp(x) + exp(y)) without overflow. */
function logAdd(x: number, y: number): number {
  const a = Math.min(x, y);
  const b = Math.max(x, y);
  if (a === -Infinity) return b;
  return Math.log1p(Math.exp(a - b)) + b;
}

class LogSubtractionError extends RangeError {}

/** log(exp(x) - exp(y)); the result must be non-negative (x >= y). */
function logSub(x: number, y: number): number {
  if (x < y) throw new LogSubtractionError(`log-space subtraction expected x >= y, got ${x} < ${y}`);
  if (y === -Infinity) return x;
  if (x === y) return -Infinity;
  const d = Math.expm1(x - y);
  return d === Infinity ? x : Math.log(d) + y;
}

const LOG_SQRT_PI = 0.5 * Math.log(Math.PI);
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/** erfc(x) for 0 <= x <= 2 via the all-positive series erf(x) = 2/sqrt(pi) e^{-x^2} sum 2^n x^{2n+1}/(2n+1)!! (A&S 7.1.6). */
function erfcSmall(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return 1 - TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
}

/**
 * log(erfc(x)) accurate in the far tail, the role scipy's log_ndtr plays in TF Privacy.
 * For x > 2 the Laplace continued fraction erfc(x) = e^{-x^2}/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
 * (A&S 7.1.14), evaluated with the modified Lentz algorithm, so the e^{-x^2} factor stays in log space.
 */
function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) {
    const c = -x > 2 ? Math.exp(logErfc(-x)) : erfcSmall(-x);
    return Math.LN2 + Math.log1p(-c / 2); // erfc(x) = 2 - erfc(-x)
  }
  if (x <= 2) return Math.log(erfcSmall(x));
  if (x === Infinity) return -Infinity;
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 10000; n++) {
    const a = n / 2;
    d = x + a * d;
    d = d === 0 ? tiny : 1 / d;
    c = x + a / c;
    if (c === 0) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return -x * x - LOG_SQRT_PI - Math.log(f);
}

// ---------------------------------------------------------------------------------------------
// Poisson-subsampled Gaussian (Mironov, Talwar, Zhang 2019, arXiv 1908.10530, Section 3.3)
// ---------------------------------------------------------------------------------------------

/**
 * log A_alpha for integer alpha: A_alpha = sum_{i=0}^{alpha} C(alpha,i) q^i (1-q)^{alpha-i} exp((i^2-i)/(2 sigma^2))
 * (Mironov et al. 2019, Section 3.3, the binomial expansion), summed in log space.
 */
function logAInteger(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const twoSigma2 = 2 * sigma * sigma;
  let logA = -Infinity;
  let logBinom = 0; // log C(alpha, 0)
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logBinom += Math.log((alpha - i + 1) / i);
    const s = logBinom + i * logQ + (alpha - i) * log1mQ + (i * i - i) / twoSigma2;
    logA = logAdd(logA, s);
  }
  return logA;
}

/**
 * log A_alpha for fractional alpha: the integral split at z0 = sigma^2 log(1/q - 1) + 1/2 into two
 * convergent series of generalised binomial terms (Mironov et al. 2019, Section 3.3), as TF Privacy's
 * _compute_log_a_frac and Opacus; stops when both new terms fall below e^-30. With `absolute` every
 * term is added with |C(alpha, i)|, as dp_accounting does: an upper bound on A_alpha, used only when
 * the signed series cancels below what doubles can represent.
 */
function logAFractional(q: number, sigma: number, alpha: number, absolute = false): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const twoSigma2 = 2 * sigma * sigma;
  const sqrt2Sigma = Math.SQRT2 * sigma;
  let logAbsCoef = 0; // |C(alpha, 0)| = 1
  let coefPositive = true;
  for (let i = 0; ; i++) {
    if (i > 0) {
      const factor = (alpha - i + 1) / i; // C(alpha,i) = C(alpha,i-1) (alpha-i+1)/i
      logAbsCoef += Math.log(Math.abs(factor));
      if (factor < 0) coefPositive = !coefPositive;
    }
    const j = alpha - i;
    const logT0 = logAbsCoef + i * logQ + j * log1mQ;
    const logT1 = logAbsCoef + j * logQ + i * log1mQ;
    const logE0 = Math.log(0.5) + logErfc((i - z0) / sqrt2Sigma);
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / sqrt2Sigma);
    const logS0 = logT0 + (i * i - i) / twoSigma2 + logE0;
    const logS1 = logT1 + (j * j - j) / twoSigma2 + logE1;
    if (coefPositive || absolute) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30) break;
    if (i > 1_000_000) throw new RangeError(`RDP series did not converge (q=${q}, sigma=${sigma}, alpha=${alpha})`);
  }
  return logAdd(logA0, logA1);
}

function rdpOneStep(q: number, sigma: number, alpha: number): number {
  if (q === 0) return 0;
  if (sigma === 0) return Infinity;
  if (q === 1) return alpha / (2 * sigma * sigma); // Gaussian mechanism (Mironov 2017, Table II)
  if (alpha === Infinity) return Infinity;
  if (Number.isInteger(alpha)) return logAInteger(q, sigma, alpha) / (alpha - 1);
  let logA: number;
  try {
    logA = logAFractional(q, sigma, alpha);
  } catch (error) {
    if (!(error instanceof LogSubtractionError)) throw error;
    logA = logAFractional(q, sigma, alpha, true); // conservative: sum of |terms| >= A_alpha
  }
  return logA / (alpha - 1);
}

function checkOrders(orders: unknown): number[] {
  if (!Array.isArray(orders) || orders.length === 0)
    throw new TypeError(`"orders" expected non-empty number array, got ${Array.isArray(orders) ? 'array(0)' : typeof orders}`);
  for (let i = 0; i < orders.length; i++) {
    const a: unknown = orders[i];
    if (typeof a !== 'number' || Number.isNaN(a) || !(a > 1))
      throw new RangeError(`"orders[${i}]" expected number > 1, got ${String(a)}`);
  }
  return orders as number[];
}

/**
 * RDP of the Poisson-subsampled Gaussian mechanism (sensitivity 1, noise std = noiseMultiplier) after
 * `steps` compositions, at each order. Mironov, Talwar, Zhang 2019 (arXiv 1908.10530), Section 3.3:
 * integer orders by the binomial expansion, fractional orders by the two-series method, as TF Privacy's
 * compute_rdp and Opacus' _compute_rdp. q = 1 gives alpha / (2 sigma^2); q = 0 gives 0.
 */
export function rdpSubsampledGaussian(options: {
  sampleRate: number;
  noiseMultiplier: number;
  steps: number;
  orders?: number[];
}): Float64Array {
  const q = expectFinite('sampleRate', options.sampleRate, 0, 1);
  const sigma = expectFinite('noiseMultiplier', options.noiseMultiplier, 0);
  const steps = expectInteger('steps', options.steps, 0, Number.MAX_SAFE_INTEGER);
  const orders = checkOrders(options.orders ?? DEFAULT_ORDERS);
  const out = new Float64Array(orders.length);
  for (let i = 0; i < orders.length; i++) {
    const r = rdpOneStep(q, sigma, orders[i]!);
    out[i] = r === 0 || steps === 0 ? 0 : r * steps;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Skellam (Agarwal, Kairouz, Liu 2021, "The Skellam Mechanism for Differentially Private FL")
// ---------------------------------------------------------------------------------------------

/**
 * RDP of the multi-dimensional Skellam mechanism on integer vectors: each coordinate gets
 * Poisson(mu) - Poisson(mu) (variance 2 mu); D1, D2 are the L1 / L2 sensitivities in integer units.
 *
 * Agarwal, Kairouz, Liu 2021 (NeurIPS; arXiv 2110.04995), multi-dimensional Skellam RDP bound, as the
 * authors' reference code states it (google-research/federated, distributed_dp/accounting_utils.py,
 * `_skellam_rdp`) with variance V = 2 mu:
 *   eps(alpha) <= alpha D2^2 / (2V) + min( ((2 alpha - 1) D2^2 + 6 D1) / (4 V^2), 3 D1 / (2V) )
 *              =  alpha D2^2 / (4 mu) + min( ((2 alpha - 1) D2^2 + 6 D1) / (16 mu^2), 3 D1 / (4 mu) ).
 * (The reference code works in unscaled units: l2 = D2/s, l1 = D1/s, central_var = V/s^2; substituting
 * gives the line above.) The reference evaluates the bound at integer orders only. At a fractional order
 * alpha = floor + t we interpolate (alpha - 1) eps linearly between the neighbouring integers, valid
 * because (alpha - 1) D_alpha is convex in alpha (van Erven & Harremoës 2014); this is the interpolation
 * dp_accounting uses for fractional orders (Wang, Balle, Kasiviswanathan 2019, Corollary 10). Below 2
 * it gives eps(2), since (alpha - 1) D_alpha vanishes at alpha = 1.
 */
export function rdpSkellam(options: {
  l1Sensitivity: number;
  l2Sensitivity: number;
  mu: number;
  steps: number;
  orders?: number[];
}): Float64Array {
  const d1 = expectFinite('l1Sensitivity', options.l1Sensitivity, 0);
  const d2 = expectFinite('l2Sensitivity', options.l2Sensitivity, 0);
  const mu = expectFinite('mu', options.mu, 0);
  if (!(mu > 0)) throw new RangeError(`"mu" expected number > 0, got ${mu}`);
  const steps = expectInteger('steps', options.steps, 0, Number.MAX_SAFE_INTEGER);
  const orders = checkOrders(options.orders ?? DEFAULT_ORDERS);
  const out = new Float64Array(orders.length);
  if (steps === 0 || (d1 === 0 && d2 === 0)) return out;
  const atInteger = (alpha: number): number =>
    (alpha * d2 * d2) / (4 * mu) + Math.min(((2 * alpha - 1) * d2 * d2 + 6 * d1) / (16 * mu * mu), (3 * d1) / (4 * mu));
  for (let i = 0; i < orders.length; i++) {
    const alpha = orders[i]!;
    let eps: number;
    if (alpha === Infinity) eps = Infinity;
    else if (Number.isInteger(alpha)) eps = atInteger(alpha);
    else {
      const lo = Math.floor(alpha);
      const t = alpha - lo;
      const cgfLo = lo === 1 ? 0 : (lo - 1) * atInteger(lo); // (alpha - 1) eps(alpha) at the integers
      const cgfHi = lo * atInteger(lo + 1);
      eps = ((1 - t) * cgfLo + t * cgfHi) / (alpha - 1);
    }
    out[i] = eps * steps;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// RDP -> (epsilon, delta)
// ---------------------------------------------------------------------------------------------

/**
 * Smallest epsilon over the orders such that the mechanism is (epsilon, delta)-DP.
 * Balle, Barthe, Gaboardi, Hsu, Sato 2020 ("Hypothesis testing interpretations and Rényi DP", AISTATS;
 * arXiv 1905.09982), Theorem 21: eps = rdp + log((alpha-1)/alpha) - (log delta + log alpha)/(alpha - 1),
 * as Opacus' get_privacy_spent and dp_accounting's compute_epsilon. Like dp_accounting, an order whose
 * rdp already gives delta >= sqrt(1 - e^{-rdp}) (Bretagnolle–Huber bound on total variation, with
 * KL <= D_alpha for alpha >= 1) yields epsilon 0. An infinite order yields eps = rdp (pure DP).
 * Ties keep the first order. If every order gives an infinite epsilon the result is
 * { epsilon: Infinity, order: NaN }.
 */
export function epsilonFromRdp(options: { rdp: Float64Array; orders: number[]; delta: number }): {
  epsilon: number;
  order: number;
} {
  const { rdp } = options;
  if (!(rdp instanceof Float64Array)) throw new TypeError(`"rdp" expected Float64Array, got ${typeof rdp}`);
  const orders = checkOrders(options.orders);
  if (rdp.length !== orders.length)
    throw new RangeError(`"rdp" expected Float64Array(${orders.length}) to match orders, got Float64Array(${rdp.length})`);
  const delta = expectFinite('delta', options.delta, 0, 1);
  if (!(delta > 0 && delta < 1)) throw new RangeError(`"delta" expected number in (0, 1), got ${delta}`);
  const logDelta = Math.log(delta);
  let best = Infinity;
  let bestOrder = NaN;
  for (let i = 0; i < orders.length; i++) {
    const alpha = orders[i]!;
    const r = rdp[i]!;
    if (Number.isNaN(r)) throw new RangeError(`"rdp[${i}]" expected number >= 0, got NaN`);
    if (r < 0) throw new RangeError(`"rdp[${i}]" expected number >= 0, got ${r}`);
    let eps: number;
    if (r === Infinity) eps = Infinity;
    else if (delta * delta + Math.expm1(-r) > 0) eps = 0;
    else if (alpha === Infinity) eps = r;
    else eps = r + Math.log1p(-1 / alpha) - (logDelta + Math.log(alpha)) / (alpha - 1);
    if (eps < best) {
      best = eps;
      bestOrder = alpha;
    }
  }
  return { epsilon: Math.max(0, best), order: bestOrder };
}

/** DP-SGD style convenience: epsilon of `steps` Poisson-subsampled Gaussian steps at `delta`. */
export function gaussianEpsilon(options: {
  noiseMultiplier: number;
  sampleRate: number;
  steps: number;
  delta: number;
  orders?: number[];
}): { epsilon: number; order: number } {
  const orders = options.orders ?? DEFAULT_ORDERS;
  const rdp = rdpSubsampledGaussian({
    sampleRate: options.sampleRate,
    noiseMultiplier: options.noiseMultiplier,
    steps: options.steps,
    orders,
  });
  return epsilonFromRdp({ rdp, orders, delta: options.delta });
}
