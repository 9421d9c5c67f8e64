// The one place core/ draws randomness: the platform CSPRNG (crypto.getRandomValues), never Math.random.

const MAX_CHUNK = 65536; // getRandomValues refuses more than 64 KiB per call

export function randomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let off = 0; off < length; off += MAX_CHUNK) {
    globalThis.crypto.getRandomValues(out.subarray(off, Math.min(length, off + MAX_CHUNK)));
  }
  return out;
}

/**
 * A buffered source of uniform doubles in [0, 1) with 53 random bits each, drawn from the CSPRNG
 * in 64 KiB batches so hot loops (noise, stochastic rounding) do not pay a call per value.
 */
export class UniformSource {
  private words = new Uint32Array(MAX_CHUNK / 4);
  private pos = this.words.length;

  private refill(): void {
    globalThis.crypto.getRandomValues(this.words);
    this.pos = 0;
  }

  /** Uniform in [0, 1) with 53 bits of precision. */
  next(): number {
    if (this.pos + 2 > this.words.length) this.refill();
    const hi = this.words[this.pos++]! >>> 5; // 27 bits
    const lo = this.words[this.pos++]! >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform in (0, 1]: safe to take the logarithm of. */
  nextOpenZero(): number {
    return 1 - this.next();
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    if (this.pos + 1 > this.words.length) this.refill();
    return this.words[this.pos++]!;
  }
}
