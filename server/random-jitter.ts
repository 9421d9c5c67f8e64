// Retry jitter for the server: a uniform fraction in [0, 1) from the CSPRNG. Jitter is not a secret,
// but one randomness source keeps the rule simple: no Math.random anywhere in product code.
export function jitterFraction(): number {
  return globalThis.crypto.getRandomValues(new Uint32Array(1))[0]! / 2 ** 32;
}
