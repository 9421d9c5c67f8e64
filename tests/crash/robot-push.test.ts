// The robot CLI against a server that goes away: `tensorguard robot push` retries with backoff, keeps
// the signed package in its outbox when the server stays unreachable (exit 75, `queued`), resends it with
// `--resume` or on the next push, and a retry after a lost answer (the server killed itself right after
// the commit) gets the original 201 through the Idempotency-Key instead of a duplicate.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runCli } from '../helpers/cli.ts';
import { loadAdapterDir, saveAdapterDir } from '../../cli/home.ts';
import { perturbAdapter } from '../../cli/synthetic-adapter.ts';
import { trainableTensorNames } from '../../core/round/mask.ts';
import { bytesToHex } from '../../core/bytes.ts';
import { randomBytes } from '../../core/random.ts';
import { spawnServer, type ServerProcess } from './server-process.ts';
import { parseExposition } from '../../server/operations/testing.ts';

const VECTOR = resolve(import.meta.dirname, '../vectors/peft/tiny-lora');
const env = { TG_PASSPHRASE: `pp-${bytesToHex(randomBytes(8))}`, TG_PASSWORD: `pw-${bytesToHex(randomBytes(8))}` };
/** Quick retries for the test: a handful of attempts tens of milliseconds apart. */
const FAST_RETRY = { TG_PUSH_MAX_ATTEMPTS: '3', TG_PUSH_RETRY_BASE_MS: '20', TG_PUSH_RETRY_MAX_MS: '100' };

describe('robot push through server crashes', () => {
  let root: string;
  let server: ServerProcess;
  let port: number;
  let roundId: string;
  const adapters: string[] = [];
  const officerHome = () => join(root, 'officer');
  const robotHome = (i: number) => join(root, `robot-${i}`);
  const cli = (home: string, args: string[], extra: Record<string, string> = {}) => runCli([...args, '--json', '--home', home], { ...env, ...extra });
  const restart = async (extra: Record<string, string> = {}) => {
    server = await spawnServer({ dataDir: join(root, 'data'), port, env: extra });
  };
  const outbox = (i: number) => readdir(join(robotHome(i), 'robot', 'outbox')).catch(() => [] as string[]);
  const roundState = async () => {
    const token = JSON.parse(await readFile(join(officerHome(), 'config.json'), 'utf8')).token;
    const res = await fetch(`${server.url}/v1/rounds/${roundId}/contributions`, { headers: { authorization: `Bearer ${token}` } });
    return (await res.json()) as Array<{ robotId: string; id: string }>;
  };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'tg-robot-push-'));
    server = await spawnServer({ dataDir: join(root, 'data') });
    port = Number(new URL(server.url).port);
    const boot = await cli(officerHome(), ['admin', 'bootstrap', '--server', server.url, '--org', 'Outbox Robotics', '--user', 'olivia']);
    expect(boot.code, boot.stderr + boot.stdout).toBe(0);
    const fleet = (await cli(officerHome(), ['fleet', 'create', '--name', 'arms'])).json.id;
    const init = await cli(officerHome(), ['officer', 'init']);
    expect(init.code, init.stderr + init.stdout).toBe(0);
    for (let i = 0; i < 3; i++) {
      const bundle = join(root, `bundle-${i}.json`);
      expect((await cli(officerHome(), ['officer', 'enroll-bundle', '--fleet', fleet, '--out', bundle])).code).toBe(0);
      const e = await cli(robotHome(i), ['robot', 'enroll', '--bundle', bundle, '--name', `arm-${i}`]);
      expect(e.code, e.stderr + e.stdout).toBe(0);
    }
    const template = join(root, 'template');
    await cp(VECTOR, template, { recursive: true });
    const open = await cli(officerHome(), ['officer', 'round', 'open', '--fleet', fleet, '--template', template, '--quorum', '1', '--max-contributors', '4']);
    expect(open.code, open.stderr + open.stdout).toBe(0);
    roundId = open.json.roundId;
    const base = await loadAdapterDir(template);
    const names = trainableTensorNames({ tensors: [...base.tensors.keys()].map((name) => ({ name })), freezeA: false });
    for (let i = 0; i < 3; i++) {
      const dir = join(root, `adapter-${i}`);
      await saveAdapterDir(dir, perturbAdapter({ adapter: base, names, sigma: 0.01 * (i + 1) }).adapter);
      adapters.push(dir);
    }
  }, 180_000);

  afterAll(async () => {
    await server?.kill('SIGKILL');
    await rm(root, { recursive: true, force: true });
  });

  it('keeps the signed package in the outbox while the server is down, and --resume delivers it once', async () => {
    await server.kill('SIGKILL');
    const queued = await cli(robotHome(0), ['robot', 'push', '--adapter', adapters[0]!, '--base', join(root, 'template'), '--round', roundId], FAST_RETRY);
    // Down before the push starts: there is no round config to build a package from, so nothing is queued.
    expect(queued.code).not.toBe(0);
    expect(queued.json.error.code).toBe('unreachable');
    expect(await outbox(0)).toEqual([]);

    await restart({ TG_FAILPOINTS: 'contribution.after_blobs=1' });
    // The server dies during the upload (after writing blobs, before the commit) and stays down.
    const pushed = await cli(robotHome(0), ['robot', 'push', '--adapter', adapters[0]!, '--base', join(root, 'template'), '--round', roundId], FAST_RETRY);
    expect(pushed.code, pushed.stderr + pushed.stdout).toBe(75);
    expect(pushed.json.error.code).toBe('queued');
    expect(pushed.json.error.message).toMatch(/--resume/);
    expect(await outbox(0)).toHaveLength(1);
    const kept = await readFile(join(robotHome(0), 'robot', 'outbox', (await outbox(0))[0]!, 'package.bin'));

    await restart();
    expect(await roundState()).toHaveLength(0); // nothing was committed
    const resumed = await cli(robotHome(0), ['robot', 'push', '--resume']);
    expect(resumed.code, resumed.stderr + resumed.stdout).toBe(0);
    expect(resumed.json.pending).toBe(0);
    expect(resumed.json.resumed).toHaveLength(1);
    expect(resumed.json.resumed[0]).toMatchObject({ roundId, contributions: 1, alreadyAccepted: false });
    expect(await outbox(0)).toEqual([]);
    const rows = await roundState();
    expect(rows).toHaveLength(1);
    // The resent package is the one that was kept, byte for byte.
    const token = JSON.parse(await readFile(join(officerHome(), 'config.json'), 'utf8')).token;
    const stored = await fetch(`${server.url}/v1/rounds/${roundId}/contributions/${rows[0]!.id}/package`, { headers: { authorization: `Bearer ${token}` } });
    expect(Buffer.compare(Buffer.from(await stored.arrayBuffer()), kept)).toBe(0);
    const state = JSON.parse(await readFile(join(robotHome(0), 'robot', 'state.json'), 'utf8'));
    expect(state.contributed).toEqual([roundId]);
    // Nothing left to resend; a second push to the round is refused locally.
    expect((await cli(robotHome(0), ['robot', 'push', '--resume'])).json).toEqual({ resumed: [], pending: 0 });
  });

  it('resends the outbox automatically on the next push', async () => {
    await server.kill('SIGKILL');
    await restart({ TG_FAILPOINTS: 'contribution.after_blobs=1' });
    const pushed = await cli(robotHome(1), ['robot', 'push', '--adapter', adapters[1]!, '--base', join(root, 'template'), '--round', roundId], FAST_RETRY);
    expect(pushed.code, pushed.stderr + pushed.stdout).toBe(75);
    expect(await outbox(1)).toHaveLength(1);
    await restart();
    const next = await cli(robotHome(1), ['robot', 'push', '--adapter', adapters[1]!, '--base', join(root, 'template'), '--round', roundId]);
    expect(next.code, next.stderr + next.stdout).toBe(0);
    expect(next.json).toMatchObject({ roundId, contributions: 2, resumed: true });
    expect(await outbox(1)).toEqual([]);
    expect(await roundState()).toHaveLength(2);
  });

  it('answers a push whose 201 was lost (server killed right after the commit) with the original 201, not a duplicate', async () => {
    await server.kill('SIGKILL');
    await restart({ TG_FAILPOINTS: 'contribution.after_commit=1' });
    const crashed = server;
    // Restart (without the failpoint) as soon as the failpoint has killed the server, like a supervisor.
    const supervisor = crashed.exited.then(() => restart());
    const pushed = await cli(robotHome(2), ['robot', 'push', '--adapter', adapters[2]!, '--base', join(root, 'template'), '--round', roundId], {
      TG_PUSH_MAX_ATTEMPTS: '12',
      TG_PUSH_RETRY_BASE_MS: '200',
      TG_PUSH_RETRY_MAX_MS: '2000',
    });
    await supervisor;
    expect((await crashed.exited).signal).toBe('SIGKILL');
    expect(pushed.code, pushed.stderr + pushed.stdout).toBe(0);
    expect(pushed.json.contributions).toBe(3);
    expect(pushed.json.attempts).toBeGreaterThan(1);
    const rows = await roundState();
    expect(rows).toHaveLength(3);
    expect(new Set(rows.map((r) => r.robotId)).size).toBe(3);
    expect(rows[2]!.id).toBe(pushed.json.contributionId);
    const metrics = parseExposition(await (await fetch(`${server.url}/metrics`)).text()).samples;
    expect(metrics.get('tensorguard_contributions_replayed_total')).toBe(1);
    expect(metrics.get('tensorguard_contributions_accepted_total')).toBe(0);
  });
});
