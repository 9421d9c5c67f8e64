// The CLI's stage-timing reporter against a scripted HTTP server: what is kept for the next command
// (network down, 5xx, 429), what is settled (201, 409 stage_already_reported) and what is dropped
// (other 4xx), and the stage arithmetic of a push and a review.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../api.ts';
import { officerReviewStages, recallTrainDuration, rememberTrainDuration, reportStageTimings, robotPushStages } from './timings.ts';

let server: Server;
let url = '';
/** Status the server answers per round id (default 201); every request is recorded. */
const answers = new Map<string, { status: number; code?: string }>();
const seen: Array<{ roundId: string; body: unknown }> = [];

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const roundId = /^\/v1\/rounds\/([^/]+)\/timings$/.exec(req.url ?? '')?.[1] ?? '?';
    seen.push({ roundId, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
    const a = answers.get(roundId) ?? { status: 201 };
    res.writeHead(a.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(a.status === 201 ? { roundId } : { error: { code: a.code ?? 'x', message: 'scripted' } }));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((done) => server.close(() => done()));
});

describe('reportStageTimings', () => {
  it('keeps what the server could not take, settles 201 and 409 stage_already_reported, drops other refusals', async () => {
    const home = await mkdtemp(join(tmpdir(), 'tg-timings-cli-'));
    const api = new ApiClient(url, { kind: 'session', token: 't' });
    const logs: string[] = [];
    const log = (m: string) => logs.push(m);
    const stage = (durationMs: number) => [{ stage: 'upload' as const, durationMs }];
    answers.set('r-busy', { status: 503, code: 'unavailable' });
    answers.set('r-dup', { status: 409, code: 'stage_already_reported' });
    answers.set('r-gone', { status: 404, code: 'not_found' });
    answers.set('r-slow', { status: 429, code: 'throttled' });
    for (const [roundId, ms] of [['r-busy', 1], ['r-dup', 2], ['r-gone', 3], ['r-slow', 4], ['r-ok', 5]] as const) {
      await reportStageTimings({ home, role: 'robot', api, roundId, stages: stage(ms), log });
    }
    const pending = JSON.parse(await readFile(join(home, 'robot', 'timings-pending.json'), 'utf8'));
    expect(pending.reports.map((r: { roundId: string }) => r.roundId)).toEqual(['r-busy', 'r-slow']);
    expect(logs.some((m) => /r-gone refused by the server, dropped/.test(m))).toBe(true);
    // the server recovers: the next command sends both, oldest first, with what was measured
    answers.clear();
    seen.length = 0;
    const next = await reportStageTimings({ home, role: 'robot', api, log });
    expect(next).toEqual({ delivered: [{ roundId: 'r-busy', stages: ['upload'] }, { roundId: 'r-slow', stages: ['upload'] }], pending: 0 });
    expect(seen.map((s) => s.body)).toEqual([{ stages: stage(1) }, { stages: stage(4) }]);
  });

  it('an unreachable server never throws: the report waits in the home', async () => {
    const home = await mkdtemp(join(tmpdir(), 'tg-timings-cli-'));
    const down = new ApiClient('http://127.0.0.1:1', { kind: 'session', token: 't' });
    const logs: string[] = [];
    const r = await reportStageTimings({ home, role: 'officer', api: down, roundId: 'r1', stages: [{ stage: 'decrypt', durationMs: 9 }], log: (m) => logs.push(m) });
    expect(r).toEqual({ delivered: [], pending: 1 });
    expect(logs.join('\n')).toMatch(/kept for the next command/);
    // a stage the officer does not measure is refused before anything is queued or sent
    const bad = await reportStageTimings({ home, role: 'officer', api: down, roundId: 'r1', stages: [{ stage: 'upload', durationMs: 9 }], log: (m) => logs.push(m) });
    expect(bad.pending).toBe(1);
    expect(logs.join('\n')).toMatch(/expected one of the officer stages/);
  });
});

describe('stage arithmetic', () => {
  it('a push: compress is everything before encryption, encrypt includes signing, train only when remembered', () => {
    const stages = robotPushStages({ encodeTimings: { compress: 1.5, clip_noise_quantize: 2.25, pack: 0.25, encrypt: 10 }, signMs: 3, uploadMs: 40, trainMs: null });
    expect(stages).toEqual([
      { stage: 'compress', durationMs: 4 },
      { stage: 'encrypt', durationMs: 13 },
      { stage: 'upload', durationMs: 40 },
    ]);
    expect(robotPushStages({ encodeTimings: { encrypt: 1 }, signMs: 0, uploadMs: 0, trainMs: 1234.5 })[0]).toEqual({ stage: 'train', durationMs: 1234.5 });
  });

  it('a review: decrypt = download + verify and sum + decrypt; review = unpack + gate', () => {
    expect(officerReviewStages({ laps: { download: 100, verify_and_sum: 20, decrypt: 3, unpack: 4, gate: 500 } })).toEqual([
      { stage: 'decrypt', durationMs: 123 },
      { stage: 'review', durationMs: 504 },
    ]);
  });

  it('the training duration is found by the pushed adapter, for its round or trained without one', async () => {
    const home = await mkdtemp(join(tmpdir(), 'tg-timings-cli-'));
    const log = () => undefined;
    await rememberTrainDuration({ home, roundId: 'round-a', adapterSha256: 'aa', durationMs: 111, log });
    await rememberTrainDuration({ home, roundId: null, adapterSha256: 'bb', durationMs: 222, log });
    expect(await recallTrainDuration({ home, roundId: 'round-a', adapterSha256: 'aa' })).toBe(111);
    expect(await recallTrainDuration({ home, roundId: 'round-b', adapterSha256: 'aa' })).toBeNull(); // trained for another round
    expect(await recallTrainDuration({ home, roundId: 'round-b', adapterSha256: 'bb' })).toBe(222);
    expect(await recallTrainDuration({ home, roundId: 'round-a', adapterSha256: 'cc' })).toBeNull(); // not trained here
    // older than a week: forgotten
    expect(await recallTrainDuration({ home, roundId: 'round-a', adapterSha256: 'aa', now: Date.now() + 8 * 24 * 3600 * 1000 })).toBeNull();
  });
});
