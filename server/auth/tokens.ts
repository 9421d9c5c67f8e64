// Bearer secrets (session and enrollment tokens) in the shape the Lucia guidance describes:
// token = id + "." + secret, the secret 32 random bytes (base64url); the server stores only
// SHA-256(secret) and compares in constant time, so a database leak yields no usable token.
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';

export function newId(options: { prefix: string }): string {
  return `${options.prefix}_${randomBytes(12).toString('hex')}`;
}

export function newToken(options: { prefix: string }): { id: string; token: string; secretHash: Uint8Array } {
  const id = newId(options);
  const secret = randomBytes(32).toString('base64url');
  return { id, token: `${id}.${secret}`, secretHash: hashSecret({ secret }) };
}

export function hashSecret(options: { secret: string }): Uint8Array {
  return new Uint8Array(createHash('sha256').update(options.secret, 'utf8').digest());
}

const TOKEN = /^([a-z]{2,8}_[0-9a-f]{24})\.([A-Za-z0-9_-]{43})$/;

/** Splits a token into id and secret; null when it is not token-shaped. */
export function parseToken(options: { token: string }): { id: string; secret: string } | null {
  const m = TOKEN.exec(options.token);
  return m ? { id: m[1]!, secret: m[2]! } : null;
}

export function secretMatches(options: { secret: string; secretHash: Uint8Array }): boolean {
  const actual = hashSecret({ secret: options.secret });
  return actual.length === options.secretHash.length && timingSafeEqual(actual, options.secretHash);
}
