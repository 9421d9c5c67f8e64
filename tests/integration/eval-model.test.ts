// A customer evaluation model through the real CLI and the real server process: the officer registers a
// second valid ONNX policy (the reference builder with other weights) and an encrypted scenario set, an
// ONNX with a renamed input is refused naming it, and `officer review` runs the gate with the fleet's
// active model and the decrypted scenario set, the report naming the model's fingerprint. A man in the
// middle standing in for a malicious server swaps the model or the ciphertext: the review refuses.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startServerProcess } from '../helpers/cli.ts';
import { startProxy } from '../helpers/proxy.ts';
import { loadAdapterDir, saveAdapterDir } from '../../cli/home.ts';
import { perturbAdapter } from '../../cli/synthetic-adapter.ts';
import { trainableTensorNames } from '../../core/round/mask.ts';
import { MODELS_DIR } from '../../cli/commands/robot-train.ts';
import { REFERENCE_POLICY } from '../../core/policy/reference.ts';
import { loadPolicyWeights } from '../../core/policy/mlp.ts';
import { bytesToHex } from '../../core/bytes.ts';
import { randomBytes } from '../../core/random.ts';
import { buildCustomerTestModel, renameOnnxValue, testScenarioSetDocument } from '../../core/eval/customer-test-models.ts';

const env = { TG_PASSPHRASE: `pp-${bytesToHex(randomBytes(8))}`, TG_PASSWORD: `pw-${bytesToHex(randomBytes(8))}` };
const TEMPLATE = join(MODELS_DIR, REFERENCE_POLICY.adapterDir);

let root: string;
let server: { url: string; stop(): Promise<void> };
let proxy: Awaited<ReturnType<typeof startProxy>>;
const officerHome = () => join(root, 'officer');
const robotHome = (i: number) => join(root, `robot-${i}`);
const cli = (home: string, ...args: string[]) => runCli([...args, '--json', '--home', home], env);
const ok = (r: Awaited<ReturnType<typeof runCli>>) => {
  expect(r.code, r.stderr + r.stdout).toBe(0);
  return r.json;
};

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tg-evalmodel-'));
  server = await startServerProcess({ dataDir: join(root, 'server-data') });
  proxy = await startProxy(server.url);
}, 120_000);

afterAll(async () => {
  await proxy?.close();
  await server?.stop();
});

describe('a customer evaluation model in the review', () => {
  let fleetId = '';
  let roundId = '';
  let registered: { id: string; fingerprint: string; modelSha256: string };

  it('sets up an organization, an officer, two robots and a finalized round of the reference policy layout', async () => {
    ok(await cli(officerHome(), 'admin', 'bootstrap', '--server', proxy.url, '--org', 'Acme Robotics', '--user', 'olivia'));
    fleetId = ok(await cli(officerHome(), 'fleet', 'create', '--name', 'alpha')).id;
    ok(await cli(officerHome(), 'officer', 'init'));
    for (let i = 0; i < 2; i++) {
      ok(await cli(officerHome(), 'officer', 'enroll-bundle', '--fleet', fleetId, '--out', join(root, `bundle-${i}.json`)));
      ok(await cli(robotHome(i), 'robot', 'enroll', '--bundle', join(root, `bundle-${i}.json`), '--name', `arm-${i}`));
    }
    roundId = ok(await cli(officerHome(), 'officer', 'round', 'open', '--fleet', fleetId, '--template', TEMPLATE, '--quorum', '2')).roundId;
    const base = await loadAdapterDir(TEMPLATE);
    const names = trainableTensorNames({ tensors: [...base.tensors.keys()].map((name) => ({ name })), freezeA: false });
    for (let i = 0; i < 2; i++) {
      const adapter = perturbAdapter({ adapter: base, names, sigma: 0.01 }).adapter;
      delete (adapter.config as Record<string, unknown>).tensorguard_training_stage;
      await saveAdapterDir(join(root, `adapter-${i}`), adapter);
      ok(await cli(robotHome(i), 'robot', 'push', '--adapter', join(root, `adapter-${i}`), '--base', TEMPLATE, '--round', roundId));
    }
    ok(await cli(officerHome(), 'officer', 'round', 'close', '--round', roundId));
  }, 300_000);

  it('refuses an ONNX model with a wrong input name, naming it, and registers a valid one with an encrypted scenario set', async () => {
    const weights = loadPolicyWeights({ bytes: new Uint8Array(await readFile(join(MODELS_DIR, REFERENCE_POLICY.weightsFile))) });
    const model = buildCustomerTestModel({ label: 'acme-line-3', base: weights, noise: 0.01 });
    await writeFile(join(root, 'customer.onnx'), model);
    await writeFile(join(root, 'wrong-input.onnx'), renameOnnxValue({ model, from: 'obs', to: 'obz' }));
    const document = testScenarioSetDocument({ label: 'acme', count: 4 });
    await writeFile(join(root, 'scenarios.json'), JSON.stringify(document));

    const wrong = await cli(officerHome(), 'officer', 'eval-model', 'register', '--fleet', fleetId, '--onnx', join(root, 'wrong-input.onnx'), '--scenarios', join(root, 'scenarios.json'));
    expect(wrong.code).not.toBe(0);
    expect(wrong.json.error.code).toBe('eval_model_contract');
    expect(wrong.json.error.message).toMatch(/input "obz" is not part of the contract/);
    const badSet = join(root, 'bad-scenarios.json');
    await writeFile(badSet, JSON.stringify({ ...document, sets: [{ ...document.sets[0], role: 'production' }] }));
    const refusedSet = await cli(officerHome(), 'officer', 'eval-model', 'register', '--fleet', fleetId, '--onnx', join(root, 'customer.onnx'), '--scenarios', badSet);
    expect(refusedSet.json.error.code).toBe('malformed');
    expect(refusedSet.json.error.message).toMatch(/sets\.0\.role/);
    expect(ok(await cli(officerHome(), 'officer', 'eval-model', 'list', '--fleet', fleetId))).toEqual([]);

    const reg = ok(await cli(officerHome(), 'officer', 'eval-model', 'register', '--fleet', fleetId, '--onnx', join(root, 'customer.onnx'), '--scenarios', join(root, 'scenarios.json'), '--name', 'ACME line 3'));
    expect(reg).toMatchObject({ fleetId, name: 'ACME line 3', state: 'active' });
    expect(reg.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(reg.scenarioSets).toEqual([
      { name: 'line-nominal', role: 'nominal', scenarios: 4 },
      { name: 'line-site-b', role: 'site', scenarios: 4 },
      { name: 'line-ood', role: 'ood', scenarios: 4 },
    ]);
    registered = reg;
    const list = ok(await cli(officerHome(), 'officer', 'eval-model', 'list', '--fleet', fleetId));
    expect(list.map((m: { id: string; state: string }) => [m.id, m.state])).toEqual([[reg.id, 'active']]);
    // The server stored the scenario set only as ciphertext.
    const blobs = join(root, 'server-data', 'blobs');
    const needle = Buffer.from('line-site-b');
    for (const dir of await readdir(blobs)) {
      if (dir === 'tmp') continue;
      for (const f of await readdir(join(blobs, dir))) expect((await readFile(join(blobs, dir, f))).includes(needle), `${dir}/${f}`).toBe(false);
    }
  }, 300_000);

  it('a review refuses a model or scenario set the server swapped', async () => {
    const other = buildCustomerTestModel({ label: 'mallory', hidden: 64 });
    proxy.setRewrite((req) => (req.method === 'GET' && req.path.endsWith(`/evaluation-models/${registered.id}/model`) ? Buffer.from(other) : null));
    const swapped = await cli(officerHome(), 'officer', 'review', '--round', roundId, '--out', join(root, 'review-swapped'));
    expect(swapped.code).not.toBe(0);
    expect(swapped.json.error.code).toBe('integrity');
    expect(swapped.json.error.message).toMatch(/evaluation model is not the one the officer signed/);
    proxy.setRewrite((req, body) => {
      if (req.method !== 'GET' || !req.path.endsWith(`/evaluation-models/${registered.id}/scenarios`)) return null;
      const b = Buffer.from(body);
      b[30] = b[30]! ^ 1;
      return b;
    });
    const tampered = await cli(officerHome(), 'officer', 'review', '--round', roundId, '--out', join(root, 'review-tampered'));
    proxy.setRewrite(null);
    expect(tampered.code).not.toBe(0);
    expect(tampered.json.error.code).toBe('integrity');
    expect(tampered.json.error.message).toMatch(/scenario set ciphertext is not the one the officer signed/);
  }, 300_000);

  it('reviews the round with the fleet\'s active model and the decrypted scenario set; the report and the release name the model', async () => {
    const out = join(root, 'review');
    ok(await cli(officerHome(), 'officer', 'review', '--round', roundId, '--out', out));
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    expect(report.gate.applicable).toBe(true);
    expect(report.gate.evaluator).toBe(`customer-model/v1:${registered.fingerprint}`);
    expect(report.gate.evaluationModel).toMatchObject({ id: registered.id, fingerprint: registered.fingerprint, modelSha256: registered.modelSha256, name: 'ACME line 3' });
    expect(report.gate.evaluation.sets.map((s: { name: string; count: number }) => [s.name, s.count])).toEqual([
      ['line-nominal', 4],
      ['line-site-b', 4],
      ['line-ood', 4],
    ]);
    expect(report.gate.verdict.checks.length).toBeGreaterThan(0);

    // --eval-model reference forces the reference task; the id names a model explicitly.
    const ref = ok(await cli(officerHome(), 'officer', 'review', '--round', roundId, '--out', join(root, 'review-ref'), '--eval-model', 'reference', '--gate-scenarios', '2'));
    expect(ref.gate.evaluator).toBe('reference-task/v1');
    const named = ok(await cli(officerHome(), 'officer', 'review', '--round', roundId, '--out', join(root, 'review-named'), '--eval-model', registered.id));
    expect(named.gate.evaluationModel.fingerprint).toBe(registered.fingerprint);
    // Retired: the fleet has no active model and reviews fall back to the reference task.
    ok(await cli(officerHome(), 'officer', 'eval-model', 'retire', '--id', registered.id, '--reason', 'line 3 rebuilt'));
    const after = ok(await cli(officerHome(), 'officer', 'review', '--round', roundId, '--out', join(root, 'review-after'), '--gate-scenarios', '2'));
    expect(after.gate.evaluator).toBe('reference-task/v1');
    // Release the customer-model review (the gate report the release reads is the last review's: review again).
    const last = ok(await cli(officerHome(), 'officer', 'review', '--round', roundId, '--out', join(root, 'review-final'), '--eval-model', registered.id));
    const release = await cli(officerHome(), 'officer', 'release', '--round', roundId, ...(last.gate.verdict.pass ? [] : ['--override-gate', 'test: 4 scenarios per set']));
    expect(release.code, release.stderr + release.stdout).toBe(0);
    expect(release.json.gate.status).toBe(last.gate.verdict.pass ? 'passed' : 'failed');
  }, 300_000);
});
