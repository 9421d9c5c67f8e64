// The HE key lifecycle through the real CLI and server: rotation (new rounds pin the newest version;
// a round opened under v1 is still reviewed with v1's secret key after rotating to v2), revocation
// (robots believe only officer-signed revocations and then refuse to encrypt), and recovery of the
// officer keys by a designated recovery officer — every step in the audit log.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runCli, startServerProcess } from '../helpers/cli.ts';
import { startProxy } from '../helpers/proxy.ts';
import { loadAdapterDir, saveAdapterDir } from '../../cli/home.ts';
import { perturbAdapter } from '../../cli/synthetic-adapter.ts';
import { trainableTensorNames } from '../../core/round/mask.ts';
import { bytesToHex, toBase64 } from '../../core/bytes.ts';
import { randomBytes } from '../../core/random.ts';
import { generateSigningKeyPair } from '../../core/crypto/sign.ts';
import { signKeyRevocation } from '../../core/records/revocation.ts';

const VECTOR = resolve(import.meta.dirname, '../vectors/peft/tiny-lora');
const env = { TG_PASSPHRASE: `pp-${bytesToHex(randomBytes(8))}`, TG_PASSWORD: `pw-${bytesToHex(randomBytes(8))}` };

let root: string;
let server: { url: string; stop(): Promise<void> };
let proxy: Awaited<ReturnType<typeof startProxy>>;
let fleet: string;
let orgId: string;
let round1: string;
let round2: string;
const adapters: string[] = [];
const officer = () => join(root, 'officer');
const rescuer = () => join(root, 'rescuer');
const robot = (i: number) => join(root, `robot-${i}`);
const template = () => join(root, 'template');
const cli = (home: string, ...args: string[]) => runCli([...args, '--json', '--home', home], env);

async function auditActions(): Promise<string[]> {
  const session = JSON.parse(await readFile(join(officer(), 'config.json'), 'utf8'));
  const res = await fetch(`${server.url}/v1/audit?limit=1000`, { headers: { authorization: `Bearer ${session.token}` } });
  return ((await res.json()) as { entries: Array<{ action: string }> }).entries.map((e) => e.action);
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tg-keys-'));
  server = await startServerProcess({ dataDir: join(root, 'server-data') });
  proxy = await startProxy(server.url);
  const boot = await cli(officer(), 'admin', 'bootstrap', '--server', proxy.url, '--org', 'Acme', '--user', 'olga');
  expect(boot.code, boot.stdout + boot.stderr).toBe(0);
  orgId = boot.json.orgId;
  fleet = (await cli(officer(), 'fleet', 'create', '--name', 'arms')).json.id;
  const init = await cli(officer(), 'officer', 'init');
  expect(init.code, init.stdout + init.stderr).toBe(0);
  for (let i = 0; i < 2; i++) {
    const bundle = join(root, `bundle-${i}.json`);
    expect((await cli(officer(), 'officer', 'enroll-bundle', '--fleet', fleet, '--out', bundle)).code).toBe(0);
    const e = await cli(robot(i), 'robot', 'enroll', '--bundle', bundle, '--name', `arm-${i}`);
    expect(e.code, e.stdout + e.stderr).toBe(0);
  }
  await cp(VECTOR, template(), { recursive: true });
  const base = await loadAdapterDir(template());
  const names = trainableTensorNames({ tensors: [...base.tensors.keys()].map((name) => ({ name })), freezeA: false });
  for (let i = 0; i < 2; i++) {
    const dir = join(root, `adapter-${i}`);
    await saveAdapterDir(dir, perturbAdapter({ adapter: base, names, sigma: 0.01 * (i + 1) }).adapter);
    adapters.push(dir);
  }
}, 180_000);

afterAll(async () => {
  await proxy?.close();
  await server?.stop();
  await rm(root, { recursive: true, force: true });
});

describe('HE key rotation', () => {
  it('reviews a round opened under v1 after rotating to v2, and new rounds pin v2', async () => {
    const open = await cli(officer(), 'officer', 'round', 'open', '--fleet', fleet, '--template', template(), '--quorum', '2', '--max-contributors', '4');
    expect(open.code, open.stdout + open.stderr).toBe(0);
    round1 = open.json.roundId;
    for (let i = 0; i < 2; i++) {
      const push = await cli(robot(i), 'robot', 'push', '--adapter', adapters[i]!, '--base', template());
      expect(push.code, push.stdout + push.stderr).toBe(0);
    }
    expect((await cli(officer(), 'officer', 'round', 'close', '--round', round1)).code).toBe(0);

    const rotate = await cli(officer(), 'officer', 'rotate-he-key');
    expect(rotate.code, rotate.stdout + rotate.stderr).toBe(0);
    expect(rotate.json).toMatchObject({ keyVersion: 2, previousVersion: 1, secretKeyVersionsHeld: [1, 2] });

    const review = await cli(officer(), 'officer', 'review', '--round', round1, '--out', join(root, 'review-1'));
    expect(review.code, review.stdout + review.stderr).toBe(0);
    expect(review.json.contributors).toBe(2);

    const open2 = await cli(officer(), 'officer', 'round', 'open', '--fleet', fleet, '--template', template(), '--quorum', '2', '--max-contributors', '4');
    expect(open2.code, open2.stdout + open2.stderr).toBe(0);
    round2 = open2.json.roundId;
    const keys = await cli(officer(), 'officer', 'he-keys');
    expect(keys.code).toBe(0);
    expect(keys.json.map((k: { version: number; rounds: Array<{ roundId: string }> }) => [k.version, k.rounds.map((r) => r.roundId)])).toEqual([
      [1, [round1]],
      [2, [round2]],
    ]);
  });
});

describe('HE key revocation', () => {
  it('a robot ignores a revocation the server forged, and refuses a key an officer revoked', async () => {
    // The man in the middle serves a revocation of v2 signed by a key no robot pinned.
    const mallory = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
    const keys = (await cli(officer(), 'officer', 'he-keys')).json as Array<{ version: number; fingerprint: string }>;
    const forged = signKeyRevocation({
      revocation: { orgId, keyVersion: 2, heKeyFingerprint: Uint8Array.from(Buffer.from(keys[1]!.fingerprint, 'hex')), reason: 'forged', revokedAt: Date.now() },
      secretKey: mallory.secretKey,
      publicKey: mallory.publicKey,
    });
    proxy.setRewrite((req, body) => (req.path.startsWith('/v1/he-keys/revocations') ? Buffer.from(JSON.stringify([{ version: 2, record: toBase64(forged) }])) : null));
    try {
      const push = await cli(robot(0), 'robot', 'push', '--adapter', adapters[0]!, '--base', template(), '--round', round2);
      expect(push.code, push.stdout + push.stderr).toBe(0);
    } finally {
      proxy.setRewrite(null);
    }

    const revoke = await cli(officer(), 'officer', 'revoke-he-key', '--version', '2', '--reason', 'workstation compromised');
    expect(revoke.code, revoke.stdout + revoke.stderr).toBe(0);
    const refused = await cli(robot(1), 'robot', 'push', '--adapter', adapters[1]!, '--base', template(), '--round', round2);
    expect(refused.code).not.toBe(0);
    expect(refused.json.error.code).toBe('key_revoked');
    expect(refused.json.error.message).toMatch(/workstation compromised/);
    const listed = (await cli(officer(), 'officer', 'he-keys')).json;
    expect(listed[1].revoked).toMatchObject({ reason: 'workstation compromised' });
    // A new round needs a new key version first.
    const stale = await cli(officer(), 'officer', 'round', 'open', '--fleet', fleet, '--template', template(), '--quorum', '2', '--max-contributors', '4');
    expect(stale.json.error.code).toBe('key_revoked');
  });
});

describe('officer key recovery', () => {
  it('a designated recovery officer restores the officer keys and can review an old round', async () => {
    expect((await cli(officer(), 'user', 'add', '--user', 'rita', '--role', 'officer')).code).toBe(0);
    expect((await cli(rescuer(), 'login', '--server', proxy.url, '--user', 'rita')).code).toBe(0);
    const pub = join(root, 'rita-recovery.json');
    const keygen = await cli(rescuer(), 'officer', 'recovery', 'keygen', '--out', pub);
    expect(keygen.code, keygen.stdout + keygen.stderr).toBe(0);

    const add = await cli(officer(), 'officer', 'recovery', 'add', '--kem-public-key', pub, '--name', 'rita');
    expect(add.code, add.stdout + add.stderr).toBe(0);
    expect(add.json).toMatchObject({ id: keygen.json.id, added: true });
    const pkg = join(root, 'recovery.bin');
    const exp = await cli(officer(), 'officer', 'recovery', 'export', '--out', pkg);
    expect(exp.code, exp.stdout + exp.stderr).toBe(0);
    expect(exp.json.heKeyVersions).toEqual([1, 2]);
    expect((await stat(pkg)).mode & 0o777).toBe(0o600);

    // Someone else's recovery key opens nothing.
    const eve = join(root, 'eve');
    expect((await cli(eve, 'login', '--server', proxy.url, '--user', 'rita')).code).toBe(0);
    expect((await cli(eve, 'officer', 'recovery', 'keygen', '--out', join(root, 'eve.json'))).code).toBe(0);
    const stolen = await cli(eve, 'officer', 'recovery', 'restore', '--from', pkg);
    expect(stolen.code).not.toBe(0);
    expect(stolen.json.error.code).toBe('decryption_failed');

    const restore = await cli(rescuer(), 'officer', 'recovery', 'restore', '--from', pkg);
    expect(restore.code, restore.stdout + restore.stderr).toBe(0);
    expect(restore.json.heKeyVersions).toEqual([1, 2]);
    // With the round's local files (not secret; the officer's home keeps them), the v1 round reviews.
    await cp(join(officer(), 'officer', 'rounds', round1), join(rescuer(), 'officer', 'rounds', round1), { recursive: true });
    const review = await cli(rescuer(), 'officer', 'review', '--round', round1, '--out', join(root, 'review-rescued'));
    expect(review.code, review.stdout + review.stderr).toBe(0);
    expect(review.json.contributors).toBe(2);
    // The restored signing key is the organization's officer key: the rescuer can rotate.
    const rotate = await cli(rescuer(), 'officer', 'rotate-he-key');
    expect(rotate.code, rotate.stdout + rotate.stderr).toBe(0);
    expect(rotate.json.keyVersion).toBe(3);

    const actions = await auditActions();
    for (const a of ['officer.recovery.add', 'officer.recovery.export', 'officer.recovery.restore', 'he_key.revoke']) expect(actions).toContain(a);
    expect(actions.filter((a) => a === 'he_key.add')).toHaveLength(3);
  });
});
