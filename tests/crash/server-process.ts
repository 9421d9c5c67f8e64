// The real `tensorguard server` as a child process that a test can SIGKILL and restart on the same data
// directory (tests/helpers/cli.ts startServerProcess only stops it politely).
import { spawn, type ChildProcess } from 'node:child_process';
import { BIN } from '../helpers/cli.ts';

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Resolves with the exit code and signal once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends the signal and resolves once the process has exited. */
  kill(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
}

/** `port` defaults to 0 (any free port); pass the previous one to restart where clients expect it. */
export function spawnServer(options: { dataDir: string; env?: Record<string, string>; port?: number }): Promise<ServerProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'server', '--port', String(options.port ?? 0), '--host', '127.0.0.1', '--data-dir', options.dataDir, '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
    });
    let out = '';
    let err = '';
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.once('exit', (code, signal) => done({ code, signal })));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start within 60 s: ${err}`));
    }, 60_000);
    child.stderr!.on('data', (d) => (err += d));
    child.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (!line) return;
      clearTimeout(timer);
      const { url } = JSON.parse(line) as { url: string };
      resolve({
        url,
        child,
        exited,
        kill(signal) {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          return exited;
        },
        stderr: () => err,
      });
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited before listening (code ${code}, signal ${signal}): ${err}`));
    });
  });
}
