// `tensorguard officer …` key lifecycle: rotate and revoke HE keys, list versions with their rounds, and
// recovery of the officer's secrets through designated recovery officers' ML-KEM-768 keys.
//
//   officer rotate-he-key                      a new HE key version (the old secret keys stay sealed
//                                              in this home, so rounds opened under them can be reviewed)
//   officer revoke-he-key --version N --reason  an officer-signed revocation (core/records/revocation.ts)
//   officer he-keys                            versions, revocations and the rounds pinned to each
//   officer recovery keygen --out FILE         (recovery officer) an ML-KEM-768 key pair; FILE = public key
//   officer recovery add --kem-public-key FILE (officer) designate a recovery officer
//   officer recovery export --out FILE         (officer) the secrets wrapped to every designated key
//   officer recovery restore --from FILE       (recovery officer) unwrap them into this home
// Every recovery step is posted to the server's audit log (POST /v1/audit/events) before it takes
// effect locally, so a step the server did not record does not happen.
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import type { CommandContext } from '../context.ts';
import { CliError } from '../context.ts';
import { sessionClient } from '../session-client.ts';
import { ApiClient } from '../api.ts';
import { exists, openFromFile, readJson, sealToFile, writeFileAtomic, writeJson } from '../home.ts';
import { loadOfficerSecrets, officerInit } from './officer.ts';
import { generateKemKeyPair, KEM_SIZES } from '../../core/crypto/kem.ts';
import { bytesToHex, equalBytes, fromBase64, toBase64 } from '../../core/bytes.ts';
import { sha256 } from '../../core/codec/fingerprint.ts';
import { openKeyRecord } from '../../core/records/key-record.ts';
import { signKeyRevocation } from '../../core/records/revocation.ts';
import { encodeOfficerSecrets } from '../../core/records/officer-secrets.ts';
import { buildOfficerRecovery, recoverOfficerSecrets, recoveryRecipientId } from '../../core/records/officer-recovery.ts';
import { ByteReader, ByteWriter } from '../../core/codec/binary.ts';

const KEM_PUBLIC_FORMAT = 'tensorguard-recovery-kem-public-key/v1';
const TYPE_RECOVERY_KEM_SECRET = 0x41;

interface RecoveryRecipients {
  recipients: Array<{ id: string; name: string; publicKey: string; addedAt: string }>;
}

const officerDir = (home: string) => join(home, 'officer');
const recoveryDir = (home: string) => join(home, 'recovery');

async function requireOfficerHome(ctx: CommandContext): Promise<void> {
  if (!(await exists(join(officerDir(ctx.home), 'secrets.sealed'))))
    throw new CliError(`no officer keys in ${ctx.home}; run tensorguard officer init (or officer recovery restore)`, 'not_initialized');
}

async function postAuditEvent(api: ApiClient, event: { action: string; target: string; details: Record<string, unknown> }): Promise<number> {
  return (await api.json<{ index: number }>('POST', '/v1/audit/events', event)).index;
}

/** `officer rotate-he-key`: a new HE key version; new rounds pin it, old versions stay reviewable. */
export async function officerRotateHeKey(ctx: CommandContext): Promise<Record<string, unknown>> {
  await requireOfficerHome(ctx);
  const before = (await loadOfficerSecrets(ctx)).he.map((k) => k.keyVersion);
  const result = await officerInit(ctx);
  return { ...result, previousVersion: before.length > 0 ? Math.max(...before) : null, secretKeyVersionsHeld: [...before, result.keyVersion] };
}

/** `officer revoke-he-key`: signs and posts a revocation of one HE key version. */
export async function officerRevokeHeKey(ctx: CommandContext, opts: { version: number; reason: string }): Promise<Record<string, unknown>> {
  await requireOfficerHome(ctx);
  const { session, api } = await sessionClient(ctx);
  const secrets = await loadOfficerSecrets(ctx);
  const served = await api.json<{ record: string }>('GET', `/v1/he-keys/${opts.version}`);
  const officerKeys = (await api.json<Array<{ publicKey: string }>>('GET', '/v1/officer-keys')).map((k) => fromBase64(k.publicKey));
  // Revoke exactly the record an officer of this organization signed (not whatever the server says).
  const key = openKeyRecord({ bytes: fromBase64(served.record), trustedKeys: officerKeys.length > 0 ? officerKeys : [secrets.dsa.publicKey] });
  if (key.record.keyVersion !== opts.version || key.record.orgId !== session.orgId) throw new CliError('the server returned another key record than the one asked for', 'integrity');
  const revokedAt = Date.now();
  const record = signKeyRevocation({
    revocation: { orgId: session.orgId, keyVersion: opts.version, heKeyFingerprint: key.fingerprint, reason: opts.reason, revokedAt },
    secretKey: secrets.dsa.secretKey,
    publicKey: secrets.dsa.publicKey,
  });
  const res = await api.json<Record<string, unknown>>('POST', `/v1/he-keys/${opts.version}/revoke`, { record: toBase64(record) });
  return { version: opts.version, heKeyFingerprint: bytesToHex(key.fingerprint), revokedAt, fingerprint: res.fingerprint };
}

/** `officer he-keys`: the organization's HE key versions, revocations and pinned rounds. */
export async function officerHeKeys(ctx: CommandContext): Promise<unknown> {
  const { api } = await sessionClient(ctx);
  return api.json('GET', '/v1/he-keys');
}

async function readKemPublicKey(file: string): Promise<Uint8Array> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new CliError(`cannot read ${file}`, 'not_found');
  }
  let doc: { format?: string; publicKey?: string };
  try {
    doc = JSON.parse(text);
  } catch {
    throw new CliError(`${file} is not a ${KEM_PUBLIC_FORMAT} file`, 'bad_key_file');
  }
  if (doc.format !== KEM_PUBLIC_FORMAT || typeof doc.publicKey !== 'string') throw new CliError(`${file} is not a ${KEM_PUBLIC_FORMAT} file`, 'bad_key_file');
  const key = fromBase64(doc.publicKey, 'publicKey');
  if (key.length !== KEM_SIZES.publicKey) throw new CliError(`${file}: an ML-KEM-768 public key is ${KEM_SIZES.publicKey} bytes, got ${key.length}`, 'bad_key_file');
  return key;
}

/** `officer recovery keygen` (recovery officer): an ML-KEM-768 key pair, secret sealed in this home. */
export async function recoveryKeygen(ctx: CommandContext, opts: { out: string; force?: boolean }): Promise<Record<string, unknown>> {
  const sealedPath = join(recoveryDir(ctx.home), 'kem.sealed');
  if ((await exists(sealedPath)) && !opts.force) throw new CliError(`${ctx.home} already holds a recovery key; pass --force to replace it`, 'recovery_key_exists');
  const kem = generateKemKeyPair();
  const sealed = new ByteWriter().header(TYPE_RECOVERY_KEM_SECRET, 1).bytes(kem.publicKey, KEM_SIZES.publicKey).bytes(kem.secretKey, KEM_SIZES.secretKey).finish();
  await sealToFile({ path: sealedPath, plaintext: sealed, passphrase: await ctx.passphrase('the recovery key') });
  const id = recoveryRecipientId({ kemPublicKey: kem.publicKey });
  await writeFileAtomic(opts.out, JSON.stringify({ format: KEM_PUBLIC_FORMAT, publicKey: toBase64(kem.publicKey), id }, null, 2) + '\n', 0o644);
  return { id, out: opts.out };
}

/** `officer recovery add` (officer): designates a recovery officer's ML-KEM-768 public key. */
export async function recoveryAdd(ctx: CommandContext, opts: { kemPublicKey: string; name?: string }): Promise<Record<string, unknown>> {
  await requireOfficerHome(ctx);
  const { api } = await sessionClient(ctx);
  const publicKey = await readKemPublicKey(opts.kemPublicKey);
  const id = recoveryRecipientId({ kemPublicKey: publicKey });
  const path = join(officerDir(ctx.home), 'recovery.json');
  const doc = (await readJson<RecoveryRecipients>(path)) ?? { recipients: [] };
  if (doc.recipients.some((r) => r.id === id)) return { id, recipients: doc.recipients.length, added: false };
  const name = opts.name ?? id.slice(0, 16);
  await postAuditEvent(api, { action: 'officer.recovery.add', target: id.slice(0, 64), details: { name } });
  doc.recipients.push({ id, name, publicKey: toBase64(publicKey), addedAt: new Date().toISOString() });
  await writeJson(path, doc);
  return { id, name, recipients: doc.recipients.length, added: true };
}

/** `officer recovery remove` (officer): no longer wraps to this key in later exports. */
export async function recoveryRemove(ctx: CommandContext, opts: { id: string }): Promise<Record<string, unknown>> {
  await requireOfficerHome(ctx);
  const { api } = await sessionClient(ctx);
  const path = join(officerDir(ctx.home), 'recovery.json');
  const doc = (await readJson<RecoveryRecipients>(path)) ?? { recipients: [] };
  const found = doc.recipients.find((r) => r.id === opts.id || r.id.startsWith(opts.id));
  if (!found) throw new CliError(`no recovery key ${opts.id} is designated`, 'not_found');
  await postAuditEvent(api, { action: 'officer.recovery.remove', target: found.id, details: { name: found.name } });
  doc.recipients = doc.recipients.filter((r) => r !== found);
  await writeJson(path, doc);
  return { id: found.id, recipients: doc.recipients.length };
}

/** `officer recovery export` (officer): the recovery package for every designated recovery officer. */
export async function recoveryExport(ctx: CommandContext, opts: { out: string }): Promise<Record<string, unknown>> {
  await requireOfficerHome(ctx);
  const { session, api } = await sessionClient(ctx);
  const doc = await readJson<RecoveryRecipients>(join(officerDir(ctx.home), 'recovery.json'));
  if (!doc || doc.recipients.length === 0) throw new CliError('no recovery officer is designated; run tensorguard officer recovery add --kem-public-key FILE first', 'no_recovery_officers');
  const secrets = await loadOfficerSecrets(ctx);
  const { bytes, recovery } = buildOfficerRecovery({ orgId: session.orgId, secrets, recipients: doc.recipients.map((r) => fromBase64(r.publicKey)), createdAt: Date.now() });
  const heKeyVersions = secrets.he.map((k) => k.keyVersion);
  await postAuditEvent(api, {
    action: 'officer.recovery.export',
    target: recovery.packageId,
    details: { recipients: doc.recipients.map((r) => r.id), secretsSha256: bytesToHex(recovery.secretsSha256), heKeyVersions: heKeyVersions.length, officerKeyId: officerKeyId(secrets.dsa.publicKey) },
  });
  await writeFileAtomic(opts.out, bytes, 0o600);
  return { out: opts.out, packageId: recovery.packageId, recipients: doc.recipients.map((r) => r.id), heKeyVersions };
}

function officerKeyId(publicKey: Uint8Array): string {
  return bytesToHex(sha256(publicKey)).slice(0, 16);
}

/**
 * `officer recovery restore` (recovery officer): unwraps a recovery package with this home's recovery
 * key, checks it is signed by an officer key the organization registered, and seals the secrets in
 * this home as its officer keys.
 */
export async function recoveryRestore(ctx: CommandContext, opts: { from: string; force?: boolean }): Promise<Record<string, unknown>> {
  const { session, api } = await sessionClient(ctx);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(opts.from));
  } catch {
    throw new CliError(`cannot read ${opts.from}`, 'not_found');
  }
  const sealedKem = await openFromFile({ path: join(recoveryDir(ctx.home), 'kem.sealed'), passphrase: await ctx.passphrase('the recovery key') });
  const r = new ByteReader(sealedKem, 'recovery key');
  r.header(TYPE_RECOVERY_KEM_SECRET, [1]);
  const kem = { publicKey: r.bytes(KEM_SIZES.publicKey, 'publicKey'), secretKey: r.bytes(KEM_SIZES.secretKey, 'secretKey') };
  r.end();
  const officerKeys = (await api.json<Array<{ publicKey: string }>>('GET', '/v1/officer-keys')).map((k) => fromBase64(k.publicKey));
  const { secrets, recovery } = recoverOfficerSecrets({ bytes, kemPublicKey: kem.publicKey, kemSecretKey: kem.secretKey, trustedKeys: officerKeys });
  if (recovery.orgId !== session.orgId) throw new CliError(`the recovery package is for organization ${recovery.orgId}, this session is ${session.orgId}`, 'integrity');
  const sealedPath = join(officerDir(ctx.home), 'secrets.sealed');
  if ((await exists(sealedPath)) && !opts.force) {
    const existing = await loadOfficerSecrets(ctx);
    if (!equalBytes(existing.dsa.publicKey, secrets.dsa.publicKey)) throw new CliError(`${ctx.home} already holds another officer's keys; pass --force to replace them`, 'officer_exists');
  }
  const heKeyVersions = secrets.he.map((k) => k.keyVersion);
  await postAuditEvent(api, {
    action: 'officer.recovery.restore',
    target: recovery.packageId,
    details: { recipient: recoveryRecipientId({ kemPublicKey: kem.publicKey }), officerKeyId: officerKeyId(secrets.dsa.publicKey), heKeyVersions: heKeyVersions.length },
  });
  await sealToFile({ path: sealedPath, plaintext: encodeOfficerSecrets({ secrets }), passphrase: await ctx.passphrase('the officer keys') });
  await writeJson(join(officerDir(ctx.home), 'identity.json'), { dsaPublicKey: toBase64(secrets.dsa.publicKey), officerKeyId: officerKeyId(secrets.dsa.publicKey), heKeyVersions });
  return { packageId: recovery.packageId, officerKeyId: officerKeyId(secrets.dsa.publicKey), heKeyVersions };
}
