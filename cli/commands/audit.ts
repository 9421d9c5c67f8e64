// `tensorguard audit verify`: check the organization's audit log the way an auditor should — the
// server's signed checkpoint under the audit key pinned on first use, every leaf since the last head
// this home verified (all of them with --full) rehashed and appended to the remembered tree, and the
// server's consistency proof. The verified head is stored in <home>/audit/<orgId>.json; on any
// inconsistency nothing is stored, the alarm is appended there, and the command exits 3 with
// `audit_inconsistent` (or `audit_key_changed`). The checks themselves are core/audit/verifier.ts.
import { join } from 'node:path';
import type { CommandContext } from '../context.ts';
import { CliError } from '../context.ts';
import { ApiClient } from '../api.ts';
import { readJson, readSession, writeJson } from '../home.ts';
import { AuditInconsistentError, AuditKeyChangedError, leafBytes, verifyAuditLog, type AuditLogSource, type VerifiedHead } from '../../core/audit/verifier.ts';
import { checkpointKeyId } from '../../core/audit/checkpoint.ts';
import { bytesToHex, fromBase64, hexToBytes, toBase64 } from '../../core/bytes.ts';

const HEAD_FORMAT = 'tensorguard-audit-head/v1';
/** Exit status of an audit alarm (distinct from ordinary failures, which exit 1). */
export const AUDIT_ALARM_EXIT = 3;

interface StoredHead {
  format: typeof HEAD_FORMAT;
  server: string;
  origin: string;
  publicKey: string;
  keyId: string;
  size: number;
  rootHash: string;
  compactRange: string[];
  checkpoint: string;
  verifiedAt: string;
  alarms?: Array<{ at: string; code: string; message: string }>;
}

const headPath = (home: string, orgId: string) => join(home, 'audit', `${orgId}.json`);

function toHead(s: StoredHead): VerifiedHead {
  return { origin: s.origin, publicKey: fromBase64(s.publicKey), size: s.size, rootHash: hexToBytes(s.rootHash), compactRange: s.compactRange.map(hexToBytes), checkpoint: s.checkpoint };
}

export function httpAuditSource(api: ApiClient): AuditLogSource {
  return {
    key: async () => fromBase64((await api.json<{ publicKey: string }>('GET', '/v1/audit/key')).publicKey),
    checkpoint: async () => (await api.json<{ checkpoint: string }>('GET', '/v1/audit/checkpoint')).checkpoint,
    leaves: async (start, end) =>
      (await api.json<{ leaves: Array<{ index: number; data: string }> }>('GET', `/v1/audit/leaves?start=${start}&end=${end}`)).leaves.map((l) => ({ index: l.index, data: leafBytes(l.data) })),
    consistency: async (from, to) => (await api.json<{ proof: string[] }>('GET', `/v1/audit/proof/consistency?from=${from}&to=${to}`)).proof.map(hexToBytes),
  };
}

export async function auditVerify(ctx: CommandContext, opts: { full?: boolean }): Promise<Record<string, unknown>> {
  const session = await readSession(ctx.home);
  const api = new ApiClient(session.server, { kind: 'session', token: session.token });
  const path = headPath(ctx.home, session.orgId);
  const stored = await readJson<StoredHead>(path);
  if (stored && stored.format !== HEAD_FORMAT) throw new CliError(`${path} is not a ${HEAD_FORMAT} file`, 'home_corrupt');
  const previous = stored ? toHead(stored) : null;
  let bar: ReturnType<CommandContext['progress']> | null = null;
  const t0 = performance.now();
  let result;
  try {
    result = await verifyAuditLog({
      source: httpAuditSource(api),
      orgId: session.orgId,
      previous,
      full: !!opts.full,
      onProgress: (done, total) => {
        bar ??= ctx.progress('Verifying audit leaves', total);
        bar.update(done);
      },
    });
  } catch (err) {
    if (err instanceof AuditInconsistentError || err instanceof AuditKeyChangedError) {
      if (stored) {
        stored.alarms = [...(stored.alarms ?? []), { at: new Date().toISOString(), code: err.code, message: err.message }].slice(-100);
        await writeJson(path, stored);
      }
      const hint = err instanceof AuditKeyChangedError ? ` (to accept a new key after confirming it out of band, remove ${path})` : '';
      throw new CliError(`AUDIT ALARM: ${err.message}${hint}`, err.code, AUDIT_ALARM_EXIT);
    }
    throw err;
  } finally {
    (bar as ReturnType<CommandContext['progress']> | null)?.stop();
  }
  const head = result.head;
  const keyId = bytesToHex(checkpointKeyId({ keyName: head.origin, publicKey: head.publicKey }));
  await writeJson(path, {
    format: HEAD_FORMAT,
    server: session.server,
    origin: head.origin,
    publicKey: toBase64(head.publicKey),
    keyId,
    size: head.size,
    rootHash: bytesToHex(head.rootHash),
    compactRange: head.compactRange.map(bytesToHex),
    checkpoint: head.checkpoint,
    verifiedAt: new Date().toISOString(),
    alarms: stored?.alarms,
  } satisfies StoredHead);
  if (result.keyPinnedNow) ctx.log(`Pinned the server audit key ${keyId} for ${head.origin}; later runs alarm if it changes.`);
  return {
    status: 'consistent',
    origin: head.origin,
    keyId,
    keyPinnedNow: result.keyPinnedNow,
    previousSize: result.previousSize,
    size: head.size,
    rootHash: bytesToHex(head.rootHash),
    leavesChecked: result.leavesChecked,
    actions: result.actions,
    ms: Math.round(performance.now() - t0),
  };
}
