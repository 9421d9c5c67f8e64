// End to end through the real CLI and the real server process: three robots with different adapters,
// a server that cannot read them, an officer who decrypts only a proven quorum, and robots that apply
// only what the officer signed. The attacks come through a man-in-the-middle proxy standing in for a
// malicious server operator, and through hand-built HTTP requests.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, readdir, stat, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runCli, startServerProcess } from '../helpers/cli.ts';
import { startProxy } from '../helpers/proxy.ts';
import { loadAdapterDir, saveAdapterDir } from '../../cli/home.ts';
import { perturbAdapter } from '../../cli/synthetic-adapter.ts';
import { openFromFile } from '../../cli/home.ts';
import { ByteReader } from '../../core/codec/binary.ts';
import { fromBase64, toBase64, bytesToHex } from '../../core/bytes.ts';
import { ApiClient, ApiError } from '../../cli/api.ts';
import { openRoundConfig } from '../../core/records/round-config.ts';
import { openKeyRecord, signKeyRecord } from '../../core/records/key-record.ts';
import { buildUpdatePackage } from '../../core/records/update-package.ts';
import { createEncryptor } from '../../core/he/seal.ts';
import { generateSigningKeyPair } from '../../core/crypto/sign.ts';
import { decodeContributionManifest, encodeContributionManifest } from '../../core/records/contribution-manifest.ts';
import { openReleaseManifest, signReleaseManifest } from '../../core/records/release-manifest.ts';
import { signRobotRequest, ROBOT_HEADERS } from '../../core/records/request-signature.ts';
import { flattenTensors } from '../../core/peft/adapter.ts';
import { trainableTensorNames } from '../../core/round/mask.ts';
import { sha256 } from '../../core/codec/fingerprint.ts';
import { randomBytes } from '../../core/random.ts';

const VECTOR = resolve(import.meta.dirname, '../vectors/peft/tiny-lora');
const env = { TG_PASSPHRASE: `pp-${bytesToHex(randomBytes(8))}`, TG_PASSWORD: `pw-${bytesToHex(randomBytes(8))}` };

let root: string;
let server: { url: string; stop(): Promise<void> };
let proxy: Awaited<ReturnType<typeof startProxy>>;
const officerHome = () => join(root, 'officer');
const robotHome = (i: number) => join(root, `robot-${i}`);
const cli = (home: string, ...args: string[]) => runCli([...args, '--json', '--home', home], env);

async function robotKeys(home: string) {
  const bytes = await openFromFile({ path: join(home, 'robot', 'secrets.sealed'), passphrase: env.TG_PASSPHRASE });
  const r = new ByteReader(bytes);
  r.header(0x40, [1]);
  const dsaSecretKey = r.bytes(8192);
  const identity = JSON.parse(await readFile(join(home, 'robot', 'identity.json'), 'utf8'));
  return { dsaSecretKey, identity, api: new ApiClient(server.url, { kind: 'robot', robotId: identity.robotId, secretKey: dsaSecretKey }) };
}

let fleetA: string;
let fleetB: string;
let roundId: string;
const adapters: string[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tg-int-'));
  server = await startServerProcess({ dataDir: join(root, 'server-data') });
  proxy = await startProxy(server.url);
}, 120_000);

afterAll(async () => {
  await proxy?.close();
  await server?.stop();
});

describe('an encrypted round through the CLI', () => {
  it('bootstraps, creates fleets, initializes officer keys, enrolls robots', async () => {
    const boot = await cli(officerHome(), 'admin', 'bootstrap', '--server', proxy.url, '--org', 'Acme Robotics', '--user', 'olivia');
    expect(boot.code, boot.stderr + boot.stdout).toBe(0);
    const again = await cli(join(root, 'x'), 'admin', 'bootstrap', '--server', proxy.url, '--org', 'Evil', '--user', 'eve');
    expect(again.code).not.toBe(0);
    expect(again.json.error.code).toMatch(/already_bootstrapped|conflict/);

    fleetA = (await cli(officerHome(), 'fleet', 'create', '--name', 'alpha')).json.id;
    fleetB = (await cli(officerHome(), 'fleet', 'create', '--name', 'beta')).json.id;
    expect(fleetA).toBeTruthy();
    const init = await cli(officerHome(), 'officer', 'init');
    expect(init.code, init.stderr + init.stdout).toBe(0);
    expect(init.json.keyVersion).toBe(1);

    for (let i = 0; i < 4; i++) {
      const bundle = join(root, `bundle-${i}.json`);
      const b = await cli(officerHome(), 'officer', 'enroll-bundle', '--fleet', i < 3 ? fleetA : fleetB, '--out', bundle);
      expect(b.code, b.stderr + b.stdout).toBe(0);
      expect((await stat(bundle)).mode & 0o777).toBe(0o600);
      const e = await cli(robotHome(i), 'robot', 'enroll', '--bundle', bundle, '--name', `robot-${i}`);
      expect(e.code, e.stderr + e.stdout).toBe(0);
      // the one-time token cannot be used twice
      if (i === 0) {
        const reuse = await cli(join(root, 'robot-reuse'), 'robot', 'enroll', '--bundle', bundle);
        expect(reuse.code).not.toBe(0);
      }
    }
  });

  it('opens a round from a PEFT template and robots push different adapters', async () => {
    const template = join(root, 'template');
    await cp(VECTOR, template, { recursive: true });
    const open = await cli(officerHome(), 'officer', 'round', 'open', '--fleet', fleetA, '--template', template, '--quorum', '3', '--max-contributors', '8');
    expect(open.code, open.stderr + open.stdout).toBe(0);
    roundId = open.json.roundId;
    const base = await loadAdapterDir(template);
    const names = trainableTensorNames({ tensors: [...base.tensors.keys()].map((name) => ({ name })), freezeA: false });
    for (let i = 0; i < 3; i++) {
      const { adapter } = perturbAdapter({ adapter: base, names, sigma: 0.01 * (i + 1) });
      const dir = join(root, `adapter-${i}`);
      await saveAdapterDir(dir, adapter);
      adapters.push(dir);
    }
    for (let i = 0; i < 2; i++) {
      const push = await cli(robotHome(i), 'robot', 'push', '--adapter', adapters[i]!, '--base', template);
      expect(push.code, push.stderr + push.stdout).toBe(0);
      expect(push.json.roundId).toBe(roundId);
    }
    const wrongBase = await cli(robotHome(2), 'robot', 'push', '--adapter', adapters[2]!, '--base', adapters[1]!);
    expect(wrongBase.code).not.toBe(0);
    expect(wrongBase.stdout).toMatch(/base adapter differs/);
  });

  it('refuses attacks on the contribution route', async () => {
    const r2 = await robotKeys(robotHome(2));
    const r1 = await robotKeys(robotHome(1));
    const r0 = await robotKeys(robotHome(0));
    const rb = await robotKeys(robotHome(3));
    const round = await r2.api.json<{ config: string }>('GET', `/v1/rounds/${roundId}`);
    const { record: config, fingerprint } = openRoundConfig({ bytes: fromBase64(round.config) });
    const keyRes = await r2.api.json<{ record: string }>('GET', `/v1/he-keys/${config.keyVersion}`);
    const key = openKeyRecord({ bytes: fromBase64(keyRes.record) });
    const enc = await createEncryptor({ publicKey: key.record.publicKey, paramSetId: key.record.paramSetId });
    const ciphertexts = enc.encryptSlots({ slots: new BigUint64Array(config.ciphertextCount * 4096) });
    enc.destroy();
    const meta = (robotId: string, fleetId: string) => ({ roundId, robotId, fleetId, keyVersion: config.keyVersion, roundConfigFingerprint: fingerprint, valueCount: config.valueCount, ciphertextCount: config.ciphertextCount, createdAt: Date.now() });
    const pkgFor = (who: typeof r2, robotId = who.identity.robotId, fleetId = who.identity.fleetId) =>
      buildUpdatePackage({ meta: meta(robotId, fleetId), ciphertexts, secretKey: who.dsaSecretKey, publicKey: fromBase64(who.identity.dsaPublicKey) }).bytes;
    const post = async (who: typeof r2, body: Uint8Array) => {
      try {
        await who.api.postBinary(`/v1/rounds/${roundId}/contributions`, body);
        return { status: 201, code: 'created' };
      } catch (err) {
        return { status: (err as ApiError).status, code: (err as ApiError).code };
      }
    };
    // tampered ciphertext bytes
    const tampered = pkgFor(r2);
    tampered[tampered.length - 100] = tampered[tampered.length - 100]! ^ 1;
    expect((await post(r2, tampered)).status).toBe(400);
    // a package in robot 2's name signed with robot 1's key
    const forged = buildUpdatePackage({ meta: meta(r2.identity.robotId, fleetA), ciphertexts, secretKey: r1.dsaSecretKey, publicKey: fromBase64(r1.identity.dsaPublicKey) }).bytes;
    expect((await post(r2, forged)).status).toBe(401);
    // robot of fleet beta into a round of fleet alpha
    expect(await post(rb, pkgFor(rb))).toMatchObject({ status: 403 });
    // duplicate contribution from robot 0 (already pushed through the CLI)
    expect(await post(r0, pkgFor(r0))).toMatchObject({ status: 409 });
    // oversize body
    expect((await post(r2, new Uint8Array(6_000_000))).status).toBe(413);
    // replayed request: the same signed request sent twice
    const path = '/v1/robots/me';
    const s = signRobotRequest({ method: 'GET', path, body: new Uint8Array(0), secretKey: r2.dsaSecretKey });
    const headers = { [ROBOT_HEADERS.robot]: r2.identity.robotId, [ROBOT_HEADERS.timestamp]: String(s.timestamp), [ROBOT_HEADERS.nonce]: s.nonce, [ROBOT_HEADERS.signature]: toBase64(s.signature) };
    expect((await fetch(server.url + path, { headers })).status).toBe(200);
    const replay = await fetch(server.url + path, { headers });
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as any).error.code).toBe('replay');
  });

  it('a robot refuses to encrypt to a key record the server swapped', async () => {
    const mallory = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
    proxy.setRewrite((req, body) => {
      if (!/^\/v1\/he-keys\/\d+$/.test(req.path)) return null;
      const j = JSON.parse(body.toString());
      const { record } = openKeyRecord({ bytes: fromBase64(j.record) });
      j.record = toBase64(signKeyRecord({ record: { ...record, publicKey: record.publicKey }, secretKey: mallory.secretKey, publicKey: mallory.publicKey }));
      return Buffer.from(JSON.stringify(j));
    });
    const push = await cli(robotHome(2), 'robot', 'push', '--adapter', adapters[2]!, '--base', join(root, 'template'));
    proxy.setRewrite(null);
    expect(push.code).not.toBe(0);
    expect(push.json.error.code).toBe('untrusted_signer');
    const ok = await cli(robotHome(2), 'robot', 'push', '--adapter', adapters[2]!, '--base', join(root, 'template'));
    expect(ok.code, ok.stderr + ok.stdout).toBe(0);
    expect(ok.json.contributions).toBe(3);
  });

  it('the officer refuses an aggregate whose manifest proves fewer than quorum robots, then reviews the real one', async () => {
    const close = await cli(officerHome(), 'officer', 'round', 'close', '--round', roundId);
    expect(close.code, close.stderr + close.stdout).toBe(0);
    proxy.setRewrite((req, body) => {
      if (!req.path.endsWith('/aggregate')) return null;
      const j = JSON.parse(body.toString());
      const m = decodeContributionManifest({ bytes: fromBase64(j.manifest) });
      j.manifest = toBase64(encodeContributionManifest({ manifest: { ...m, entries: m.entries.slice(0, 1) } }));
      return Buffer.from(JSON.stringify(j));
    });
    const refused = await cli(officerHome(), 'officer', 'review', '--round', roundId, '--out', join(root, 'refused'));
    proxy.setRewrite(null);
    expect(refused.code).not.toBe(0);
    expect(refused.json.error.code).toBe('quorum_not_met');

    const out = join(root, 'candidate');
    const review = await cli(officerHome(), 'officer', 'review', '--round', roundId, '--out', out);
    expect(review.code, review.stderr + review.stdout).toBe(0);
    expect(review.json.contributors).toBe(3);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    expect(report.roundId).toBe(roundId);
    // the candidate is the mean of the three robots' adapters, within the quantization bound
    const candidate = await loadAdapterDir(out);
    const robots = await Promise.all(adapters.map((d) => loadAdapterDir(d)));
    const names = [...candidate.tensors.keys()].sort();
    const got = flattenTensors({ adapter: candidate, names });
    const each = robots.map((a) => flattenTensors({ adapter: a, names }));
    let maxErr = 0;
    for (let k = 0; k < got.length; k++) {
      const mean = (each[0]![k]! + each[1]![k]! + each[2]![k]!) / 3;
      maxErr = Math.max(maxErr, Math.abs(got[k]! - mean));
    }
    expect(maxErr).toBeLessThanOrEqual(report.quantizationBound + 1e-6);
    expect(maxErr).toBeGreaterThan(0);
  });

  it('releases; robots refuse a release not signed by a pinned officer key and apply the real one', async () => {
    const rel = await cli(officerHome(), 'officer', 'release', '--round', roundId, '--canary', '1');
    expect(rel.code, rel.stderr + rel.stdout).toBe(0);
    expect(rel.json.robots).toBe(3);
    const mallory = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
    proxy.setRewrite((req, body) => {
      if (req.path !== '/v1/releases/latest') return null;
      const j = JSON.parse(body.toString());
      const { record } = openReleaseManifest({ bytes: fromBase64(j.manifest) });
      j.manifest = toBase64(signReleaseManifest({ manifest: record, secretKey: mallory.secretKey, publicKey: mallory.publicKey }));
      return Buffer.from(JSON.stringify(j));
    });
    const forged = await cli(robotHome(0), 'robot', 'pull', '--out', join(root, 'pulled-forged'));
    proxy.setRewrite(null);
    expect(forged.code).not.toBe(0);
    expect(forged.json.error.code).toBe('untrusted_signer');
    for (let i = 0; i < 3; i++) {
      const pulled = await cli(robotHome(i), 'robot', 'pull', '--out', join(root, `pulled-${i}`));
      expect(pulled.code, pulled.stderr + pulled.stdout).toBe(0);
      expect(pulled.json.adapterSha256).toBe(rel.json.adapterSha256);
      const bytes = await readFile(join(root, `pulled-${i}`, 'adapter_model.safetensors'));
      expect(bytesToHex(sha256(new Uint8Array(bytes)))).toBe(rel.json.adapterSha256);
    }
    // the same release again is not newer: refused (no replay or rollback without a signed rollback)
    const again = await cli(robotHome(0), 'robot', 'pull', '--out', join(root, 'pulled-again'));
    expect(again.code).not.toBe(0);
    // the robot of the other fleet has no release
    const other = await cli(robotHome(3), 'robot', 'pull', '--out', join(root, 'pulled-other'));
    expect(other.code).not.toBe(0);
  });

  it('the server stored none of the plaintext update bytes', async () => {
    const files: string[] = [];
    const walk = async (dir: string) => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else files.push(p);
      }
    };
    await walk(join(root, 'server-data'));
    expect(files.length).toBeGreaterThan(2);
    const stored = await Promise.all(files.map((f) => readFile(f)));
    const template = await loadAdapterDir(join(root, 'template'));
    const needles: Buffer[] = [];
    for (const dir of [...adapters, join(root, 'candidate')]) {
      const a = await loadAdapterDir(dir);
      for (const [name, values] of a.tensors) {
        const base = template.tensors.get(name)!;
        for (const off of [0, Math.floor(values.length / 2)]) {
          needles.push(Buffer.from(values.buffer, values.byteOffset + off * 4, 16));
          const delta = new Float32Array(4).map((_, k) => values[off + k]! - base[off + k]!);
          needles.push(Buffer.from(delta.buffer));
        }
      }
    }
    for (const needle of needles) for (const [i, s] of stored.entries()) expect(s.includes(needle), `${files[i]} contains plaintext`).toBe(false);
  });
});
