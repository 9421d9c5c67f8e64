// Failpoints for crash testing: with TG_FAILPOINTS set (tests/crash only, never in production) the server
// kills itself with SIGKILL at named points of its write paths, with the given probability, so the crash
// suite can hit windows a kill from outside almost never lands in — between a commit and its answer, or
// inside a transaction. Format: `name=probability,...`, e.g.
//   TG_FAILPOINTS=contribution.after_commit=0.1,round.in_finalize=0.2
// Unset (the default), failpoint() is a no-op.
import { jitterFraction } from '../random-jitter.ts';

const POINTS = new Map<string, number>();
let parsed = false;

function parse(): void {
  parsed = true;
  const spec = process.env.TG_FAILPOINTS;
  if (!spec) return;
  for (const part of spec.split(',')) {
    const m = /^\s*([a-z_.]+)\s*=\s*([0-9.]+)\s*$/.exec(part);
    if (!m || !(Number(m[2]) >= 0 && Number(m[2]) <= 1)) throw new RangeError(`"TG_FAILPOINTS" expected name=probability pairs, got ${JSON.stringify(part)}`);
    POINTS.set(m[1]!, Number(m[2]));
  }
}

/** Names of the failpoints the server has (documented in docs/OPERATIONS.md). */
export const FAILPOINTS = [
  'contribution.after_blobs',
  'contribution.in_transaction',
  'contribution.after_commit',
  'round.in_finalize',
  'round.after_finalize',
] as const;

export function failpoint(name: (typeof FAILPOINTS)[number]): void {
  if (!parsed) parse();
  const p = POINTS.get(name);
  if (p === undefined || jitterFraction() >= p) return;
  process.stderr.write(`${JSON.stringify({ level: 'warn', message: 'failpoint: SIGKILL', failpoint: name })}\n`);
  process.kill(process.pid, 'SIGKILL');
}
