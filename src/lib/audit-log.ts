// The PWA's audit-log client logic, pure (no Dexie, no fetch, no DOM), run inside the audit worker
// (workers/audit/) and unit-tested in Node against the real routes:
//
//   stored head (AuditHeadRow) ──rowToHead──▶ core/audit/verifier.ts verifyAuditLog(source, previous)
//        ▲                                          │ ok: new head + the leaves it checked
//        └── store.commit(head row, leaf rows) ◀────┘ alarm (audit_inconsistent / audit_key_changed):
//                                                     store.recordAlarm(...), the stored head is kept
//
// The checks themselves are the CLI's (`tensorguard audit verify`, cli/commands/audit.ts): the key is
// pinned on first use, the remembered compact range is extended by every new leaf and must reach the
// signed root, and the server's consistency proof must verify. `checkLeafInclusion` re-fetches one
// leaf and its audit path and checks them against the remembered (verified) root. Leaf rows keep what
// the table shows (kind = the entry's action, actor, time) plus the verified leaf hash.
import { AuditInconsistentError, AuditKeyChangedError, verifyAuditLog, type AuditLogSource, type VerifiedHead } from '../../core/audit/verifier.ts';
import { checkpointKeyId } from '../../core/audit/checkpoint.ts';
import { decodeAuditLeaf, type AuditEntry } from '../../core/audit/leaf.ts';
import { ProofInvalidError, hashLeaf, verifyInclusion } from '../../core/audit/merkle.ts';
import { bytesToHex, equalBytes, fromBase64, hexToBytes, toBase64 } from '../../core/bytes.ts';

export const AUDIT_HEAD_FORMAT = 'tensorguard-audit-head/v1';

/** The last verified head of one organization's log, as this browser remembers it (Dexie `auditHeads`). */
export interface AuditHeadRow {
  orgId: string;
  format: typeof AUDIT_HEAD_FORMAT;
  origin: string;
  /** The pinned ML-DSA-65 checkpoint key (base64) and its C2SP key ID (hex). */
  publicKey: string;
  keyId: string;
  size: number;
  rootHash: string;
  compactRange: string[];
  /** The signed checkpoint note as served. */
  checkpoint: string;
  /** When this browser verified the checkpoint (the checkpoint itself carries no time). */
  verifiedAt: number;
  /** Time of the newest leaf in the verified tree (its `at`), null for an empty tree. */
  lastEntryAt: number | null;
  /** Leaves per action over the whole verified tree. */
  actions: Record<string, number>;
}

/** One verified leaf, for the table (Dexie `auditLeaves`, key [orgId+index]). */
export interface AuditLeafRow {
  orgId: string;
  index: number;
  action: string;
  actorType: AuditEntry['actorType'];
  actorId: string;
  target: string;
  at: number;
  /** hex SHA-256(0x00 || leaf bytes) as verified. */
  leafHash: string;
}

/** An alarm this browser raised (Dexie `auditAlarms`). */
export interface AuditAlarmRow {
  id?: number;
  orgId: string;
  at: number;
  /** audit_inconsistent | audit_key_changed */
  code: string;
  /** The verifier's reason (bad_checkpoint, shrank, root_mismatch, consistency_failed, ...). */
  reason: string;
  message: string;
  /** The head kept (size 0 when none had been verified yet). */
  keptSize: number;
  keptRootHash: string | null;
}

/** Where the worker keeps heads, leaves and alarms (Dexie in the browser, memory in tests). */
export interface AuditStore {
  head(orgId: string): Promise<AuditHeadRow | null>;
  /** Stores a verified head and its new leaf rows together (one transaction). */
  commit(options: { head: AuditHeadRow; leaves: AuditLeafRow[] }): Promise<void>;
  leaf(orgId: string, index: number): Promise<AuditLeafRow | null>;
  recordAlarm(alarm: AuditAlarmRow): Promise<void>;
}

/** What the inclusion check needs from the server beyond AuditLogSource. */
export interface AuditProofSource {
  /** The served bytes of leaf `index`, or null when the server sends no such leaf. */
  leaf(index: number): Promise<Uint8Array | null>;
  inclusion(index: number, size: number): Promise<Uint8Array[]>;
}

export type AuditRunResult =
  | {
      status: 'consistent';
      head: AuditHeadRow;
      previousSize: number;
      leavesChecked: number;
      keyPinnedNow: boolean;
    }
  | { status: 'alarm'; alarm: AuditAlarmRow };

export type InclusionResult = { status: 'included'; index: number; size: number; leafHash: string } | { status: 'alarm'; alarm: AuditAlarmRow };

export function rowToHead(row: AuditHeadRow): VerifiedHead {
  if (row.format !== AUDIT_HEAD_FORMAT) throw new TypeError(`"head" expected format ${AUDIT_HEAD_FORMAT}, got ${String(row.format)}`);
  return {
    origin: row.origin,
    publicKey: fromBase64(row.publicKey, 'publicKey'),
    size: row.size,
    rootHash: hexToBytes(row.rootHash),
    compactRange: row.compactRange.map((h) => hexToBytes(h)),
    checkpoint: row.checkpoint,
  };
}

export function headToRow(options: { orgId: string; head: VerifiedHead; verifiedAt: number; lastEntryAt: number | null; actions: Record<string, number> }): AuditHeadRow {
  const { head } = options;
  return {
    orgId: options.orgId,
    format: AUDIT_HEAD_FORMAT,
    origin: head.origin,
    publicKey: toBase64(head.publicKey),
    keyId: bytesToHex(checkpointKeyId({ keyName: head.origin, publicKey: head.publicKey })),
    size: head.size,
    rootHash: bytesToHex(head.rootHash),
    compactRange: head.compactRange.map(bytesToHex),
    checkpoint: head.checkpoint,
    verifiedAt: options.verifiedAt,
    lastEntryAt: options.lastEntryAt,
    actions: options.actions,
  };
}

function leafRow(orgId: string, index: number, data: Uint8Array): AuditLeafRow {
  const e = decodeAuditLeaf({ bytes: data });
  return { orgId, index, action: e.action, actorType: e.actorType, actorId: e.actorId, target: e.target, at: e.at, leafHash: bytesToHex(hashLeaf(data)) };
}

function isAlarm(err: unknown): err is AuditInconsistentError | AuditKeyChangedError {
  return err instanceof AuditInconsistentError || err instanceof AuditKeyChangedError;
}

async function raise(store: AuditStore, options: { orgId: string; now: number; error: AuditInconsistentError | AuditKeyChangedError; kept: AuditHeadRow | null }): Promise<AuditAlarmRow> {
  const { error, kept } = options;
  const reason = typeof error.details?.reason === 'string' ? error.details.reason : error.code === 'audit_key_changed' ? 'key_changed' : 'inconsistent';
  const alarm: AuditAlarmRow = { orgId: options.orgId, at: options.now, code: error.code, reason, message: error.message, keptSize: kept?.size ?? 0, keptRootHash: kept?.rootHash ?? null };
  await store.recordAlarm(alarm);
  return alarm;
}

/**
 * Verifies the log against the stored head (all leaves again with `full`) and stores the new head and
 * leaf rows only if everything holds. Inconsistencies come back as `{ status: 'alarm' }` after being
 * recorded; other failures (network, 401/403) are thrown and change nothing.
 */
export async function runAuditVerification(options: {
  source: AuditLogSource;
  store: AuditStore;
  orgId: string;
  full?: boolean;
  now?: () => number;
  onProgress?: (done: number, total: number) => void;
}): Promise<AuditRunResult> {
  const { source, store, orgId } = options;
  const now = options.now ?? Date.now;
  const stored = await store.head(orgId);
  // Keep the leaves the verifier fetched; they become table rows only once the whole run verified.
  const fetched: Array<{ index: number; data: Uint8Array }> = [];
  const capturing: AuditLogSource = {
    key: () => source.key(),
    checkpoint: () => source.checkpoint(),
    consistency: (from, to) => source.consistency(from, to),
    leaves: async (start, end) => {
      const page = await source.leaves(start, end);
      fetched.push(...page);
      return page;
    },
  };
  let result;
  try {
    result = await verifyAuditLog({ source: capturing, orgId, previous: stored ? rowToHead(stored) : null, full: options.full, onProgress: options.onProgress });
  } catch (error) {
    if (!isAlarm(error)) throw error;
    return { status: 'alarm', alarm: await raise(store, { orgId, now: now(), error, kept: stored }) };
  }
  // The verifier accepted exactly leaves [start, size) in order; fetched holds them (index-checked there).
  const start = result.head.size - result.leavesChecked;
  const leaves = fetched.filter((l) => l.index >= start && l.index < result.head.size).map((l) => leafRow(orgId, l.index, l.data));
  const actions: Record<string, number> = options.full || !stored ? {} : { ...stored.actions };
  for (const [action, n] of Object.entries(result.actions)) actions[action] = (actions[action] ?? 0) + n;
  const lastEntryAt = leaves.length > 0 ? leaves[leaves.length - 1]!.at : (stored?.lastEntryAt ?? null);
  const head = headToRow({ orgId, head: result.head, verifiedAt: now(), lastEntryAt, actions });
  await store.commit({ head, leaves });
  return { status: 'consistent', head, previousSize: result.previousSize, leavesChecked: result.leavesChecked, keyPinnedNow: result.keyPinnedNow };
}

/**
 * Checks that leaf `index`, as the server serves it now, is in the tree this browser verified: its
 * hash (recomputed here from the served bytes) and the server's audit path must reproduce the stored
 * root (RFC 9162 2.1.3.2), and it must be the leaf verified then. A failure is recorded as an alarm.
 */
export async function checkLeafInclusion(options: { source: AuditProofSource; store: AuditStore; orgId: string; index: number; now?: () => number }): Promise<InclusionResult> {
  const { source, store, orgId, index } = options;
  const now = options.now ?? Date.now;
  const head = await store.head(orgId);
  if (!head) throw new RangeError('"index" expected a verified head first: verify the log before checking a leaf');
  if (!Number.isSafeInteger(index) || index < 0 || index >= head.size) throw new RangeError(`"index" expected an integer in [0, ${head.size}), got ${String(index)}`);
  const fail = async (message: string, reason: string) =>
    ({ status: 'alarm', alarm: await raise(store, { orgId, now: now(), error: new AuditInconsistentError(message, { reason, index }), kept: head }) }) as const;
  const data = await source.leaf(index);
  if (!data) return fail(`leaf ${index} of the verified tree is missing from the server`, 'leaf_missing');
  let leafHash: Uint8Array;
  try {
    const entry = decodeAuditLeaf({ bytes: data });
    if (entry.orgId !== orgId) return fail(`leaf ${index} belongs to another organization`, 'foreign_leaf');
    leafHash = hashLeaf(data);
  } catch (cause) {
    return fail(`leaf ${index} is not a canonical audit entry: ${(cause as Error).message}`, 'bad_leaf');
  }
  try {
    verifyInclusion({ index, size: head.size, leafHash, proof: await source.inclusion(index, head.size), root: hexToBytes(head.rootHash) });
  } catch (cause) {
    if (!(cause instanceof ProofInvalidError)) throw cause;
    return fail(`leaf ${index} as served now is not in the verified tree of ${head.size} leaves (a changed leaf, or a bad audit path): ${cause.message}`, 'inclusion_failed');
  }
  const remembered = await store.leaf(orgId, index);
  if (remembered && !equalBytes(hexToBytes(remembered.leafHash), leafHash)) return fail(`leaf ${index} differs from the leaf verified earlier`, 'leaf_changed');
  return { status: 'included', index, size: head.size, leafHash: bytesToHex(leafHash) };
}

/** The table's filter: kind (exact action), actor (substring of "type:id"), time window [from, to). */
export interface AuditLeafFilter {
  action?: string;
  actor?: string;
  from?: number;
  to?: number;
}

export function matchesLeafFilter(row: AuditLeafRow, filter: AuditLeafFilter): boolean {
  if (filter.action && row.action !== filter.action) return false;
  if (filter.actor) {
    const needle = filter.actor.trim().toLowerCase();
    if (needle && !`${row.actorType}:${row.actorId}`.toLowerCase().includes(needle)) return false;
  }
  if (filter.from !== undefined && row.at < filter.from) return false;
  if (filter.to !== undefined && row.at >= filter.to) return false;
  return true;
}

/** Collects one page of matching rows while counting all matches (rows arrive newest first). */
export function leafPager(options: { filter: AuditLeafFilter; offset: number; limit: number }): { add(row: AuditLeafRow): void; result(): { rows: AuditLeafRow[]; matched: number } } {
  const { filter, offset, limit } = options;
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`"offset" expected integer >= 0, got ${String(offset)}`);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 500) throw new RangeError(`"limit" expected integer in [1, 500], got ${String(limit)}`);
  const rows: AuditLeafRow[] = [];
  let matched = 0;
  return {
    add(row) {
      if (!matchesLeafFilter(row, filter)) return;
      if (matched >= offset && rows.length < limit) rows.push(row);
      matched++;
    },
    result: () => ({ rows, matched }),
  };
}

export function pageOfLeaves(options: { rows: Iterable<AuditLeafRow>; filter: AuditLeafFilter; offset: number; limit: number }): { rows: AuditLeafRow[]; matched: number } {
  const pager = leafPager(options);
  for (const row of options.rows) pager.add(row);
  return pager.result();
}
