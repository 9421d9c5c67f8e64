// The CLI the way a person meets it: help text, machine-readable output, typed errors, and the demo
// running complete rounds over HTTP against a real server.
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';

describe('tensorguard CLI', () => {
  it('--help lists every command', async () => {
    const top = await runCli(['--help']);
    expect(top.code).toBe(0);
    for (const c of ['server', 'admin', 'login', 'user', 'fleet', 'officer', 'robot', 'dp', 'demo']) expect(top.stdout).toMatch(new RegExp(`\\b${c}\\b`));
    const officer = await runCli(['officer', '--help']);
    for (const c of ['init', 'enroll-bundle', 'round', 'review', 'release']) expect(officer.stdout).toContain(c);
    const open = await runCli(['officer', 'round', 'open', '--help']);
    for (const o of ['--fleet', '--template', '--quorum', '--freeze-a', '--dp-mode', '--clip', '--noise-multiplier', '--delta', '--epsilon-budget', '--sparsity', '--deadline', '--json', '--home'])
      expect(open.stdout).toContain(o);
    const robot = await runCli(['robot', '--help']);
    for (const c of ['enroll', 'push', 'pull']) expect(robot.stdout).toContain(c);
  });

  it('dp epsilon reproduces TF Privacy\'s published value', async () => {
    const r = await runCli(['dp', 'epsilon', '--noise-multiplier', '1.3', '--sample-rate', '0.0025', '--steps', '6000', '--delta', '1e-5', '--json']);
    expect(r.code).toBe(0);
    expect(r.json.epsilon).toBeCloseTo(0.7242234026109595, 9);
    expect(r.json.order).toBe(19);
  });

  it('bad input is a clear error with a non-zero exit', async () => {
    const r = await runCli(['dp', 'epsilon', '--noise-multiplier', 'abc', '--sample-rate', '0.1', '--steps', '10', '--delta', '1e-5']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--noise-multiplier expects a number/);
    const notSignedIn = await runCli(['fleet', 'create', '--name', 'x', '--home', '/nonexistent-tg-home', '--json']);
    expect(notSignedIn.code).not.toBe(0);
    expect(notSignedIn.json.error.code).toBe('not_signed_in');
  });

  it('demo (synthetic task) runs two rounds end to end and the decrypted mean matches the plaintext mean', async () => {
    const r = await runCli(['demo', '--task', 'synthetic', '--robots', '2', '--params', '40000', '--rounds', '2', '--json'], { TG_PASSPHRASE: '', TG_PASSWORD: '' });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.json.rounds).toHaveLength(2);
    for (const [i, round] of r.json.rounds.entries()) {
      expect(round.withinBound).toBe(true);
      expect(round.releaseVersion).toBe(i + 1);
      expect(round.contributors).toBe(2);
      // A Llama-style adapter is not the reference policy's layout: the gate says so, with no number.
      expect(round.gate.status).toBe('not_applicable');
      expect(round.gate.reason).toMatch(/not a LoRA adapter of the reference policy/);
      expect(round.taskSuccess).toBeNull();
    }
    expect(r.json.wireBytesPerParam).toBeLessThan(9);
  });

  it('demo (reference task, default) trains robots on their own sites and measures held-out success before/after, encrypted vs plaintext', async () => {
    const r = await runCli(['demo', '--robots', '3', '--episodes', '12', '--train-steps', '300', '--gate-scenarios', '4', '--dp-mode', 'local', '--json']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.json.task).toBe('reference');
    const round = r.json.rounds[0];
    expect(round.stage).toBe('imitation_learning');
    expect(round.training.map((t: { site: string }) => t.site)).toEqual(['site-a', 'site-b', 'site-c']);
    for (const t of round.training) expect(t.stage).toBe('imitation_learning');
    const ts = round.taskSuccess;
    expect(ts.sets.map((s: { set: string }) => s.set)).toEqual(['nominal', 'site:site-a', 'site:site-b', 'site:site-c', 'ood']);
    for (const k of ['deployed', 'encrypted', 'plaintext']) {
      expect(ts.overall[k]).toBeGreaterThanOrEqual(0);
      expect(ts.overall[k]).toBeLessThanOrEqual(1);
    }
    expect(ts.costOfPrivacy).toBeCloseTo(ts.overall.plaintext - ts.overall.encrypted, 12);
    expect(ts.dp.mode).toBe('local');
    expect(ts.dp.epsilonPerRound).toBeGreaterThan(0);
    // The base policy fails site C, so the gate fails and names it; the demo releases under a signed override.
    expect(round.gate.status).toBe('failed');
    expect(round.gate.failed).toContain('success_rate[site:site-c]');
    expect(round.gate.override).toMatch(/^demo: /);
    expect(round.releaseVersion).toBe(1);
  });

  it('robot train refuses a round config it cannot verify, and on-policy training without a signed approval', async () => {
    const offline = await runCli(['robot', 'train', '--out', '/tmp/tg-never', '--stage', 'offline_rl', '--round-config', '/nonexistent-tg-config', '--home', '/nonexistent-tg-home', '--json']);
    expect(offline.code).not.toBe(0);
    expect(offline.json.error.code).toBe('not_enrolled');
    const onPolicy = await runCli(['robot', 'train', '--out', '/tmp/tg-never', '--stage', 'on_policy_rl', '--home', '/nonexistent-tg-home', '--json']);
    expect(onPolicy.json.error.code).toBe('on_policy_not_approved');
    const help = await runCli(['officer', 'release', '--help']);
    expect(help.stdout).toContain('--override-gate');
    const open = await runCli(['officer', 'round', 'open', '--help']);
    expect(open.stdout).toContain('--stage');
    expect(open.stdout).toContain('--approve-on-policy');
  });

  it('demo with FFA-LoRA and a sparse mask sends only the masked lora_B values', async () => {
    const r = await runCli(['demo', '--task', 'synthetic', '--robots', '2', '--params', '20000', '--freeze-a', '--sparsity', '0.25', '--json']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const round = r.json.rounds[0];
    expect(round.withinBound).toBe(true);
    // half the parameters are lora_B, a quarter of those are sent
    expect(round.valueCount).toBeLessThan(r.json.trainableParams * 0.3);
  });
});
