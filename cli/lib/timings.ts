// Stage timings from the CLI to the server's round latency breakdown (POST /v1/rounds/:id/timings).
//
//   robot train   measures its training and remembers it in <home>/robot/train-timings.json, under the
//                 round (--round) and under the trained adapter's fingerprint (so a push of that
//                 adapter finds it without --round)
//   robot push    measures compress, encrypt, upload; after the server acknowledged the contribution it
//                 adds train (if remembered) and reports the four
//   robot pull    measures apply; reports it after the release is applied
//   officer review measures decrypt and review; reports them after the review is written
//
// A report goes to a pending file first (<home>/robot/timings-pending.json or <home>/officer/…) and is
// removed once the server took it (201) or already holds it (409 stage_already_reported: the first
// report stands). A report the server can never take (another 4xx: the round is gone, a stage it will not
// accept) is dropped with a warning. Anything else — no network, 5xx, 429, a clock the server refuses —
// keeps it for the next command. Reporting never throws: a timing report never fails the work it measures.
import { join } from 'node:path';
import { ApiError, type ApiClient } from '../api.ts';
import { readJson, writeJson } from '../home.ts';
import { validateStageReport, type StageActorKind, type StageReport } from '../../core/round/latency.ts';

export interface PendingReport {
  roundId: string;
  stages: StageReport[];
  addedAt: number;
}

interface PendingFile {
  version: 1;
  reports: PendingReport[];
}

/** At most this many reports wait; the oldest go first when a robot stays offline for long. */
const MAX_PENDING = 64;
/** Remembered training durations expire: a push weeks later is not the same round trip. */
const TRAIN_MEMORY_MS = 7 * 24 * 60 * 60 * 1000;
const MAX_TRAIN_ENTRIES = 64;

export const pendingTimingsFile = (options: { home: string; role: 'robot' | 'officer' }) => join(options.home, options.role, 'timings-pending.json');
const trainFile = (home: string) => join(home, 'robot', 'train-timings.json');

/** Milliseconds since `start` (performance.now()), rounded to microseconds. */
export function elapsedMs(start: number): number {
  return Math.round((performance.now() - start) * 1000) / 1000;
}

async function readPending(options: { file: string; actorKind: StageActorKind; log: (m: string) => void }): Promise<PendingReport[]> {
  let stored: PendingFile | null = null;
  try {
    stored = await readJson<PendingFile>(options.file);
  } catch (err) {
    options.log(`stage timings: ignoring unreadable ${options.file} (${(err as Error).message})`);
    return [];
  }
  if (!stored || stored.version !== 1 || !Array.isArray(stored.reports)) return [];
  const out: PendingReport[] = [];
  for (const r of stored.reports) {
    try {
      if (typeof r.roundId !== 'string' || !/^[A-Za-z0-9._:-]{1,64}$/.test(r.roundId)) throw new TypeError(`"roundId" expected a round id, got ${String(r.roundId).slice(0, 70)}`);
      out.push({ roundId: r.roundId, stages: validateStageReport({ actorKind: options.actorKind, stages: r.stages }), addedAt: Number(r.addedAt) || 0 });
    } catch (err) {
      options.log(`stage timings: dropping a malformed pending report (${(err as Error).message})`);
    }
  }
  return out;
}

/** A 4xx other than these means the server will never take the report. */
function retryable(err: unknown): boolean {
  if (!(err instanceof ApiError)) return true;
  return err.status === 0 || err.status >= 500 || err.status === 429 || err.status === 408 || err.status === 401;
}

/**
 * Queues `stages` of `roundId` (when given) and sends every queued report, oldest first. Returns what
 * was delivered and how many wait; never throws.
 */
export async function reportStageTimings(options: {
  home: string;
  role: 'robot' | 'officer';
  api: ApiClient;
  roundId?: string;
  stages?: StageReport[];
  log: (message: string) => void;
  now?: number;
}): Promise<{ delivered: Array<{ roundId: string; stages: string[] }>; pending: number }> {
  const { api, log } = options;
  const actorKind: StageActorKind = options.role;
  const file = pendingTimingsFile({ home: options.home, role: options.role });
  const delivered: Array<{ roundId: string; stages: string[] }> = [];
  let queue: PendingReport[] = [];
  try {
    queue = await readPending({ file, actorKind, log });
    if (options.roundId !== undefined && options.stages && options.stages.length > 0)
      queue.push({ roundId: options.roundId, stages: validateStageReport({ actorKind, stages: options.stages }), addedAt: options.now ?? Date.now() });
    if (queue.length > MAX_PENDING) {
      log(`stage timings: ${queue.length - MAX_PENDING} old pending reports dropped (more than ${MAX_PENDING} waiting)`);
      queue = queue.slice(-MAX_PENDING);
    }
    // Written before sending: a report measured now survives a crash in the middle of the sends.
    await writeJson(file, { version: 1, reports: queue } satisfies PendingFile);
    const kept: PendingReport[] = [];
    let offline = false;
    for (const report of queue) {
      if (offline) {
        kept.push(report);
        continue;
      }
      try {
        await api.json('POST', `/v1/rounds/${encodeURIComponent(report.roundId)}/timings`, { stages: report.stages });
        delivered.push({ roundId: report.roundId, stages: report.stages.map((s) => s.stage) });
      } catch (err) {
        if (err instanceof ApiError && err.code === 'stage_already_reported') continue; // the first report stands
        if (retryable(err)) {
          log(`stage timings for round ${report.roundId} not reported yet, kept for the next command: ${(err as Error).message}`);
          kept.push(report);
          offline = err instanceof ApiError && err.status === 0;
        } else {
          log(`stage timings for round ${report.roundId} refused by the server, dropped: ${(err as Error).message}`);
        }
      }
    }
    await writeJson(file, { version: 1, reports: kept } satisfies PendingFile);
    return { delivered, pending: kept.length };
  } catch (err) {
    log(`stage timings: could not report (${(err as Error).message}); the work itself is done`);
    return { delivered, pending: queue.length };
  }
}

interface TrainMemory {
  version: 1;
  entries: Array<{ roundId: string | null; adapterSha256: string; durationMs: number; at: number }>;
}

/** `robot train` remembers how long it trained, for the push of its adapter. Never throws. */
export async function rememberTrainDuration(options: { home: string; roundId: string | null; adapterSha256: string; durationMs: number; log: (m: string) => void; now?: number }): Promise<void> {
  try {
    const now = options.now ?? Date.now();
    const stored = (await readJson<TrainMemory>(trainFile(options.home)).catch(() => null)) ?? { version: 1, entries: [] };
    const entries = (Array.isArray(stored.entries) ? stored.entries : []).filter((e) => now - e.at < TRAIN_MEMORY_MS && e.adapterSha256 !== options.adapterSha256);
    entries.push({ roundId: options.roundId, adapterSha256: options.adapterSha256, durationMs: options.durationMs, at: now });
    await writeJson(trainFile(options.home), { version: 1, entries: entries.slice(-MAX_TRAIN_ENTRIES) } satisfies TrainMemory);
  } catch (err) {
    options.log(`stage timings: could not remember the training duration (${(err as Error).message})`);
  }
}

/**
 * The training duration of the adapter being pushed: the entry with that adapter's fingerprint
 * (core/peft/adapter.ts, over the tensors), trained for this round or without --round. Null when this
 * robot's `robot train` did not produce that adapter: then no train stage is reported.
 */
export async function recallTrainDuration(options: { home: string; roundId: string; adapterSha256: string; now?: number }): Promise<number | null> {
  const now = options.now ?? Date.now();
  const stored = await readJson<TrainMemory>(trainFile(options.home)).catch(() => null);
  const entries = (stored && Array.isArray(stored.entries) ? stored.entries : []).filter((e) => now - e.at < TRAIN_MEMORY_MS && Number.isFinite(e.durationMs));
  const hit = entries.findLast((e) => e.adapterSha256 === options.adapterSha256 && (e.roundId === null || e.roundId === options.roundId));
  return hit ? hit.durationMs : null;
}

/**
 * The stages of one `robot push`: compress = every step of encodeContribution before encryption
 * (sparsify, clip, noise, quantize, pack: core/round/robot.ts), encrypt = BFV encryption plus building
 * and signing the update package, upload = the delivery until the server acknowledged (retries
 * included), train = the remembered `robot train` of this adapter, when there was one.
 */
export function robotPushStages(options: { encodeTimings: Record<string, number>; signMs: number; uploadMs: number; trainMs: number | null }): StageReport[] {
  const { encodeTimings } = options;
  const compress = Object.entries(encodeTimings).reduce((s, [k, v]) => (k === 'encrypt' ? s : s + v), 0);
  const round3 = (x: number) => Math.round(Math.max(0, x) * 1000) / 1000;
  const stages: StageReport[] = [];
  if (options.trainMs !== null) stages.push({ stage: 'train', durationMs: round3(options.trainMs) });
  stages.push({ stage: 'compress', durationMs: round3(compress) }, { stage: 'encrypt', durationMs: round3((encodeTimings.encrypt ?? 0) + options.signMs) }, { stage: 'upload', durationMs: round3(options.uploadMs) });
  return stages;
}

/**
 * The stages of one `officer review` from its laps (cli/commands/officer.ts): decrypt = fetching the
 * manifest, packages and aggregate, verifying them and re-adding the sum, then decrypting; review =
 * unpacking the candidate and running the evaluation gate.
 */
export function officerReviewStages(options: { laps: Record<string, number> }): StageReport[] {
  const lap = (k: string) => Math.max(0, options.laps[k] ?? 0);
  return [
    { stage: 'decrypt', durationMs: lap('download') + lap('verify_and_sum') + lap('decrypt') },
    { stage: 'review', durationMs: lap('unpack') + lap('gate') },
  ];
}
