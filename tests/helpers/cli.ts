// Test helpers: run the real `tensorguard` CLI as a child process and start the real server binary.
import { spawn, execFile } from 'node:child_process';
import { resolve } from 'node:path';

export const BIN = resolve(import.meta.dirname, '../../cli/bin.mjs');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  json: any;
}

export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      let json: unknown = null;
      try {
        json = JSON.parse(stdout);
      } catch {
        /* not JSON */
      }
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr, json });
    });
  });
}

/** Starts `tensorguard server --port 0` and resolves with its URL once it listens. */
export function startServerProcess(options: { dataDir: string }): Promise<{ url: string; stop(): Promise<void> }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, 'server', '--port', '0', '--host', '127.0.0.1', '--data-dir', options.dataDir, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => fail(new Error(`server did not start: ${err}`)), 60_000);
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) {
        clearTimeout(timer);
        const { url } = JSON.parse(line);
        done({
          url,
          stop: () =>
            new Promise((ok) => {
              child.once('exit', () => ok());
              child.kill('SIGTERM');
            }),
        });
      }
    });
    child.once('exit', (code) => fail(new Error(`server exited with ${code}: ${err}`)));
  });
}
