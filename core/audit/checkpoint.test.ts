// Signed checkpoints from the attacker's side: a changed size or root, a re-signed note by another
// key, a swapped key name, malformed notes; and the signed-note rules (ignore unknown signers).
import { describe, expect, it } from 'vitest';
import { sha256 } from '@noble/hashes/sha2.js';
import { generateSigningKeyPair } from '../crypto/sign.ts';
import { bytesToHex, concatBytes, toBase64, utf8ToBytes } from '../bytes.ts';
import {
  auditLogOrigin,
  checkpointKeyId,
  formatCheckpointText,
  openCheckpoint,
  parseCheckpointText,
  parseSignedNote,
  signCheckpoint,
  type Checkpoint,
} from './checkpoint.ts';
import { auditLeafHash, canonicalJson, decodeAuditLeaf, encodeAuditLeaf, type AuditEntry } from './leaf.ts';
import { hashLeaf } from './merkle.ts';

const server = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
const mallory = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
const origin = auditLogOrigin({ orgId: 'org_0123456789abcdef01234567' });
const checkpoint: Checkpoint = { origin, size: 20852163, rootHash: sha256(utf8ToBytes('root')), extensions: [] };
const note = signCheckpoint({ checkpoint, keyName: origin, secretKey: server.secretKey, publicKey: server.publicKey });

describe('checkpoint signed notes', () => {
  it('has the tlog-checkpoint layout and the signed-note signature line', () => {
    const lines = note.split('\n');
    expect(lines[0]).toBe(origin);
    expect(lines[1]).toBe('20852163');
    expect(lines[2]).toBe(toBase64(checkpoint.rootHash));
    expect(lines[3]).toBe('');
    expect(lines[4]!.startsWith(`\u2014 ${origin} `)).toBe(true);
    expect(lines[5]).toBe('');
    const { signatures, text } = parseSignedNote({ note });
    expect(text).toBe(`${origin}\n20852163\n${toBase64(checkpoint.rootHash)}\n`);
    expect(signatures).toHaveLength(1);
    expect(signatures[0]!.signature.length).toBe(3309);
  });

  it('derives the key ID as signed-note recommends with type 0xff and our identifier', () => {
    const expected = sha256(concatBytes(utf8ToBytes(origin), new Uint8Array([0x0a, 0xff]), utf8ToBytes('tensorguard/audit-checkpoint/ml-dsa-65/v1'), server.publicKey)).subarray(0, 4);
    expect(bytesToHex(checkpointKeyId({ keyName: origin, publicKey: server.publicKey }))).toBe(bytesToHex(expected));
    expect(bytesToHex(parseSignedNote({ note }).signatures[0]!.keyId)).toBe(bytesToHex(expected));
  });

  it('opens with the pinned key and returns size and root', () => {
    const opened = openCheckpoint({ note, publicKey: server.publicKey, origin });
    expect(opened.size).toBe(20852163);
    expect(bytesToHex(opened.rootHash)).toBe(bytesToHex(checkpoint.rootHash));
  });

  it('refuses a changed size or root under the original signature', () => {
    const bigger = note.replace('\n20852163\n', '\n20852164\n');
    expect(() => openCheckpoint({ note: bigger, publicKey: server.publicKey, origin })).toThrowError(expect.objectContaining({ code: 'bad_signature' }));
    const otherRoot = note.replace(toBase64(checkpoint.rootHash), toBase64(sha256(utf8ToBytes('forged'))));
    expect(() => openCheckpoint({ note: otherRoot, publicKey: server.publicKey, origin })).toThrowError(expect.objectContaining({ code: 'bad_signature' }));
  });

  it('refuses a flipped signature byte', () => {
    const { text, signatures } = parseSignedNote({ note });
    const raw = concatBytes(signatures[0]!.keyId, signatures[0]!.signature);
    raw[100]! ^= 1;
    const tampered = `${text}\n\u2014 ${origin} ${toBase64(raw)}\n`;
    expect(() => openCheckpoint({ note: tampered, publicKey: server.publicKey, origin })).toThrowError(expect.objectContaining({ code: 'bad_signature' }));
  });

  it('refuses a note re-signed by another key, even under the same name', () => {
    const forged = signCheckpoint({ checkpoint: { ...checkpoint, size: 1 }, keyName: origin, secretKey: mallory.secretKey, publicKey: mallory.publicKey });
    expect(() => openCheckpoint({ note: forged, publicKey: server.publicKey, origin })).toThrowError(expect.objectContaining({ code: 'untrusted_signer' }));
  });

  it('ignores unknown signatures but still needs the pinned one', () => {
    const extra = signCheckpoint({ checkpoint, keyName: 'witness.example/w1', secretKey: mallory.secretKey, publicKey: mallory.publicKey }).split('\n\n')[1]!;
    const cosigned = note + extra;
    expect(openCheckpoint({ note: cosigned, publicKey: server.publicKey, origin }).size).toBe(checkpoint.size);
  });

  it('refuses a checkpoint for another organization\'s log', () => {
    const other = auditLogOrigin({ orgId: 'org_other' });
    const n = signCheckpoint({ checkpoint: { ...checkpoint, origin: other }, keyName: other, secretKey: server.secretKey, publicKey: server.publicKey });
    expect(() => openCheckpoint({ note: n, publicKey: server.publicKey, origin })).toThrowError(expect.objectContaining({ code: 'untrusted_signer' }));
  });

  it('refuses malformed notes and checkpoint texts with FormatError', () => {
    const bad = [
      note.slice(0, -1), // no final newline
      note.replace('\n\n', '\n'), // no blank line
      note.replace('\u2014', '-'),
      note.replace('\n20852163\n', '\n\t20852163\n'),
      `${origin}\n1\n${toBase64(checkpoint.rootHash)}\n\n`,
    ];
    for (const n of bad) expect(() => openCheckpoint({ note: n, publicKey: server.publicKey, origin }), JSON.stringify(n.slice(0, 80))).toThrowError(expect.objectContaining({ code: 'malformed' }));
    for (const t of [`${origin}\n01\n${toBase64(checkpoint.rootHash)}\n`, `${origin}\n1\nAAAA\n`, `${origin}\n1\n`, `${origin}\n1\n${toBase64(checkpoint.rootHash)}\n\n`, `\n1\n${toBase64(checkpoint.rootHash)}\n`])
      expect(() => parseCheckpointText({ text: t }), t).toThrowError(expect.objectContaining({ code: 'malformed' }));
    expect(() => formatCheckpointText({ checkpoint: { ...checkpoint, origin: 'has space' } })).toThrow(TypeError);
  });
});

describe('audit leaves', () => {
  const entry: AuditEntry = { orgId: 'org_1', actorType: 'user', actorId: 'usr_1', action: 'user.create', target: 'usr_2', details: { roles: ['auditor'], name: 'Zoë' }, at: 1_700_000_000_000 };

  it('are the canonical JSON of the entry, hashed as RFC 6962 leaves', () => {
    const bytes = encodeAuditLeaf({ entry });
    expect(new TextDecoder().decode(bytes)).toBe('{"action":"user.create","actorId":"usr_1","actorType":"user","at":1700000000000,"details":{"name":"Zoë","roles":["auditor"]},"orgId":"org_1","target":"usr_2"}');
    expect(bytesToHex(auditLeafHash({ entry }))).toBe(bytesToHex(hashLeaf(bytes)));
    expect(decodeAuditLeaf({ bytes })).toEqual(entry);
  });

  it('refuse non-canonical or incomplete leaf bytes', () => {
    expect(() => decodeAuditLeaf({ bytes: utf8ToBytes(JSON.stringify(entry)) })).toThrowError(expect.objectContaining({ code: 'malformed' }));
    expect(() => decodeAuditLeaf({ bytes: utf8ToBytes(canonicalJson({ ...entry, extra: 1 })) })).toThrowError(expect.objectContaining({ code: 'malformed' }));
    expect(() => decodeAuditLeaf({ bytes: utf8ToBytes(canonicalJson({ ...entry, actorType: 'root' })) })).toThrowError(expect.objectContaining({ code: 'malformed' }));
    expect(() => canonicalJson({ x: Number.NaN })).toThrow(RangeError);
  });
});
