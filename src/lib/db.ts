// The UI thread's IndexedDB (Dexie): the session, round templates, rounds prepared for offline review
// (config, manifest, packages, aggregate, robots, ledger), review outcomes (reports and a handle to the
// candidate, which itself sits encrypted in the workers' key store) and the outbox of signed decisions.
// No secret key is ever stored here: those live in the workers' key store (workers/keystore/vault.ts).
import Dexie, { type EntityTable } from 'dexie';
import type { ContributionJson, DecisionJson, FleetJson, LedgerJson, OrgJson, ReleaseSummaryJson, RobotJson, RoundJson, UserJson } from './types.ts';
import type { ReviewOutcome, VerificationSummary } from '../../workers/he/api.ts';
import type { AuditAlarmRow, AuditHeadRow, AuditLeafRow } from './audit-log.ts';

/**
 * Who is signed in, for the UI (also offline). The session token itself is not here: it lives only in
 * the HttpOnly `tg_session` cookie, out of reach of page scripts (docs/SECURITY.md).
 */
export interface SessionRow {
  id: 'current';
  expiresAt: number;
  user: UserJson;
  org: OrgJson;
}

/** A round's base adapter, kept where the round was opened (its values never go to the server). */
export interface TemplateRow {
  roundId: string;
  /** Blobs: IndexedDB keeps them as files, handed to the HE worker by reference. */
  adapterConfigJson: Blob;
  adapterSafetensors: Blob;
  /** adapterFingerprint hex (the round config's baseAdapterSha256). */
  fingerprint: string;
  savedAt: number;
}

/** Everything a review needs, downloaded while online ("prepared"); the bytes are in `blobs`. */
export interface ReviewRow {
  roundId: string;
  fleetId: string;
  round: RoundJson;
  fleet: FleetJson;
  manifest: string;
  aggregateSha256: string;
  contributions: ContributionJson[];
  robots: RobotJson[];
  releases: ReleaseSummaryJson[];
  ledger: LedgerJson;
  decision: DecisionJson;
  bytes: number;
  preparedAt: number;
}

export interface BlobRow {
  key: string;
  roundId: string;
  /** Ciphertext bytes as a Blob (a file IndexedDB hands out by reference, read by the worker). */
  data: Blob;
  size: number;
}

export interface CandidateRow {
  roundId: string;
  verification: VerificationSummary;
  outcome: ReviewOutcome;
  reviewedAt: number;
}

export type OutboxStatus = 'pending' | 'sending' | 'sent' | 'conflict' | 'failed' | 'superseded';

/** A signed decision waiting to reach the server, sent exactly once under its idempotency key. */
export interface OutboxRow {
  id: string;
  roundId: string;
  fleetId: string;
  kind: 'release' | 'rejection';
  idempotencyKey: string;
  path: string;
  /** The exact JSON body: a resend must be byte-identical for the server to replay the first answer. */
  body: string;
  summary: { releaseVersion?: number; releaseId?: string; adapterSha256?: string; fingerprint: string; canaryFraction?: number; reason?: string; wrapped?: number; skipped?: string[] };
  status: OutboxStatus;
  attempts: number;
  lastError?: { status: number; code: string; message: string; details?: Record<string, unknown> };
  response?: unknown;
  createdAt: number;
  sentAt?: number;
}

export type AppDb = Dexie & {
  session: EntityTable<SessionRow, 'id'>;
  templates: EntityTable<TemplateRow, 'roundId'>;
  reviews: EntityTable<ReviewRow, 'roundId'>;
  blobs: EntityTable<BlobRow, 'key'>;
  candidates: EntityTable<CandidateRow, 'roundId'>;
  outbox: EntityTable<OutboxRow, 'id'>;
  /** The audit page (src/lib/audit-log.ts): verified heads, verified leaves, alarms; all public data. */
  auditHeads: EntityTable<AuditHeadRow, 'orgId'>;
  auditLeaves: Dexie.Table<AuditLeafRow, [string, number]>;
  auditAlarms: EntityTable<AuditAlarmRow, 'id'>;
};

export const APP_DB_NAME = 'tensorguard-app';

export const db = new Dexie(APP_DB_NAME) as AppDb;
db.version(1).stores({
  session: 'id',
  templates: 'roundId',
  reviews: 'roundId, fleetId',
  blobs: 'key, roundId',
  candidates: 'roundId',
  outbox: 'id, status, roundId, createdAt',
});
// Version 2: the audit page's pinned key + last verified head per organization, leaf rows, alarms.
db.version(2).stores({
  auditHeads: 'orgId',
  auditLeaves: '[orgId+index], [orgId+action]',
  auditAlarms: '++id, orgId, at',
});

export const blobKeys = {
  aggregate: (roundId: string) => `${roundId}/aggregate`,
  package: (roundId: string, robotId: string) => `${roundId}/package/${robotId}`,
};
