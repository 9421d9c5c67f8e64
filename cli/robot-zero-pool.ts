// A robot agent's pool of precomputed encryptions of zero (the random half of BFV encryption,
// core/he/encrypt-kernel.ts), made while the robot waits between rounds so that a push only adds its
// scaled plaintext to them.
//
// Rules, because an encryption of zero is the randomness of the ciphertext it becomes (whoever holds it
// can subtract it and read the update):
//   - in memory only, in the agent's process, like the unsealed keys; never written to disk or sent;
//   - bound to one HE key (its officer-signed record's fingerprint): a round naming another key gets
//     nothing from this pool, and a new key empties it;
//   - each entry leaves the pool when it is taken and is overwritten by the encryptor after its single
//     use; a push that fails after taking some does not give them back;
//   - wipe() (the agent's stop) overwrites what is left.
import { bytesToHex, equalBytes } from '../core/bytes.ts';
import { createEncryptor, type ZeroEncryptionSource } from '../core/he/seal.ts';

export class ZeroEncryptionPool {
  /** The HE key (record fingerprint) the pooled encryptions belong to. */
  #key: Uint8Array | null = null;
  #zeros: Uint8Array[] = [];

  get size(): number {
    return this.#zeros.length;
  }

  /** The key the pool holds encryptions for (hex fingerprint), or null. */
  get keyFingerprint(): string | null {
    return this.#key ? bytesToHex(this.#key) : null;
  }

  /**
   * Tops the pool up to `target` encryptions of zero under the given key (a verified HE key record's
   * public key and fingerprint); a different key first empties the pool. Returns how many were made.
   */
  async fill(options: { heKeyFingerprint: Uint8Array; publicKey: Uint8Array; paramSetId: string; target: number }): Promise<number> {
    if (!Number.isSafeInteger(options.target) || options.target < 0 || options.target > 100_000) throw new RangeError(`"target" expected 0..100000, got ${options.target}`);
    if (this.#key && !equalBytes(this.#key, options.heKeyFingerprint)) this.wipe();
    this.#key = options.heKeyFingerprint.slice();
    const missing = options.target - this.#zeros.length;
    if (missing <= 0) return 0;
    const encryptor = await createEncryptor({ publicKey: options.publicKey, paramSetId: options.paramSetId });
    try {
      const made = encryptor.encryptZeros(missing);
      this.#zeros.push(...made);
      return made.length;
    } finally {
      encryptor.destroy();
    }
  }

  /** A source of this pool's encryptions for a push to the key with `heKeyFingerprint`, or undefined if the pool holds another key's. */
  sourceFor(heKeyFingerprint: Uint8Array): ZeroEncryptionSource | undefined {
    if (!this.#key || !equalBytes(this.#key, heKeyFingerprint) || this.#zeros.length === 0) return undefined;
    return { take: () => this.#zeros.shift() };
  }

  /** Overwrites and drops every encryption left. */
  wipe(): void {
    for (const z of this.#zeros) z.fill(0);
    this.#zeros = [];
    this.#key = null;
  }
}
