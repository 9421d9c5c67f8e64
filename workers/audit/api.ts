// The audit worker's API: verify the organization's audit log (core/audit/verifier.ts, through
// src/lib/audit-log.ts) against the head this browser remembers, check one leaf's inclusion, and page
// through the verified leaves. Everything here is public data (no secret, no token: requests carry the
// HttpOnly session cookie); the worker exists so that hashing 10^5 leaves, the ML-DSA-65 checkpoint
// check and the IndexedDB writes never block the UI thread.
//
//   UI ──verify({orgId, full})──▶ worker: GET /v1/audit/{key,checkpoint,leaves,proof/consistency}
//                                         → verify → Dexie (head + leaves) or alarm → result ──▶ UI
import { z } from 'zod';
import { checkLeafInclusion, runAuditVerification, type AuditLeafFilter, type AuditLeafRow, type AuditRunResult, type InclusionResult } from '../../src/lib/audit-log.ts';
import { throttledProgress, type ProgressCallback } from '../transfer.ts';
import { httpAuditSource } from './source.ts';
import { dexieAuditStore, forgetAuditHead, queryAuditLeaves } from './store.ts';

export interface AuditWorkerApi {
  /** Verifies new leaves (all with `full`) and the consistency proof; stores the head only if all holds. */
  verify(options: { orgId: string; full?: boolean }, onProgress?: ProgressCallback): Promise<AuditRunResult>;
  /** Checks leaf `index` as served now against the remembered verified root. */
  verifyInclusion(options: { orgId: string; index: number }): Promise<InclusionResult>;
  /** A page of verified leaves, newest first, and how many match the filter. */
  leaves(options: { orgId: string; filter: AuditLeafFilter; offset: number; limit: number }): Promise<{ rows: AuditLeafRow[]; matched: number }>;
  /** Forgets the pinned key and head (after the operator confirmed a new key out of band). */
  forget(options: { orgId: string }): Promise<void>;
}

const sameOrigin = (path: string) => fetch(path, { credentials: 'same-origin', cache: 'no-store' });

// What the UI may ask (validated here, at the worker boundary).
const OrgId = z.string().min(1).max(64).regex(/^[A-Za-z0-9._:-]+$/);
const VerifyOptions = z.strictObject({ orgId: OrgId, full: z.boolean().optional() });
const InclusionOptions = z.strictObject({ orgId: OrgId, index: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER) });
const LeavesOptions = z.strictObject({
  orgId: OrgId,
  filter: z.strictObject({ action: z.string().max(128).optional(), actor: z.string().max(200).optional(), from: z.number().int().optional(), to: z.number().int().optional() }),
  offset: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  limit: z.number().int().min(1).max(500),
});
const ForgetOptions = z.strictObject({ orgId: OrgId });

function parse<T>(schema: z.ZodType<T>, value: unknown, name: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new TypeError(`"${name}" expected valid options, got ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

export function createAuditWorkerApi(): AuditWorkerApi {
  const store = dexieAuditStore();
  // One verification at a time per organization: two tabs' clicks must not interleave head writes.
  const running = new Map<string, Promise<AuditRunResult>>();
  return {
    async verify(options, onProgress) {
      const { orgId, full } = parse(VerifyOptions, options, 'verify');
      const busy = running.get(orgId);
      if (busy) return busy;
      const run = runAuditVerification({ source: httpAuditSource({ fetch: sameOrigin }), store, orgId, full: !!full, onProgress: throttledProgress(onProgress, 100) });
      running.set(orgId, run);
      try {
        return await run;
      } finally {
        running.delete(orgId);
      }
    },
    async verifyInclusion(options) {
      const { orgId, index } = parse(InclusionOptions, options, 'verifyInclusion');
      return checkLeafInclusion({ source: httpAuditSource({ fetch: sameOrigin }), store, orgId, index });
    },
    async leaves(options) {
      return queryAuditLeaves(parse(LeavesOptions, options, 'leaves'));
    },
    async forget(options) {
      await forgetAuditHead(parse(ForgetOptions, options, 'forget').orgId);
    },
  };
}
