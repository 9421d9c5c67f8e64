// Signed tree heads as C2SP tlog-checkpoint signed notes (c2sp.org/tlog-checkpoint, c2sp.org/signed-note):
//
//   <origin>\n<tree size, decimal>\n<base64 root hash>\n[extension lines\n]
//   \n
//   — <key name> <base64(key ID[4] || signature)>\n
//
// The server signs with its own ML-DSA-65 key (FIPS 204). ML-DSA has no signed-note signature type
// byte, so we use 0xff ("types without an assigned identifier byte", followed by a longer identifier,
// as the signed-note spec recommends) with the identifier ASCII "tensorguard/audit-checkpoint/ml-dsa-65/v1":
//
//   key ID    = SHA-256(key name || 0x0A || 0xff || identifier || 1952-byte public key)[:4]  (big-endian)
//   signature = ML-DSA-65(fingerprint("audit-checkpoint/v1", note text))                    (3309 bytes)
//
// where fingerprint is core/codec/fingerprint.ts (SHA-256 of "tensorguard/audit-checkpoint/v1" 0x00
// text), the same digest-then-sign rule every TensorGuard signature follows. The note text is
// everything before the separating blank line, including its final newline. Following the spec,
// verifiers ignore signatures from keys they do not know, reject the note if a known key's signature
// fails, and reject it if no known key signed.
import { sha256 } from '@noble/hashes/sha2.js';
import { fingerprint } from '../codec/fingerprint.ts';
import { FormatError, SignatureInvalidError, UntrustedSignerError, describe } from '../errors.ts';
import { concatBytes, equalBytes, fromBase64, toBase64, utf8ToBytes } from '../bytes.ts';
import { SIGNATURE_SIZES, signFingerprint, verifyFingerprint } from '../crypto/sign.ts';
import { HASH_SIZE } from './merkle.ts';

export const CHECKPOINT_DOMAIN = 'audit-checkpoint/v1';
export const CHECKPOINT_SIGNATURE_TYPE = 0xff;
export const CHECKPOINT_ALGORITHM_ID = 'tensorguard/audit-checkpoint/ml-dsa-65/v1';
/** Spec: accept at least 16 signatures; post-quantum ones are ~4.4 KB of base64 each. */
export const MAX_NOTE_SIGNATURES = 16;
export const MAX_NOTE_BYTES = 128 * 1024;
const MAX_TEXT_BYTES = 16 * 1024;
const EM_DASH = '\u2014';

export interface Checkpoint {
  origin: string;
  size: number;
  rootHash: Uint8Array;
  extensions: string[];
}

export interface NoteSignature {
  keyName: string;
  keyId: Uint8Array;
  signature: Uint8Array;
}

/** The origin (and key name) of an organization's audit log on a TensorGuard server. */
export function auditLogOrigin(options: { orgId: string }): string {
  const origin = `tensorguard.audit/${options.orgId}`;
  checkKeyName(origin);
  return origin;
}

function checkKeyName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || /[\s+]/u.test(name) || /[\u0000-\u001f]/.test(name))
    throw new TypeError(`"keyName" expected a non-empty name without spaces or '+', got ${describe(name)}`);
}

export function checkpointKeyId(options: { keyName: string; publicKey: Uint8Array }): Uint8Array {
  checkKeyName(options.keyName);
  const hash = sha256(
    concatBytes(utf8ToBytes(options.keyName), new Uint8Array([0x0a, CHECKPOINT_SIGNATURE_TYPE]), utf8ToBytes(CHECKPOINT_ALGORITHM_ID), options.publicKey),
  );
  return hash.subarray(0, 4);
}

export function formatCheckpointText(options: { checkpoint: Checkpoint }): string {
  const c = options.checkpoint;
  checkKeyName(c.origin); // an origin SHOULD be a schema-less URL without spaces or '+'; we require it
  if (!Number.isSafeInteger(c.size) || c.size < 0) throw new RangeError(`"size" expected integer >= 0, got ${describe(c.size)}`);
  if (!(c.rootHash instanceof Uint8Array) || c.rootHash.length !== HASH_SIZE) throw new RangeError(`"rootHash" expected Uint8Array(${HASH_SIZE}), got ${describe(c.rootHash)}`);
  for (const line of c.extensions) {
    if (line.length === 0 || line.includes('\n') || /[\u0000-\u001f]/.test(line)) throw new RangeError(`"extensions" expected non-empty single lines, got ${describe(line)}`);
  }
  return [c.origin, String(c.size), toBase64(c.rootHash), ...c.extensions].join('\n') + '\n';
}

export function signCheckpoint(options: { checkpoint: Checkpoint; keyName: string; secretKey: Uint8Array; publicKey: Uint8Array }): string {
  const text = formatCheckpointText({ checkpoint: options.checkpoint });
  const keyId = checkpointKeyId({ keyName: options.keyName, publicKey: options.publicKey });
  const signature = signFingerprint({
    algorithm: 'ml-dsa-65',
    fingerprint: fingerprint({ domain: CHECKPOINT_DOMAIN, bytes: utf8ToBytes(text) }),
    secretKey: options.secretKey,
  });
  return `${text}\n${EM_DASH} ${options.keyName} ${toBase64(concatBytes(keyId, signature))}\n`;
}

/** Splits a signed note into its text and signature lines (signed-note "Format"). No verification. */
export function parseSignedNote(options: { note: string }): { text: string; signatures: NoteSignature[] } {
  const { note } = options;
  if (typeof note !== 'string') throw new FormatError(`signed note: expected text, got ${describe(note)}`);
  if (utf8ToBytes(note).length > MAX_NOTE_BYTES) throw new FormatError(`signed note: larger than ${MAX_NOTE_BYTES} bytes`);
  if (/[\u0000-\u0009\u000b-\u001f]/.test(note)) throw new FormatError('signed note: contains control characters other than newline');
  if (/[\ud800-\udfff]/.test(note.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''))) throw new FormatError('signed note: not valid UTF-8');
  if (!note.endsWith('\n')) throw new FormatError('signed note: must end with a newline');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new FormatError('signed note: no blank line before the signatures');
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  if (lines.length === 0 || lines[0] === '') throw new FormatError('signed note: no signature lines');
  if (lines.length > MAX_NOTE_SIGNATURES) throw new FormatError(`signed note: more than ${MAX_NOTE_SIGNATURES} signatures`);
  const signatures = lines.map((line, i) => {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/]+={0,2})$/.exec(line);
    if (!m || m[1]!.includes('+')) throw new FormatError(`signed note: signature line ${i + 1} is not "— <key name> <base64>"`);
    let raw: Uint8Array;
    try {
      raw = fromBase64(m[2]!, 'signature');
    } catch {
      throw new FormatError(`signed note: signature line ${i + 1} is not base64`);
    }
    if (raw.length < 5) throw new FormatError(`signed note: signature line ${i + 1} is too short`);
    return { keyName: m[1]!, keyId: raw.slice(0, 4), signature: raw.slice(4) };
  });
  return { text, signatures };
}

/** Parses checkpoint note text (tlog-checkpoint "Note text"); refuses anything non-canonical. */
export function parseCheckpointText(options: { text: string }): Checkpoint {
  const { text } = options;
  if (utf8ToBytes(text).length > MAX_TEXT_BYTES) throw new FormatError('checkpoint: note text too large');
  if (!text.endsWith('\n')) throw new FormatError('checkpoint: note text must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw new FormatError('checkpoint: needs origin, tree size and root hash lines');
  const [origin, sizeText, rootText, ...extensions] = lines as [string, string, string, ...string[]];
  if (origin.length === 0 || /\s/u.test(origin)) throw new FormatError('checkpoint: origin line must be non-empty and contain no spaces');
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) throw new FormatError(`checkpoint: tree size ${JSON.stringify(sizeText)} is not a canonical decimal`);
  let rootHash: Uint8Array;
  try {
    rootHash = fromBase64(rootText, 'root hash');
  } catch {
    throw new FormatError('checkpoint: root hash is not base64');
  }
  if (rootHash.length !== HASH_SIZE || toBase64(rootHash) !== rootText) throw new FormatError(`checkpoint: root hash must be ${HASH_SIZE} bytes of canonical base64`);
  if (extensions.some((l) => l.length === 0)) throw new FormatError('checkpoint: extension lines must be non-empty');
  return { origin, size: Number(sizeText), rootHash, extensions };
}

/**
 * Verifies a signed checkpoint against one pinned server key and returns its content. The key name
 * must be the expected origin (tlog-checkpoint: the key name SHOULD match the origin; we require it).
 * Throws FormatError (malformed), SignatureInvalidError (the pinned key's signature fails) or
 * UntrustedSignerError (no signature by the pinned key).
 */
export function openCheckpoint(options: { note: string; publicKey: Uint8Array; origin: string }): Checkpoint & { text: string } {
  const { text, signatures } = parseSignedNote({ note: options.note });
  const keyId = checkpointKeyId({ keyName: options.origin, publicKey: options.publicKey });
  const ours = signatures.filter((s) => s.keyName === options.origin && equalBytes(s.keyId, keyId));
  if (ours.length === 0) throw new UntrustedSignerError(`checkpoint: not signed by the pinned key for ${options.origin}`);
  const fp = fingerprint({ domain: CHECKPOINT_DOMAIN, bytes: utf8ToBytes(text) });
  for (const s of ours) {
    if (s.signature.length !== SIGNATURE_SIZES['ml-dsa-65'].signature) throw new SignatureInvalidError('checkpoint: signature has the wrong length for ML-DSA-65');
    verifyFingerprint({ algorithm: 'ml-dsa-65', fingerprint: fp, signature: s.signature, publicKey: options.publicKey, what: 'checkpoint' });
  }
  const checkpoint = parseCheckpointText({ text });
  if (checkpoint.origin !== options.origin) throw new FormatError(`checkpoint: origin ${JSON.stringify(checkpoint.origin)} is not ${JSON.stringify(options.origin)}`);
  return { ...checkpoint, text };
}

