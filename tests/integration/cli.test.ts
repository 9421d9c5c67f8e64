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

  it('demo runs two rounds end to end and the decrypted mean matches the plaintext mean', async () => {
    const r = await runCli(['demo', '--robots', '2', '--params', '40000', '--rounds', '2', '--json'], { TG_PASSPHRASE: '', TG_PASSWORD: '' });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.json.rounds).toHaveLength(2);
    for (const [i, round] of r.json.rounds.entries()) {
      expect(round.withinBound).toBe(true);
      expect(round.releaseVersion).toBe(i + 1);
      expect(round.contributors).toBe(2);
    }
    expect(r.json.wireBytesPerParam).toBeLessThan(9);
  });

  it('demo with FFA-LoRA and a sparse mask sends only the masked lora_B values', async () => {
    const r = await runCli(['demo', '--robots', '2', '--params', '20000', '--freeze-a', '--sparsity', '0.25', '--json']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const round = r.json.rounds[0];
    expect(round.withinBound).toBe(true);
    // half the parameters are lora_B, a quarter of those are sent
    expect(round.valueCount).toBeLessThan(r.json.trainableParams * 0.3);
  });
});
