// The real server for browser suites and the browser benchmark: `tensorguard server` in a child process
// on a free port with its own data directory (no Playwright imports, so benchmarks can use it too).
import { spawn } from 'node:child_process';
import { BIN } from '../helpers/cli.ts';

/** `tensorguard server --port 0 --json` in a child process; resolves once it prints its URL. */
export function startServer(options: { dataDir: string; env?: Record<string, string> }): Promise<{ url: string; stop(): Promise<void> }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, 'server', '--port', '0', '--host', '127.0.0.1', '--data-dir', options.dataDir, '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
    });
    let out = '';
    let err = '';
    let exited = false;
    const timer = setTimeout(() => fail(new Error(`server did not start: ${err}`)), 60_000);
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      out += d;
      for (const line of out.split('\n')) {
        if (!line.startsWith('{')) continue;
        let url: unknown;
        try {
          url = JSON.parse(line).url;
        } catch {
          continue;
        }
        if (typeof url !== 'string') continue;
        clearTimeout(timer);
        done({
          url,
          stop: () =>
            new Promise<void>((ok) => {
              if (exited) return ok();
              const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
              child.once('exit', () => {
                clearTimeout(force);
                ok();
              });
              child.kill('SIGTERM');
            }),
        });
        return;
      }
    });
    child.once('exit', (code) => {
      exited = true;
      clearTimeout(timer);
      fail(new Error(`server exited with ${code}: ${err}`));
    });
  });
}
