// `tensorguard robot agent`: the robot's long-running participant in its fleet's rounds.
//
// A deployed robot does not type `robot push` by hand: it runs this loop. The agent unseals the robot's
// keys once when it starts (one passphrase, one scrypt) and holds them in memory until it stops, when
// it overwrites them. Each tick (every --poll-seconds, or once with --once):
//
//   1. outbox   resend pushes an earlier tick or command could not deliver (byte for byte, same
//               Idempotency-Key: cli/robot-outbox.ts), oldest first
//   2. rounds   GET /v1/rounds?fleet=…&state=open; for each open round this robot has not contributed
//               to (oldest first): with --train, `robot start` (the round's start adapter) then
//               `robot train --round ID` (the round's officer-signed stage, on --site), else the adapter
//               in --adapter DIR (the site's own training output); then `robot push` to that round. Every
//               check of the one-shot commands applies (pinned officer keys, HE key record, revocations,
//               stage, DP budget): they are the same functions, given the agent's session.
//   3. release  GET /v1/releases/latest with If-None-Match (304 while unchanged: no payload re-sent); a
//               newer version is `robot pull`ed into --out/v<N> and becomes the base of the next round.
//   4. precompute  while waiting, encryptions of zero under the organization's current (officer-signed,
//               unrevoked) HE key, as many as the last round needed (--precompute N): the random half of
//               BFV encryption (cli/robot-zero-pool.ts, in memory only, each used once), so the next push
//               only adds its scaled plaintext to them.
//
// A round refused for a reason that retrying cannot change (stage mismatch, revoked key, budget
// exhausted, round closed) is skipped for the rest of the agent's life and reported once; an
// unreachable or busy server leaves the push in the outbox for the next tick. Events are printed as
// they happen (one JSON object per line with --json, a line on stderr otherwise); SIGINT/SIGTERM end the
// loop after the current tick and print a summary.
import { join } from 'node:path';
import type { CommandContext } from '../context.ts';
import { CliError } from '../context.ts';
import { ApiError } from '../api.ts';
import { isRetryable } from '../robot-outbox.ts';
import { robotClient, robotPull, robotPush, robotStart, robotState, servedRevocations, wipeRobotSession, type LatestRelease, type RobotSession } from './robot.ts';
import { robotTrain } from './robot-train.ts';
import { openReleaseManifest } from '../../core/records/release-manifest.ts';
import { openKeyRecord } from '../../core/records/key-record.ts';
import { findKeyRevocation } from '../../core/records/revocation.ts';
import { IntegrityError } from '../../core/errors.ts';
import { ZeroEncryptionPool } from '../robot-zero-pool.ts';
import { fromBase64 } from '../../core/bytes.ts';

export interface RobotAgentOptions {
  /** Push this adapter directory (the site's own training output) to each new round. */
  adapter?: string;
  /** Or train for each round with `robot train --round ID` on this robot's --site. */
  train?: boolean;
  site?: string;
  episodes?: number;
  steps?: number;
  iterations?: number;
  /** The base adapter while the robot has pulled no release (the fleet's template). */
  base?: string;
  /** Where pulled releases go (one directory per version); default <home>/robot/releases. */
  out?: string;
  /** Seconds between ticks (default 15). */
  pollSeconds?: number;
  /** One tick, then exit. */
  once?: boolean;
  /**
   * Encryptions of zero to keep ready between rounds (cli/robot-zero-pool.ts): default, as many as the
   * last round this agent pushed to needed; 0 turns precomputation off.
   */
  precompute?: number;
}

export type AgentEvent =
  | { event: 'started'; robotId: string; fleetId: string; pollSeconds: number | null }
  | { event: 'resent'; roundId: string; contributionId?: string }
  | { event: 'trained'; roundId: string; stage: unknown; out: string }
  | { event: 'pushed'; roundId: string; contributionId?: unknown; packageBytes?: unknown; attempts?: unknown }
  | { event: 'push_deferred'; roundId: string; code: string; message: string }
  | { event: 'push_refused'; roundId: string; code: string; message: string }
  | { event: 'pulled'; releaseId: string; releaseVersion: number; gate: string; out: string }
  | { event: 'release_skipped'; releaseId: string; releaseVersion: number; code: string; message: string }
  | { event: 'tick_failed'; code: string; message: string }
  | { event: 'precomputed'; ciphertexts: number; keyVersion: number; pool: number }
  | { event: 'precompute_failed'; code: string; message: string }
  | { event: 'stopped'; ticks: number; pushed: number; pulled: number; refused: number };

function errorCode(error: unknown): string {
  if (error instanceof ApiError || error instanceof CliError) return error.code;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : (error as Error).name || 'error';
}

/** What may succeed later: the outbox's retry rule (network, 5xx, 408, 429), or a push `robot push` kept queued in the outbox. */
function isTransient(error: unknown): boolean {
  return isRetryable(error) || (error instanceof CliError && error.code === 'queued');
}

/** One agent: its session, what it has given up on, and the ETag of the release it last saw. */
export class RobotAgent {
  private readonly refusedRounds = new Set<string>();
  private releaseEtag: string | undefined;
  /** Precomputed encryptions of zero (in memory only), and how many to keep: null until a push tells. */
  readonly zeroPool = new ZeroEncryptionPool();
  private precomputeTarget: number | null;
  ticks = 0;
  pushed = 0;
  pulled = 0;
  refused = 0;

  constructor(
    private readonly ctx: CommandContext,
    private readonly session: RobotSession,
    private readonly opts: RobotAgentOptions,
    private readonly emit: (event: AgentEvent) => void,
  ) {
    if (!opts.train && !opts.adapter) throw new CliError('robot agent needs --adapter DIR (the adapter to push) or --train', 'invalid_argument');
    if (opts.train && opts.adapter) throw new CliError('--adapter and --train are exclusive', 'invalid_argument');
    if (opts.precompute !== undefined && (!Number.isSafeInteger(opts.precompute) || opts.precompute < 0 || opts.precompute > 100_000))
      throw new CliError(`--precompute expects 0..100000 ciphertexts, got ${opts.precompute}`, 'invalid_argument');
    this.precomputeTarget = opts.precompute ?? null;
  }

  /** One pass: outbox, open rounds, newest release. Never throws for the server's or the round's faults. */
  async tick(): Promise<void> {
    this.ticks++;
    try {
      await this.resendOutbox();
      await this.contribute();
      await this.followRelease();
      if (!this.opts.once) {
        // An optimization: a failure here is reported and the next tick tries again; pushes do not depend on it.
        await this.precompute().catch((error: unknown) => this.emit({ event: 'precompute_failed', code: errorCode(error), message: (error as Error).message }));
      }
    } catch (error) {
      if (!isTransient(error)) throw error;
      this.emit({ event: 'tick_failed', code: errorCode(error), message: (error as Error).message });
    }
  }

  private async resendOutbox(): Promise<void> {
    const resent = (await robotPush(this.ctx, { resume: true }, this.session)) as { resumed: Array<{ roundId: string; contributionId?: string }> };
    for (const r of resent.resumed) this.emit({ event: 'resent', roundId: r.roundId, contributionId: r.contributionId });
  }

  private async contribute(): Promise<void> {
    const { identity, api } = this.session;
    const open = await api.json<Array<{ roundId: string; createdAt?: number }>>('GET', `/v1/rounds?fleet=${encodeURIComponent(identity.fleetId)}&state=open`);
    const state = await robotState(this.ctx);
    const pending = open.filter((r) => !state.contributed.includes(r.roundId) && !this.refusedRounds.has(r.roundId)).sort((a, b) => (a.createdAt ?? 0) - (b.createdAt ?? 0));
    for (const round of pending) {
      try {
        let adapter = this.opts.adapter!;
        const base = this.opts.base;
        if (this.opts.train) {
          const work = join(this.ctx.home, 'robot', 'agent', round.roundId);
          const start = await robotStart(this.ctx, { out: join(work, 'start'), base, round: round.roundId }, this.session);
          const trained = await robotTrain(
            this.ctx,
            { out: join(work, 'trained'), base: start.out, round: round.roundId, site: this.opts.site, episodes: this.opts.episodes, steps: this.opts.steps, iterations: this.opts.iterations },
            this.session,
          );
          this.emit({ event: 'trained', roundId: round.roundId, stage: trained.stage, out: join(work, 'trained') });
          adapter = join(work, 'trained');
        }
        const pushed = await robotPush(this.ctx, { adapter, base, round: round.roundId }, this.session, { zeroPool: this.zeroPool });
        this.pushed++;
        if (this.opts.precompute === undefined && typeof pushed.ciphertextCount === 'number') this.precomputeTarget = pushed.ciphertextCount;
        // Left unused, the pool holds another key's encryptions (the round named a newer key): start over.
        if (pushed.precomputedZerosUsed === 0) this.zeroPool.wipe();
        this.emit({ event: 'pushed', roundId: round.roundId, contributionId: pushed.contributionId, packageBytes: pushed.packageBytes, attempts: pushed.attempts });
      } catch (error) {
        const event = { roundId: round.roundId, code: errorCode(error), message: (error as Error).message };
        if (isTransient(error)) {
          // Still in the outbox if it was built: the next tick resends it rather than rebuilding it.
          this.emit({ event: 'push_deferred', ...event });
          return;
        }
        this.refusedRounds.add(round.roundId);
        this.refused++;
        this.emit({ event: 'push_refused', ...event });
      }
    }
  }

  private async followRelease(): Promise<void> {
    let latest: { body: LatestRelease; etag: string | null } | null;
    try {
      latest = await this.session.api.jsonIfChanged<LatestRelease>('/v1/releases/latest', this.releaseEtag);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return; // the fleet has no release yet
      throw error;
    }
    if (latest === null) return; // unchanged since the last tick
    const etag = latest.etag ?? undefined;
    let version = 0;
    let releaseId = '';
    try {
      const { record } = openReleaseManifest({ bytes: fromBase64(latest.body.manifest), trustedKeys: this.session.pinned });
      version = record.releaseVersion;
      releaseId = record.releaseId;
      const state = await robotState(this.ctx);
      if (version <= state.releaseVersion) {
        this.releaseEtag = etag;
        return;
      }
      const out = join(this.opts.out ?? join(this.ctx.home, 'robot', 'releases'), `v${version}`);
      const pulled = await robotPull(this.ctx, { out, release: latest.body }, this.session);
      this.pulled++;
      this.releaseEtag = etag;
      this.emit({ event: 'pulled', releaseId: pulled.releaseId, releaseVersion: pulled.releaseVersion, gate: pulled.gate, out });
    } catch (error) {
      if (isTransient(error)) throw error;
      // Not for this robot yet (a canary), or refused by the robot's checks: reported once, not retried
      // until the server names another release.
      this.releaseEtag = etag;
      this.emit({ event: 'release_skipped', releaseId, releaseVersion: version, code: errorCode(error), message: (error as Error).message });
    }
  }

  /**
   * Between rounds: tops the pool of encryptions of zero up to the target, under the organization's
   * current HE key as its officer-signed record names it (not revoked by an officer). The push checks the
   * key again and uses the pool only if the round names this key.
   */
  async precompute(): Promise<void> {
    const target = this.precomputeTarget;
    if (target === null || target === 0 || this.zeroPool.size >= target) return;
    const { api, pinned, identity } = this.session;
    const current = await api.json<{ record: string }>('GET', '/v1/he-keys/current');
    const key = openKeyRecord({ bytes: fromBase64(current.record), trustedKeys: pinned });
    if (key.record.orgId !== identity.orgId) throw new IntegrityError('the current HE key record names another organization');
    const revocations = await servedRevocations(api);
    if (findKeyRevocation({ revocations, trustedKeys: pinned, orgId: identity.orgId, keyVersion: key.record.keyVersion, heKeyFingerprint: key.fingerprint })) {
      this.zeroPool.wipe();
      return;
    }
    const made = await this.zeroPool.fill({ heKeyFingerprint: key.fingerprint, publicKey: key.record.publicKey, paramSetId: key.record.paramSetId, target });
    if (made > 0) this.emit({ event: 'precomputed', ciphertexts: made, keyVersion: key.record.keyVersion, pool: this.zeroPool.size });
  }

  summary(): AgentEvent {
    return { event: 'stopped', ticks: this.ticks, pushed: this.pushed, pulled: this.pulled, refused: this.refused };
  }
}

/** The command: open the session, tick until stopped (or once), wipe the keys, return the summary. */
export async function robotAgent(ctx: CommandContext, opts: RobotAgentOptions, io: { signal?: AbortSignal; emit?: (event: AgentEvent) => void } = {}): Promise<AgentEvent> {
  const pollSeconds = opts.pollSeconds ?? 15;
  if (!Number.isFinite(pollSeconds) || pollSeconds < 1 || pollSeconds > 86_400) throw new CliError(`--poll-seconds expects 1..86400, got ${opts.pollSeconds}`, 'invalid_argument');
  const emit =
    io.emit ??
    ((event: AgentEvent) => {
      if (ctx.json) process.stdout.write(`${JSON.stringify(event)}\n`);
      else process.stderr.write(`${Object.entries(event).map(([k, v]) => (k === 'event' ? String(v) : `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)).join(' ')}\n`);
    });
  const session = await robotClient(ctx);
  let agentRef: RobotAgent | undefined;
  try {
    const agent = new RobotAgent(ctx, session, opts, emit);
    agentRef = agent;
    emit({ event: 'started', robotId: session.identity.robotId, fleetId: session.identity.fleetId, pollSeconds: opts.once ? null : pollSeconds });
    const controller = new AbortController();
    const stop = () => controller.abort();
    io.signal?.addEventListener('abort', stop, { once: true });
    if (!opts.once) {
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    }
    try {
      for (;;) {
        await agent.tick();
        if (opts.once || controller.signal.aborted) break;
        await new Promise<void>((resume) => {
          const timer = setTimeout(resume, pollSeconds * 1000);
          controller.signal.addEventListener('abort', () => (clearTimeout(timer), resume()), { once: true });
        });
        if (controller.signal.aborted) break;
      }
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
    const summary = agent.summary();
    emit(summary);
    return summary;
  } finally {
    agentRef?.zeroPool.wipe();
    wipeRobotSession(session);
  }
}
