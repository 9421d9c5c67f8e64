// `tensorguard robot report`: one window of canary telemetry for a release this robot runs — success
// rate over N runs, safety events, p99 latency — as a robot-signed POST /v1/releases/:id/telemetry.
import type { CommandContext } from '../context.ts';
import { CliError } from '../context.ts';
import { robotClient } from './robot.ts';

export async function robotReport(ctx: CommandContext, opts: { release: string; successRate: number; safetyEvents: number; p99Ms: number; runs?: number }) {
  const runs = opts.runs ?? 100;
  if (!Number.isInteger(runs) || runs < 1) throw new CliError(`--runs expects a positive integer, got ${runs}`, 'bad_argument');
  if (!(opts.successRate >= 0 && opts.successRate <= 1)) throw new CliError(`--success-rate expects a number in [0, 1], got ${opts.successRate}`, 'bad_argument');
  if (!Number.isInteger(opts.safetyEvents) || opts.safetyEvents < 0) throw new CliError(`--safety-events expects a non-negative integer, got ${opts.safetyEvents}`, 'bad_argument');
  if (!(opts.p99Ms >= 0)) throw new CliError(`--p99-ms expects a non-negative number, got ${opts.p99Ms}`, 'bad_argument');
  const { api, identity } = await robotClient(ctx);
  const body = { runs, errors: Math.round((1 - opts.successRate) * runs), latencyP99Ms: opts.p99Ms, safetyEvents: opts.safetyEvents };
  await api.json('POST', `/v1/releases/${encodeURIComponent(opts.release)}/telemetry`, body);
  return { releaseId: opts.release, robotId: identity.robotId, ...body };
}
