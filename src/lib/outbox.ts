// The outbox of signed decisions (releases and rejections signed online or offline). Each entry keeps
// the exact request body and an idempotency key; it is sent when the network is up, and a resend after
// a lost answer gets the server's first answer back (server/http/idempotency.ts), so a decision takes
// effect exactly once. A decision the server refuses because the round was decided meanwhile (409
// round_decided) or the release version moved on (409 release_version_conflict) becomes a "conflict":
// kept, shown, never silently dropped. One tab sends at a time (Web Locks).
import { db, type OutboxRow } from './db.ts';
import { auth } from './session.svelte.ts';

const CONFLICT_CODES = new Set(['round_decided', 'release_version_conflict', 'release_exists', 'round_not_finalized', 'idempotency_key_reused']);

export async function enqueueDecision(row: Omit<OutboxRow, 'status' | 'attempts' | 'createdAt'>): Promise<void> {
  await db.outbox.add({ ...row, status: 'pending', attempts: 0, createdAt: Date.now() });
  void flushOutbox();
}

async function sendOne(item: OutboxRow): Promise<void> {
  if (!auth.session) {
    await db.outbox.update(item.id, { status: 'pending', lastError: { status: 401, code: 'not_signed_in', message: 'sign in to send this decision' } });
    return;
  }
  await db.outbox.update(item.id, { status: 'sending', attempts: item.attempts + 1 });
  let res: Response;
  try {
    res = await fetch(item.path, {
      method: 'POST',
      // Authenticated by the HttpOnly session cookie.
      headers: { 'content-type': 'application/json', 'idempotency-key': item.idempotencyKey },
      credentials: 'same-origin',
      body: item.body,
      cache: 'no-store',
    });
  } catch (err) {
    // No answer: the server may or may not have it. Resending under the same key is safe.
    await db.outbox.update(item.id, { status: 'pending', lastError: { status: 0, code: 'offline', message: `not sent yet: ${(err as Error).message}` } });
    return;
  }
  const json = (await res.json().catch(() => null)) as { error?: { code: string; message: string; details?: Record<string, unknown> } } | null;
  if (res.ok) {
    await db.outbox.update(item.id, { status: 'sent', response: json, sentAt: Date.now(), lastError: undefined });
    return;
  }
  const error = { status: res.status, code: json?.error?.code ?? 'http_error', message: json?.error?.message ?? `HTTP ${res.status}`, details: json?.error?.details };
  if (CONFLICT_CODES.has(error.code)) await db.outbox.update(item.id, { status: 'conflict', lastError: error });
  else if (res.status === 401 || res.status === 429 || res.status >= 500) await db.outbox.update(item.id, { status: 'pending', lastError: error });
  else await db.outbox.update(item.id, { status: 'failed', lastError: error });
}

let flushing: Promise<void> | null = null;

/** Sends every pending decision, oldest first. Safe to call often; concurrent calls share one run. */
export function flushOutbox(): Promise<void> {
  if (typeof navigator !== 'undefined' && !navigator.onLine) return Promise.resolve();
  flushing ??= (async () => {
    const run = async () => {
      const items = await db.outbox.where('status').anyOf('pending', 'sending').sortBy('createdAt');
      for (const item of items) await sendOne(item);
    };
    try {
      if (navigator.locks) await navigator.locks.request('tensorguard-outbox', run);
      else await run();
    } finally {
      flushing = null;
    }
  })();
  return flushing;
}

/** Marks a conflicting or failed decision as handled (it stays in the outbox as history). */
export async function supersede(id: string): Promise<void> {
  await db.outbox.update(id, { status: 'superseded' });
}
