// Password hashing for people: scrypt N=2^17, r=8, p=1, 16-byte salt, 32-byte key (OWASP ASVS 5.0
// Appendix C). The stored string names its parameters, so they can be raised later without breaking
// old hashes: `scrypt$<log2 N>$<r>$<p>$<salt base64>$<key base64>`.
import { scrypt, randomBytes, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const LOG2_N = 17;
const R = 8;
const P = 1;
const KEY_BYTES = 32;
const SALT_BYTES = 16;
// scrypt needs 128 * N * r bytes (128 MiB at these parameters); allow twice that.
const MAXMEM = 256 * 1024 * 1024;

function derive(password: string, salt: Buffer, params: { log2N: number; r: number; p: number }): Promise<Buffer> {
  const options: ScryptOptions = { N: 2 ** params.log2N, r: params.r, p: params.p, maxmem: MAXMEM };
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFKC'), salt, KEY_BYTES, options, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

export async function hashPassword(options: { password: string }): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(options.password, salt, { log2N: LOG2_N, r: R, p: P });
  return ['scrypt', LOG2_N, R, P, salt.toString('base64'), key.toString('base64')].join('$');
}

/** Constant-time check of a password against a stored hash; false for any malformed hash. */
export async function verifyPassword(options: { password: string; hash: string }): Promise<boolean> {
  const parts = options.hash.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [log2N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![log2N, r, p].every(Number.isSafeInteger) || log2N < 10 || log2N > 20 || r < 1 || r > 32 || p < 1 || p > 16) return false;
  const salt = Buffer.from(parts[4]!, 'base64');
  const expected = Buffer.from(parts[5]!, 'base64');
  if (expected.length !== KEY_BYTES) return false;
  const key = await derive(options.password, salt, { log2N, r, p });
  return timingSafeEqual(key, expected);
}

/**
 * A hash of a random password, computed once: login checks unknown users against it so an unknown
 * name costs the same scrypt time as a wrong password (no user enumeration by timing).
 */
let dummyHash: Promise<string> | null = null;
export function dummyPasswordHash(): Promise<string> {
  dummyHash ??= hashPassword({ password: randomBytes(18).toString('base64') });
  return dummyHash;
}
