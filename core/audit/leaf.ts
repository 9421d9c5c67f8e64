// An audit leaf: the canonical bytes of one audit-log entry, and its RFC 6962 leaf hash.
//
// leaf bytes = UTF-8 of the canonical JSON of {orgId, actorType, actorId, action, target, details, at}
// (object keys sorted by UTF-16 code units, no whitespace, `undefined` members dropped, numbers as
// JSON.stringify writes them); leaf hash = SHA-256(0x00 || leaf bytes) (RFC 6962 section 2.1). The
// server, the CLI and the PWA share this file, so a client recomputes every leaf hash itself.
import { FormatError, describe } from '../errors.ts';
import { bytesToUtf8, utf8ToBytes } from '../bytes.ts';
import { hashLeaf } from './merkle.ts';

export interface AuditEntry {
  orgId: string;
  actorType: 'user' | 'robot' | 'system';
  actorId: string;
  action: string;
  target: string;
  details: Record<string, unknown>;
  at: number;
}

const ACTOR_TYPES = new Set(['user', 'robot', 'system']);
/** The largest leaf the log accepts (details are small metadata, never payloads). */
export const MAX_LEAF_BYTES = 16 * 1024;

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new RangeError('"value" expected finite numbers only');
    if (typeof value === 'bigint' || typeof value === 'function' || typeof value === 'symbol') throw new TypeError(`"value" expected JSON, got ${typeof value}`);
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function encodeAuditLeaf(options: { entry: AuditEntry }): Uint8Array {
  const e = options.entry;
  const bytes = utf8ToBytes(
    canonicalJson({ orgId: e.orgId, actorType: e.actorType, actorId: e.actorId, action: e.action, target: e.target, details: e.details, at: e.at }),
  );
  if (bytes.length > MAX_LEAF_BYTES) throw new RangeError(`"entry" expected at most ${MAX_LEAF_BYTES} bytes of canonical JSON, got ${bytes.length}`);
  return bytes;
}

export function auditLeafHash(options: { entry: AuditEntry }): Uint8Array {
  return hashLeaf(encodeAuditLeaf(options));
}

/** Parses leaf bytes back into an entry; refuses anything that is not exactly the canonical encoding. */
export function decodeAuditLeaf(options: { bytes: Uint8Array }): AuditEntry {
  const { bytes } = options;
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`"bytes" expected Uint8Array, got ${describe(bytes)}`);
  if (bytes.length > MAX_LEAF_BYTES) throw new FormatError(`audit leaf of ${bytes.length} bytes exceeds ${MAX_LEAF_BYTES}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytesToUtf8(bytes));
  } catch {
    throw new FormatError('audit leaf is not UTF-8 JSON');
  }
  const o = parsed as Record<string, unknown>;
  const ok =
    o !== null &&
    typeof o === 'object' &&
    !Array.isArray(o) &&
    typeof o.orgId === 'string' &&
    typeof o.actorType === 'string' &&
    ACTOR_TYPES.has(o.actorType) &&
    typeof o.actorId === 'string' &&
    typeof o.action === 'string' &&
    typeof o.target === 'string' &&
    o.details !== null &&
    typeof o.details === 'object' &&
    !Array.isArray(o.details) &&
    typeof o.at === 'number' &&
    Number.isSafeInteger(o.at) &&
    Object.keys(o).length === 7;
  if (!ok) throw new FormatError('audit leaf does not have the fields {orgId, actorType, actorId, action, target, details, at}');
  const entry = o as unknown as AuditEntry;
  const again = encodeAuditLeaf({ entry });
  if (again.length !== bytes.length || again.some((b, i) => b !== bytes[i])) throw new FormatError('audit leaf is not in canonical form');
  return entry;
}
