// The audit log's server side beyond the rows: signing checkpoints with the server key, and recording
// denials without letting an attacker fill the log.
//
// Checkpoints: the current tree head of an organization, signed as a C2SP checkpoint (origin
// "tensorguard.audit/<orgId>", key name = origin). Signing costs an ML-DSA-65 signature, so the last
// signed note per organization is reused while size and root are unchanged.
//
// Denials (authorization failures, refused contributions, failed sign-ins of known users) are audited
// per organization, bounded per window (default 10 minutes): the first denial of each
// (action, actor, code) in a window is written as its own leaf, up to `perWindow` (default 20) such
// leaves; every further denial only increments an in-memory counter, and the counts are written as one
// `denial.suppressed` leaf when the window ends (on the next denial of that organization, or when the
// organization's checkpoint is read). So a flood costs at most perWindow + 1 leaves per window per
// organization (<= 3,024 a day at the defaults). Counts of a window still open at a crash are lost;
// the JSON log keeps every denial. Denials whose caller names no organization (unknown user name,
// invalid token) belong to no tenant's log and are only logged.
import type { Database } from '../db/client.ts';
import type { Executor } from '../db/common.ts';
import { TensorGuardError } from '../../core/errors.ts';
import type { Logger } from '../logger.ts';
import { appendAudit, auditTreeHead, ensureAuditTree, type AuditActor } from '../db/audit.ts';
import { auditLogOrigin, checkpointKeyId, signCheckpoint } from '../../core/audit/checkpoint.ts';
import { bytesToHex } from '../../core/bytes.ts';
import type { ServerAuditKey } from './server-key.ts';

export interface Denial {
  orgId: string;
  actor: AuditActor;
  /** access.denied | contribution.refuse | session.fail | robot.auth_fail */
  action: string;
  target: string;
  code: string;
  details: Record<string, unknown>;
}

interface OrgWindow {
  start: number;
  written: number;
  seen: Set<string>;
  suppressed: Map<string, number>;
}

export class DenialRecorder {
  readonly #windowMs: number;
  readonly #perWindow: number;
  readonly #windows = new Map<string, OrgWindow>();
  readonly #pending = new Set<Promise<void>>();

  constructor(options: { windowMs?: number; perWindow?: number } = {}) {
    this.#windowMs = options.windowMs ?? 10 * 60 * 1000;
    this.#perWindow = options.perWindow ?? 20;
  }

  /**
   * Records a denial in the background: callers do not wait, so a denial answers exactly as fast as
   * before (no timing signal, e.g. of whether a user name exists). `denial` may be a function that
   * looks the organization up; it resolves to null when the denial belongs to no organization.
   */
  record(options: { db: Database; logger: Logger; denial: Denial | (() => Promise<Denial | null>); now: number }): void {
    const task = (async () => {
      const denial = typeof options.denial === 'function' ? await options.denial() : options.denial;
      if (denial) await this.#record({ db: options.db, denial, now: options.now });
    })().catch((error) => options.logger.error('denial audit failed', { error }));
    this.#pending.add(task);
    void task.finally(() => this.#pending.delete(task));
  }

  /** Resolves once every denial recorded so far is on disk (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  async #record(options: { db: Database; denial: Denial; now: number }): Promise<void> {
    const { db, denial, now } = options;
    await db.transaction(async (tx) => {
      const w = await this.#windowFor(tx, denial.orgId, now);
      const key = `${denial.action}|${denial.actor.type}:${denial.actor.id}|${denial.code}`;
      if (!w.seen.has(key) && w.written < this.#perWindow) {
        w.seen.add(key);
        w.written += 1;
        await appendAudit({ db: tx, orgId: denial.orgId, actor: denial.actor, action: denial.action, target: denial.target, details: { code: denial.code, ...denial.details }, now });
        return;
      }
      const counter = `${denial.action}:${denial.code}`;
      w.suppressed.set(counter, (w.suppressed.get(counter) ?? 0) + 1);
    });
  }

  /** The organization's current window; a finished one is closed first (its summary leaf written). */
  async #windowFor(tx: Executor, orgId: string, now: number): Promise<OrgWindow> {
    const w = this.#windows.get(orgId);
    if (w && now - w.start < this.#windowMs) return w;
    if (w) await this.#writeSummary(tx, orgId, w, now);
    const fresh: OrgWindow = { start: now, written: 0, seen: new Set(), suppressed: new Map() };
    this.#windows.set(orgId, fresh);
    if (this.#windows.size > 10_000) this.#windows.delete(this.#windows.keys().next().value!);
    return fresh;
  }

  async #writeSummary(tx: Executor, orgId: string, w: OrgWindow, now: number): Promise<void> {
    if (w.suppressed.size === 0) return;
    const counts = Object.fromEntries([...w.suppressed.entries()].sort());
    const total = [...w.suppressed.values()].reduce((a, b) => a + b, 0);
    w.suppressed.clear();
    await appendAudit({
      db: tx,
      orgId,
      actor: { type: 'system', id: 'denial-aggregator' },
      action: 'denial.suppressed',
      target: orgId,
      details: { windowStart: w.start, windowEnd: Math.min(now, w.start + this.#windowMs), total, counts },
      now,
    });
  }

  /** Writes the summary of a finished window of this organization, if any (before a checkpoint). */
  async flush(options: { db: Database; orgId: string; now: number }): Promise<void> {
    const w = this.#windows.get(options.orgId);
    if (!w || options.now - w.start < this.#windowMs || w.suppressed.size === 0) return;
    await options.db.transaction(async (tx) => {
      await this.#writeSummary(tx, options.orgId, w, options.now);
    });
  }
}

export interface SignedCheckpoint {
  note: string;
  origin: string;
  size: number;
  rootHash: Uint8Array;
  keyId: Uint8Array;
}

export class AuditService {
  readonly key: ServerAuditKey | null;
  readonly denials: DenialRecorder;
  readonly #signed = new Map<string, { size: number; root: string; note: string }>();

  constructor(options: { key: ServerAuditKey | null; denials?: DenialRecorder }) {
    this.key = options.key;
    this.denials = options.denials ?? new DenialRecorder();
  }

  /** The organization's current tree head, signed. Throws when the server has no audit key. */
  async checkpoint(options: { db: Database; orgId: string; now: number }): Promise<SignedCheckpoint> {
    const key = this.requireKey();
    const { db, orgId } = options;
    await this.denials.flush({ db, orgId, now: options.now });
    await ensureAuditTree({ db, orgId });
    const { size, rootHash } = await auditTreeHead({ db, orgId });
    const origin = auditLogOrigin({ orgId });
    const root = bytesToHex(rootHash);
    let cached = this.#signed.get(orgId);
    if (!cached || cached.size !== size || cached.root !== root) {
      cached = { size, root, note: signCheckpoint({ checkpoint: { origin, size, rootHash, extensions: [] }, keyName: origin, secretKey: key.secretKey, publicKey: key.publicKey }) };
      this.#signed.set(orgId, cached);
      if (this.#signed.size > 10_000) this.#signed.delete(this.#signed.keys().next().value!);
    }
    return { note: cached.note, origin, size, rootHash, keyId: checkpointKeyId({ keyName: origin, publicKey: key.publicKey }) };
  }

  requireKey(): ServerAuditKey {
    if (!this.key) throw new TensorGuardError({ status: 503, code: 'audit_key_missing', message: 'this server was started without an audit signing key' });
    return this.key;
  }
}
