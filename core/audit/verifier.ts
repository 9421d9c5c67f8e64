// The client side of the audit log: verify a server's signed tree head and leaves against the head
// this client verified last time. Pure: the caller passes the fetchers (the CLI over HTTP, the PWA
// with fetch, tests against the app), and stores the returned head.
//
//   1. the checkpoint key must be the one pinned on first use (else AuditKeyChangedError);
//   2. the checkpoint must carry a valid signature by it for this organization's origin;
//   3. the tree may only grow: a smaller size than the remembered head is an alarm;
//   4. the leaves since the remembered head (all of them with `full`) are fetched, each leaf hash is
//      recomputed from its bytes, and they are appended to the remembered compact range: the result
//      must be the signed root — so the new head provably extends the remembered one;
//   5. with `full`, the first `remembered size` leaves must also reproduce the remembered root;
//   6. the server's consistency proof between the two heads must verify (RFC 9162 2.1.4.2).
// Any failure is an AuditInconsistentError (`audit_inconsistent`) naming what did not hold; the caller
// then keeps its previous head.
import { TensorGuardError } from '../errors.ts';
import { bytesToHex, equalBytes, utf8ToBytes } from '../bytes.ts';
import { CompactRange, ProofInvalidError, hashLeaf, verifyConsistency } from './merkle.ts';
import { auditLogOrigin, openCheckpoint } from './checkpoint.ts';
import { decodeAuditLeaf } from './leaf.ts';

export class AuditInconsistentError extends TensorGuardError {
  constructor(message: string, details?: Record<string, unknown>) {
    super({ message, code: 'audit_inconsistent', status: 409, details });
    this.name = 'AuditInconsistentError';
  }
}

export class AuditKeyChangedError extends TensorGuardError {
  constructor(message: string, details?: Record<string, unknown>) {
    super({ message, code: 'audit_key_changed', status: 409, details });
    this.name = 'AuditKeyChangedError';
  }
}

export interface AuditLogSource {
  /** The server's checkpoint public key (only trusted on first use). */
  key(): Promise<Uint8Array>;
  /** The current signed checkpoint note. */
  checkpoint(): Promise<string>;
  /** Leaves [start, end) as served: their index and leaf bytes. */
  leaves(start: number, end: number): Promise<Array<{ index: number; data: Uint8Array }>>;
  /** The server's consistency proof between two tree sizes. */
  consistency(from: number, to: number): Promise<Uint8Array[]>;
}

/** What a client remembers between runs. */
export interface VerifiedHead {
  origin: string;
  publicKey: Uint8Array;
  size: number;
  rootHash: Uint8Array;
  /** The compact range of the verified tree (core/audit/merkle.ts CompactRange hashes). */
  compactRange: Uint8Array[];
  checkpoint: string;
}

export interface AuditVerification {
  head: VerifiedHead;
  previousSize: number;
  leavesChecked: number;
  keyPinnedNow: boolean;
  actions: Record<string, number>;
}

const PAGE = 1000;

export async function verifyAuditLog(options: {
  source: AuditLogSource;
  orgId: string;
  previous?: VerifiedHead | null;
  full?: boolean;
  onProgress?: (done: number, total: number) => void;
}): Promise<AuditVerification> {
  const { source, orgId } = options;
  const previous = options.previous ?? null;
  const origin = auditLogOrigin({ orgId });
  if (previous && previous.origin !== origin) throw new TypeError(`"previous" expected the head of ${origin}, got ${previous.origin}`);

  const served = await source.key();
  if (previous && !equalBytes(served, previous.publicKey))
    throw new AuditKeyChangedError('the server audit key changed since this client pinned it: the server may have been replaced or its key rotated; check with the operator before trusting it', {
      pinned: bytesToHex(previous.publicKey).slice(0, 16),
      served: bytesToHex(served).slice(0, 16),
    });
  const publicKey = previous?.publicKey ?? served;

  const note = await source.checkpoint();
  let checkpoint;
  try {
    checkpoint = openCheckpoint({ note, publicKey, origin });
  } catch (cause) {
    throw new AuditInconsistentError(`the checkpoint does not verify under the pinned server key: ${(cause as Error).message}`, { reason: 'bad_checkpoint' });
  }
  const size = checkpoint.size;
  if (previous && size < previous.size)
    throw new AuditInconsistentError(`the log shrank from ${previous.size} to ${size} leaves`, { reason: 'shrank', previousSize: previous.size, size });

  const resume = previous && !options.full;
  const range = resume ? new CompactRange({ size: previous.size, hashes: previous.compactRange }) : new CompactRange();
  const actions: Record<string, number> = {};
  for (let start = range.size; start < size; start = range.size) {
    const end = Math.min(size, start + PAGE);
    const page = await source.leaves(start, end);
    for (const leaf of page) {
      const expected = range.size;
      if (leaf.index !== expected) throw new AuditInconsistentError(`leaf ${expected} is missing (the server sent leaf ${leaf.index})`, { reason: 'leaf_missing', index: expected });
      let entry;
      try {
        entry = decodeAuditLeaf({ bytes: leaf.data });
      } catch (cause) {
        throw new AuditInconsistentError(`leaf ${expected} is not a canonical audit entry: ${(cause as Error).message}`, { reason: 'bad_leaf', index: expected });
      }
      if (entry.orgId !== orgId) throw new AuditInconsistentError(`leaf ${expected} belongs to another organization`, { reason: 'foreign_leaf', index: expected });
      actions[entry.action] = (actions[entry.action] ?? 0) + 1;
      range.append(hashLeaf(leaf.data));
      if (previous && options.full && range.size === previous.size && !equalBytes(range.root(), previous.rootHash))
        throw new AuditInconsistentError(`the first ${previous.size} leaves no longer produce the head this client verified: a leaf was changed, removed or reordered`, {
          reason: 'history_rewritten',
          size: previous.size,
        });
    }
    if (range.size < end) throw new AuditInconsistentError(`leaf ${range.size} is missing`, { reason: 'leaf_missing', index: range.size });
    options.onProgress?.(range.size, size);
  }
  if (!equalBytes(range.root(), checkpoint.rootHash))
    throw new AuditInconsistentError(
      previous
        ? `the signed head (${size} leaves) does not extend the head this client verified (${previous.size} leaves), or its leaves were altered`
        : `the leaves the server sent do not produce its signed root at ${size} leaves`,
      { reason: 'root_mismatch', size, previousSize: previous?.size ?? 0 },
    );
  if (previous && previous.size > 0 && previous.size < size) {
    try {
      verifyConsistency({ from: previous.size, to: size, fromRoot: previous.rootHash, toRoot: checkpoint.rootHash, proof: await source.consistency(previous.size, size) });
    } catch (cause) {
      if (!(cause instanceof ProofInvalidError)) throw cause;
      throw new AuditInconsistentError(`the server's consistency proof from ${previous.size} to ${size} leaves does not verify: ${cause.message}`, { reason: 'consistency_failed' });
    }
  }
  return {
    head: { origin, publicKey, size, rootHash: checkpoint.rootHash, compactRange: [...range.hashes], checkpoint: note },
    previousSize: previous?.size ?? 0,
    leavesChecked: size - (resume ? previous.size : 0),
    keyPinnedNow: !previous,
    actions,
  };
}

/** Leaf bytes from a served leaf's text (`data`). */
export function leafBytes(data: string): Uint8Array {
  return utf8ToBytes(data);
}
