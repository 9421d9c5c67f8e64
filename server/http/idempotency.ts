// Idempotency keys for officer decisions (draft-ietf-httpapi-idempotency-key-header): a client that
// resends a request under the same `Idempotency-Key` gets the stored 201 of the first one (header
// `Idempotent-Replayed: true`) and nothing happens twice; the same key with a different request is
// 422 `idempotency_key_reused`. Keys are scoped to the organization and stored by the route's own
// write transaction (server/db/decisions.ts), so a key exists only for a committed decision; requests
// with one key are serialized in-process, so a resend racing the original waits for its answer.
import type { Context } from 'hono';
import { sha256 } from '../../core/codec/fingerprint.ts';
import { bytesToHex, utf8ToBytes, concatBytes } from '../../core/bytes.ts';
import { decisionKeyReused, getDecisionIdempotency } from '../db/decisions.ts';
import type { AppDeps, AppEnv } from './context.ts';

export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
export const IDEMPOTENT_REPLAY_HEADER = 'idempotent-replayed';
const KEY = /^[\x21-\x7e]{1,255}$/;

export interface IdempotencyContext {
  key: string;
  requestSha256: string;
}

function keyOf(c: Context): string | null {
  const key = c.req.header(IDEMPOTENCY_KEY_HEADER);
  if (key === undefined) return null;
  if (!KEY.test(key)) throw new TypeError('"Idempotency-Key" expected 1..255 visible ASCII characters');
  return key;
}

/**
 * Runs `handle` at most once per (organization, key): a stored answer is replayed, a reused key with
 * another method, path or body is refused. Without the header, `handle` runs as usual.
 */
export async function runIdempotent(options: {
  deps: AppDeps;
  c: Context<AppEnv>;
  orgId: string;
  handle: (idempotency: IdempotencyContext | undefined) => Promise<Response>;
}): Promise<Response> {
  const { deps, c, orgId } = options;
  const key = keyOf(c);
  if (key === null) return options.handle(undefined);
  const body = new Uint8Array(await c.req.arrayBuffer());
  const url = new URL(c.req.url);
  const requestSha256 = bytesToHex(sha256(concatBytes(utf8ToBytes(`${c.req.method}\n${url.pathname}\n`), body)));
  const replay = async (): Promise<Response | null> => {
    const stored = await getDecisionIdempotency({ db: deps.db, orgId, key });
    if (!stored) return null;
    if (stored.requestSha256 !== requestSha256) throw decisionKeyReused();
    return c.newResponse(stored.response, 201, { 'content-type': 'application/json', [IDEMPOTENT_REPLAY_HEADER]: 'true' });
  };
  const early = await replay();
  if (early) return early;
  return deps.roundLocks.run({
    key: `idempotency:${orgId}:${key}`,
    task: async () => (await replay()) ?? options.handle({ key, requestSha256 }),
  });
}
