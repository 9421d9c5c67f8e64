// The audit routes (server/routes/audit.ts) as the verifier's AuditLogSource and the inclusion check's
// AuditProofSource, over a fetch function: in the audit worker a same-origin fetch (the HttpOnly
// session cookie goes along; no token is ever in this code), in tests the Hono app's `request`.
// Every response is validated with zod before it reaches the verifier; the verifier still trusts
// nothing in it. While the verifier works through leaf pages one by one, the next page is already
// being fetched (the served checkpoint's size bounds the prefetch; it is only a hint).
import { z } from 'zod';
import { TensorGuardError } from '../../core/errors.ts';
import { fromBase64, hexToBytes } from '../../core/bytes.ts';
import { MAX_LEAF_BYTES } from '../../core/audit/leaf.ts';
import { MAX_NOTE_BYTES } from '../../core/audit/checkpoint.ts';
import { leafBytes, type AuditLogSource } from '../../core/audit/verifier.ts';
import type { AuditProofSource } from '../../src/lib/audit-log.ts';

/** The server's page size for GET /v1/audit/leaves (MAX_LEAVES_PER_REQUEST). */
export const LEAF_PAGE = 1000;
const MAX_PROOF = 128;

export type AuditFetch = (path: string) => Promise<Response>;

const hash = z.string().regex(/^[0-9a-f]{64}$/);
const KeyResponse = z.object({ algorithm: z.literal('ml-dsa-65'), publicKey: z.string().min(1).max(4096) });
const CheckpointResponse = z.object({ checkpoint: z.string().min(1).max(MAX_NOTE_BYTES) });
const LeavesResponse = z.object({
  leaves: z.array(z.object({ index: z.number().int().min(0), data: z.string().max(MAX_LEAF_BYTES) })).max(LEAF_PAGE),
});
const ProofResponse = z.object({ proof: z.array(hash).max(MAX_PROOF) });

/** A failed audit request, with the server's stable error code (status 0: the server is unreachable). */
export class AuditRequestError extends TensorGuardError {
  constructor(message: string, code: string, status: number) {
    super({ message, code, status });
    this.name = 'AuditRequestError';
  }
}

async function getJson<T>(fetchFn: AuditFetch, path: string, schema: z.ZodType<T>): Promise<T> {
  let res: Response;
  try {
    res = await fetchFn(path);
  } catch (err) {
    throw new AuditRequestError(`the server cannot be reached (${(err as Error).message})`, 'offline', 0);
  }
  let body: unknown = null;
  try {
    body = await res.json();
  } catch {
    /* not JSON: handled below */
  }
  if (!res.ok) {
    const e = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    throw new AuditRequestError(typeof e?.message === 'string' ? e.message : `GET ${path} failed with ${res.status}`, typeof e?.code === 'string' ? e.code : 'http_error', res.status);
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new AuditRequestError(`GET ${path} answered an unexpected body: ${parsed.error.issues[0]?.message ?? 'invalid'}`, 'malformed', 502);
  return parsed.data;
}

/** The served size in a checkpoint note (unverified: used only to bound the prefetch). */
function servedSize(note: string): number {
  const m = /^[^\n]*\n(\d{1,16})\n/.exec(note);
  return m ? Number(m[1]) : 0;
}

export function httpAuditSource(options: { fetch: AuditFetch }): AuditLogSource & AuditProofSource {
  const f = options.fetch;
  let sizeHint = 0;
  let prefetched: { start: number; end: number; page: Promise<Array<{ index: number; data: Uint8Array }>> } | null = null;
  const fetchLeaves = async (start: number, end: number) =>
    (await getJson(f, `/v1/audit/leaves?start=${start}&end=${end}`, LeavesResponse)).leaves.map((l) => ({ index: l.index, data: leafBytes(l.data) }));
  return {
    key: async () => fromBase64((await getJson(f, '/v1/audit/key', KeyResponse)).publicKey, 'publicKey'),
    checkpoint: async () => {
      const note = (await getJson(f, '/v1/audit/checkpoint', CheckpointResponse)).checkpoint;
      sizeHint = servedSize(note);
      return note;
    },
    leaves: async (start, end) => {
      let page: Promise<Array<{ index: number; data: Uint8Array }>>;
      if (prefetched && prefetched.start === start && prefetched.end === end) page = prefetched.page.catch(() => fetchLeaves(start, end));
      else page = fetchLeaves(start, end);
      prefetched = null;
      const nextEnd = Math.min(sizeHint, end + LEAF_PAGE);
      if (end - start === LEAF_PAGE && nextEnd > end) {
        const next = fetchLeaves(end, nextEnd);
        next.catch(() => undefined); // a failed prefetch is refetched when asked for
        prefetched = { start: end, end: nextEnd, page: next };
      }
      return page;
    },
    consistency: async (from, to) => (await getJson(f, `/v1/audit/proof/consistency?from=${from}&to=${to}`, ProofResponse)).proof.map((h) => hexToBytes(h)),
    leaf: async (index) => {
      const one = (await fetchLeaves(index, index + 1))[0];
      return one && one.index === index ? one.data : null;
    },
    inclusion: async (index, size) => (await getJson(f, `/v1/audit/proof/inclusion?index=${index}&size=${size}`, ProofResponse)).proof.map((h) => hexToBytes(h)),
  };
}
