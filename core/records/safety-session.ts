// Robot safety sessions: the pure encodings both sides share (robot client and sync server).
//
// Why: command safety validation must answer >= 2,000 requests/s on two cores (DESIGN.md), and one
// ML-DSA-44 verification costs ~1.2 ms of CPU, so a robot that validates at a high rate authenticates
// once with a signature and then MACs each request under a short-lived symmetric key.
//
//   robot ── POST /v1/safety/sessions (ML-DSA-44 signed, nonce + timestamp as every robot request) ──▶ server
//   server: sessionKey = 32 fresh random bytes; sessionId names this server instance;
//           (kemCiphertext, wrappedKey) = wrapContentKey(sessionKey, robot's enrolled ML-KEM-768 key,
//                                                     context = safetySessionContext(...))
//   robot ◀── { sessionId, expiresAt, counterWindow, kemCiphertext, wrappedKey } ── server
//   robot: sessionKey = unwrapContentKey(...) with its ML-KEM secret key; the context is the AES-GCM
//          AAD, so a sessionId, robot id or expiry altered on the way makes the unwrap fail.
//   each request: counter = 1, 2, 3, ... (never reused under one session)
//          mac = HMAC-SHA256(sessionKey, sessionRequestMacInput(sessionId, METHOD, path+query, counter,
//                                                               SHA-256(body)))
//          headers x-tg-robot, x-tg-session, x-tg-counter (decimal), x-tg-mac (64 lowercase hex)
//
// The MAC input is domain separated ("tensorguard/safety-session-request/v1" 0x00) and canonically
// encoded with the bounded ByteWriter, so no other TensorGuard message can be replayed as a request MAC.
// HMAC-SHA256 is RFC 2104 / FIPS 198-1; the server computes it with node:crypto over the same bytes.
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { ByteWriter } from '../codec/binary.ts';
import { bytesToHex, concatBytes, utf8ToBytes } from '../bytes.ts';
import { expectBytes, expectInteger } from '../errors.ts';

export const SAFETY_SESSION_HEADERS = {
  /** The robot id, as in the signed form (the session must belong to it). */
  robot: 'x-tg-robot',
  session: 'x-tg-session',
  counter: 'x-tg-counter',
  mac: 'x-tg-mac',
} as const;

/** `ss1.<instance: 16 hex>.<random: 32 hex>`: the issuing server instance is part of the id. */
export const SESSION_ID_PATTERN = /^ss1\.([0-9a-f]{16})\.[0-9a-f]{32}$/;
export const INSTANCE_ID_PATTERN = /^[0-9a-f]{16}$/;
/** Counters are decimal, 1 .. 2^53-1, no leading zeros (one spelling per value). */
export const COUNTER_PATTERN = /^[1-9][0-9]{0,15}$/;
export const MAC_PATTERN = /^[0-9a-f]{64}$/;
export const SESSION_KEY_BYTES = 32;

const REQUEST_DOMAIN = utf8ToBytes('tensorguard/safety-session-request/v1\u0000');

/** The session id for a server instance id and 16 random bytes. */
export function formatSessionId(options: { instanceId: string; random: Uint8Array }): string {
  if (!INSTANCE_ID_PATTERN.test(options.instanceId)) throw new TypeError(`"instanceId" expected 16 lowercase hex, got ${options.instanceId}`);
  expectBytes('random', options.random, 16);
  return `ss1.${options.instanceId}.${bytesToHex(options.random)}`;
}

/** The instance id a session id names, or null when it is not a session id. */
export function sessionInstance(sessionId: string): string | null {
  const m = SESSION_ID_PATTERN.exec(sessionId);
  return m ? m[1]! : null;
}

/**
 * The context the session key is wrapped under (core/crypto/kem.ts: HKDF info suffix and AES-GCM AAD).
 * Distinct from release contexts ("tensorguard/release/v1/..."), so a session wrap can never be
 * presented as a release key wrap or the other way round.
 */
export function safetySessionContext(options: { sessionId: string; robotId: string; expiresAt: number }): Uint8Array {
  if (sessionInstance(options.sessionId) === null) throw new TypeError(`"sessionId" expected a session id, got ${options.sessionId}`);
  if (!/^[A-Za-z0-9._:-]{1,64}$/.test(options.robotId)) throw new TypeError(`"robotId" expected an id, got ${options.robotId}`);
  expectInteger('expiresAt', options.expiresAt, 0, Number.MAX_SAFE_INTEGER);
  return utf8ToBytes(`tensorguard/safety-session/v1/${options.robotId}/${options.sessionId}/${options.expiresAt}`);
}

/** The bytes a session request MAC covers. `bodySha256` is SHA-256 of the exact body bytes sent. */
export function sessionRequestMacInput(options: { sessionId: string; method: string; path: string; counter: number; bodySha256: Uint8Array }): Uint8Array {
  expectInteger('counter', options.counter, 1, Number.MAX_SAFE_INTEGER);
  const fields = new ByteWriter()
    .str(options.sessionId, 64)
    .str(options.method.toUpperCase(), 16)
    .str(options.path, 4096)
    .u64(options.counter)
    .fixed(options.bodySha256, 32)
    .finish();
  return concatBytes(REQUEST_DOMAIN, fields);
}

/** HMAC-SHA256 of a session request (the robot side; pure, runs anywhere). Returns 64 lowercase hex. */
export function macSessionRequest(options: { key: Uint8Array; sessionId: string; method: string; path: string; counter: number; body: Uint8Array }): string {
  expectBytes('key', options.key, SESSION_KEY_BYTES);
  const input = sessionRequestMacInput({ sessionId: options.sessionId, method: options.method, path: options.path, counter: options.counter, bodySha256: sha256(expectBytes('body', options.body)) });
  return bytesToHex(hmac(sha256, options.key, input));
}
