// What every command gets: its home directory, output mode, and the ways to ask for secrets.
// Secrets come from TG_PASSPHRASE / TG_PASSWORD or an interactive prompt with echo off.
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import cliProgress from 'cli-progress';

export class CliError extends Error {
  constructor(message: string, readonly code = 'cli_error', readonly exitCode = 1) {
    super(message);
    this.name = 'CliError';
  }
}

export interface CommandContext {
  home: string;
  json: boolean;
  passphrase(purpose: string): Promise<string>;
  password(purpose: string): Promise<string>;
  progress(label: string, total: number): { update(done: number): void; stop(): void };
  log(message: string): void;
}

export function resolveHome(option?: string): string {
  return resolve(option ?? process.env.TG_HOME ?? join(homedir(), '.tensorguard'));
}

async function prompt(question: string): Promise<string> {
  if (!process.stdin.isTTY) throw new CliError(`${question} needed: set it in the environment (no terminal to ask on)`, 'secret_required');
  let muted = false;
  const output = new Writable({
    write(chunk, _enc, cb) {
      if (!muted) process.stderr.write(chunk);
      cb();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  return new Promise((done) => {
    rl.question(`${question}: `, (answer) => {
      rl.close();
      process.stderr.write('\n');
      done(answer);
    });
    muted = true;
  });
}

export function createContext(options: { home?: string; json?: boolean; passphrase?: string; password?: string; quiet?: boolean }): CommandContext {
  const cache = new Map<string, string>();
  const json = options.json ?? false;
  const ask = async (key: string, env: string | undefined, label: string) => {
    if (cache.has(key)) return cache.get(key)!;
    const value = env ?? (await prompt(label));
    if (!value) throw new CliError(`${label} must not be empty`, 'secret_required');
    cache.set(key, value);
    return value;
  };
  return {
    home: resolveHome(options.home),
    json,
    passphrase: (purpose) => ask('passphrase', options.passphrase ?? process.env.TG_PASSPHRASE, `Passphrase for ${purpose} (TG_PASSPHRASE)`),
    password: (purpose) => ask('password', options.password ?? process.env.TG_PASSWORD, `Password for ${purpose} (TG_PASSWORD)`),
    progress(label, total) {
      if (json || options.quiet || !process.stderr.isTTY) return { update() {}, stop() {} };
      const bar = new cliProgress.SingleBar(
        { format: `${label} [{bar}] {percentage}% | {value}/{total}`, stream: process.stderr, clearOnComplete: false },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0);
      return { update: (done) => bar.update(done), stop: () => bar.stop() };
    },
    log(message) {
      if (!json && !options.quiet) process.stderr.write(`${message}\n`);
    },
  };
}
