// Robot safety sessions on the server: one ML-DSA-signed open, then HMAC-authenticated requests.
//
// Why (issues #5, #6): one ML-DSA-44 verification costs ~1.2 ms of event-loop CPU here (~830/s per
// core), so a robot authenticated by a signature on every request caps command validation far below
// the 2,000 req/s DESIGN.md asks of two cores. A robot that validates at a high rate opens a session
// once and MACs every later request; the signed per-request form stays accepted everywhere.
//
// Data flow:
//   POST /v1/safety/sessions  (server/routes/safety.ts; robot-signed through requireAuth: timestamp
//                              window, nonce single use, robot enrolled and not revoked)
//     -> SafetySessions.open: 32 random bytes of session key, a session id naming this instance,
//        expiry now + 10 min; the key is wrapped to the robot's enrolled ML-KEM-768 public key
//        (core/crypto/kem.ts wrapContentKey, context core/records/safety-session.ts) and only the wrap
//        leaves the server. The key stays in this process's memory (as a node:crypto KeyObject).
//   later requests with x-tg-session (requireRobotSession below), checked in this order:
//     headers well formed (else 400 `malformed` naming the header) -> session known to this instance
//     (else 401 `session_unknown`) -> it belongs to the robot named by x-tg-robot -> not expired
//     (401 `session_expired`) -> HMAC-SHA256 over method, path, counter, SHA-256(body), compared in
//     constant time (401 `bad_mac`) -> robot still enrolled and not revoked (RobotStatusCache: a DB
//     read at most every ROBOT_STATUS_TTL_MS per robot, dropped at once on a revocation in this
//     process) -> counter never accepted before and inside the anti-replay window (401 `replay`) ->
//     the robot's rate budget (SessionRateBudget: 429 as for signed requests) -> principal + raw body.
//   A request without x-tg-session falls through to the signed form (server/http/auth.ts).
//
// Counters: the robot sends 1, 2, 3, ... and never reuses one. Requests in flight on several
// connections arrive out of order (a connection still being set up holds its first request while the
// others go on), so the server keeps the anti-replay window of IPsec ESP (RFC 4303 section 3.4.3,
// bitmap as in RFC 6479): the highest counter accepted, H, and a bit for each of the COUNTER_WINDOW
// counters up to H. A counter above H is accepted; one in (H - W, H] once; anything at or below H - W
// is a replay. Every counter is accepted at most once, which is the property replay protection needs;
// "strictly above the highest seen" is the special case W = 1. W = 1024 costs 128 bytes per session.
//
// Rate budget: session requests spend the same per-robot budget (`robot:<id>`, robotPerMinute) in the
// same database counters as signed requests, but without a database write per request (the embedded
// database commits with fsync on the event loop): the first hit of a robot in a window is written and
// read back at once, later hits count in memory and are added to the shared counter every
// BUDGET_FLUSH_MS, when the shared total is read back. Across instances the budget therefore holds to
// within what the other instances admitted in one flush interval. (A flush is one fsynced write on the
// event loop, 6 ms median and up to ~50 ms on this loaded machine, so it runs once a second, not per
// request.)
//
// Instances: sessions live only in the memory of the instance that opened them, bounded to
// MAX_SESSIONS (oldest dropped first, expired ones before that) and MAX_SESSIONS_PER_ROBOT per robot.
// The session id carries the instance id, so another instance (or this one after a restart) answers
// 401 `session_unknown` and the robot opens a new session there: with several instances behind a load
// balancer, robots re-open when they land elsewhere (sticky routing avoids the churn), see docs/SECURITY.md.
import { createHash, createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { AuthenticationError } from '../../core/errors.ts';
import { bytesToHex } from '../../core/bytes.ts';
import { randomBytes } from '../../core/random.ts';
import { wrapContentKey } from '../../core/crypto/kem.ts';
import {
  COUNTER_PATTERN,
  MAC_PATTERN,
  SAFETY_SESSION_HEADERS,
  SESSION_ID_PATTERN,
  SESSION_KEY_BYTES,
  formatSessionId,
  safetySessionContext,
  sessionInstance,
  sessionRequestMacInput,
} from '../../core/records/safety-session.ts';
import { getRobotById, type RobotView } from '../db/robots.ts';
import { httpError } from './errors.ts';
import { requireAuth } from './auth.ts';
import { MINUTE_MS } from './rate-limit.ts';
import { incrementCounters } from '../db/rate-limits.ts';
import type { AppDeps, AppEnv } from './context.ts';

export const SESSION_TTL_MS = 10 * 60 * 1000;
export const COUNTER_WINDOW = 1024;
export const MAX_SESSIONS = 10_000;
export const MAX_SESSIONS_PER_ROBOT = 4;
/** A robot's enrollment state is re-read from the database at most this often per robot. */
export const ROBOT_STATUS_TTL_MS = 2000;
/** Session requests' rate-budget hits are added to the shared database counter this often. */
export const BUDGET_FLUSH_MS = 1000;

// ---------------------------------------------------------------------------------------------------------
// Revocations in this process (DELETE /v1/robots/:id calls robotRevoked): every session store drops the
// robot's sessions and cached status at once. Other instances notice within ROBOT_STATUS_TTL_MS.

const revocationListeners = new Set<(robotId: string) => void>();

export function onRobotRevoked(listener: (robotId: string) => void): () => void {
  revocationListeners.add(listener);
  return () => revocationListeners.delete(listener);
}

export function robotRevoked(robotId: string): void {
  for (const l of revocationListeners) l(robotId);
}

// ---------------------------------------------------------------------------------------------------------

interface Session {
  id: string;
  robotId: string;
  orgId: string;
  fleetId: string;
  key: KeyObject;
  expiresAt: number;
  counters: CounterWindow;
}

/** The anti-replay window: the highest counter accepted and one bit per counter in (highest - W, highest]. */
export interface CounterWindow {
  highest: number;
  /** Bit (c mod W) is set <=> counter c, inside the window, was accepted. W = 32 * bits.length. */
  bits: Uint32Array;
}

export function counterWindow(options: { size?: number } = {}): CounterWindow {
  const size = options.size ?? COUNTER_WINDOW;
  if (!Number.isInteger(size) || size < 32 || size % 32 !== 0) throw new RangeError(`"size" expected a positive multiple of 32, got ${size}`);
  return { highest: 0, bits: new Uint32Array(size / 32) };
}

export interface OpenedSession {
  sessionId: string;
  robotId: string;
  expiresAt: number;
  counterWindow: number;
  kemCiphertext: Uint8Array;
  wrappedKey: Uint8Array;
}

/** The robot's enrollment state, cached for ROBOT_STATUS_TTL_MS and dropped on revocation. */
export class RobotStatusCache {
  readonly #entries = new Map<string, { robot: RobotView | null; at: number }>();
  /** Reads in flight: concurrent requests of one robot share one database read. */
  readonly #reading = new Map<string, Promise<RobotView | null>>();
  readonly #db: AppDeps['db'];

  constructor(options: { db: AppDeps['db'] }) {
    this.#db = options.db;
  }

  /** The robot if it is enrolled and not revoked, else null. */
  async active(options: { robotId: string; now: number }): Promise<RobotView | null> {
    const { robotId, now } = options;
    const hit = this.#entries.get(robotId);
    if (hit && now - hit.at < ROBOT_STATUS_TTL_MS && now >= hit.at) return hit.robot;
    let reading = this.#reading.get(robotId);
    if (!reading) {
      reading = getRobotById({ db: this.#db, robotId })
        .then((robot) => {
          const active = robot && robot.revokedAt === null ? robot : null;
          // A revocation seen while the read was in flight wins (forget() removed the read).
          if (this.#reading.get(robotId) === reading) {
            if (this.#entries.size >= MAX_SESSIONS) this.#entries.clear();
            this.#entries.set(robotId, { robot: active, at: now });
            return active;
          }
          return null;
        })
        .finally(() => {
          if (this.#reading.get(robotId) === reading) this.#reading.delete(robotId);
        });
      this.#reading.set(robotId, reading);
    }
    return reading;
  }

  forget(robotId: string): void {
    this.#entries.delete(robotId);
    this.#reading.delete(robotId);
  }
}

/** This instance's safety sessions (in memory, bounded). */
export class SafetySessions {
  /** Names this instance in every session id it issues. */
  readonly instanceId = bytesToHex(randomBytes(8));
  readonly robots: RobotStatusCache;
  readonly #sessions = new Map<string, Session>();
  readonly #byRobot = new Map<string, Set<string>>();
  readonly #maxSessions: number;
  readonly #unsubscribe: () => void;

  constructor(options: { db: AppDeps['db']; maxSessions?: number }) {
    this.robots = new RobotStatusCache({ db: options.db });
    this.#maxSessions = options.maxSessions ?? MAX_SESSIONS;
    this.#unsubscribe = onRobotRevoked((robotId) => this.dropRobot(robotId));
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** Opens a session for an authenticated robot; the key leaves only wrapped to its ML-KEM key. */
  open(options: { robot: RobotView; now: number }): OpenedSession {
    const { robot, now } = options;
    this.#makeRoom({ robotId: robot.id, now });
    const sessionId = formatSessionId({ instanceId: this.instanceId, random: randomBytes(16) });
    const expiresAt = now + SESSION_TTL_MS;
    const key = randomBytes(SESSION_KEY_BYTES);
    const wrap = wrapContentKey({ contentKey: key, recipientPublicKey: robot.kemPublicKey, context: safetySessionContext({ sessionId, robotId: robot.id, expiresAt }) });
    const session: Session = { id: sessionId, robotId: robot.id, orgId: robot.orgId, fleetId: robot.fleetId, key: createSecretKey(key), expiresAt, counters: counterWindow() };
    key.fill(0);
    this.#sessions.set(sessionId, session);
    let mine = this.#byRobot.get(robot.id);
    if (!mine) this.#byRobot.set(robot.id, (mine = new Set()));
    mine.add(sessionId);
    return { sessionId, robotId: robot.id, expiresAt, counterWindow: COUNTER_WINDOW, kemCiphertext: wrap.kemCiphertext, wrappedKey: wrap.wrappedKey };
  }

  /** Ends every session of a robot (revocation) and forgets its cached status. */
  dropRobot(robotId: string): void {
    for (const id of this.#byRobot.get(robotId) ?? []) this.#sessions.delete(id);
    this.#byRobot.delete(robotId);
    this.robots.forget(robotId);
  }

  /** Stops listening for revocations (tests that build many apps). */
  close(): void {
    this.#unsubscribe();
  }

  /** Ends one session (e.g. its opening could not be audited). */
  drop(sessionId: string): void {
    const session = this.#sessions.get(sessionId);
    if (session) this.delete(session);
  }

  get(sessionId: string): Session | undefined {
    return this.#sessions.get(sessionId);
  }

  delete(session: Session): void {
    this.#sessions.delete(session.id);
    const mine = this.#byRobot.get(session.robotId);
    mine?.delete(session.id);
    if (mine?.size === 0) this.#byRobot.delete(session.robotId);
  }

  #makeRoom(options: { robotId: string; now: number }): void {
    const mine = this.#byRobot.get(options.robotId);
    // A robot's own oldest session goes first (Set iteration is insertion order).
    while (mine && mine.size >= MAX_SESSIONS_PER_ROBOT) this.delete(this.#sessions.get(mine.values().next().value!)!);
    if (this.#sessions.size < this.#maxSessions) return;
    for (const s of this.#sessions.values()) if (s.expiresAt <= options.now) this.delete(s);
    // Still full: the oldest sessions go (Map iteration is insertion order); their robots re-open.
    while (this.#sessions.size >= this.#maxSessions) this.delete(this.#sessions.values().next().value!);
  }
}

/**
 * The per-robot rate budget for session requests, counted in memory and group-written to the shared
 * fixed-window counters (server/db/rate-limits.ts) every BUDGET_FLUSH_MS.
 */
export class SessionRateBudget {
  readonly #deps: AppDeps;
  readonly #entries = new Map<string, { windowStart: number; known: number; unflushed: number; synced: boolean }>();
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> | null = null;

  constructor(options: { deps: AppDeps }) {
    this.#deps = options.deps;
  }

  /** Spends one hit of `key`'s budget; throws 429 `throttled` over `limit`. */
  async spend(options: { key: string; limit: number; what: string }): Promise<void> {
    const now = this.#deps.now();
    const windowStart = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    let entry = this.#entries.get(options.key);
    if (!entry || entry.windowStart < windowStart) this.#entries.set(options.key, (entry = { windowStart, known: 0, unflushed: 0, synced: false }));
    entry.unflushed++;
    // The first hit of a window learns the shared count (other instances, signed requests) before
    // answering; later hits are judged on the last count read plus this instance's own hits since.
    if (!entry.synced) await this.flush();
    else this.#schedule();
    if (entry.known + entry.unflushed > options.limit) {
      const retryAfterSeconds = Math.max(1, Math.ceil((entry.windowStart + MINUTE_MS - now) / 1000));
      throw httpError({ status: 429, code: 'throttled', message: `${options.what}; retry in ${retryAfterSeconds} s`, details: { retryAfterSeconds } });
    }
  }

  #schedule(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.flush();
    }, BUDGET_FLUSH_MS);
    this.#timer.unref();
  }

  /** Writes the hits counted so far and reads the shared totals back (one transaction). */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    const batch: Array<{ key: string; windowStart: number; hits: number }> = [];
    for (const [key, e] of this.#entries) {
      if (e.unflushed > 0) batch.push({ key, windowStart: e.windowStart, hits: e.unflushed });
      else if (e.windowStart + MINUTE_MS <= this.#deps.now()) this.#entries.delete(key);
    }
    if (batch.length === 0) return;
    for (const b of batch) this.#entries.get(b.key)!.unflushed -= b.hits;
    this.#flushing = (async () => {
      try {
        const counts = await incrementCounters({ db: this.#deps.db, windows: batch });
        for (const b of batch) {
          const e = this.#entries.get(b.key);
          if (e && e.windowStart === b.windowStart) {
            e.known = Math.max(e.known + b.hits, counts.get(b.key) ?? 0);
            e.synced = true;
          }
        }
      } catch (error) {
        // Not written: count the hits again so the next flush carries them.
        for (const b of batch) {
          const e = this.#entries.get(b.key);
          if (e && e.windowStart === b.windowStart) e.unflushed += b.hits;
        }
        this.#deps.logger.error('rate budget flush failed', { error });
        this.#schedule();
      } finally {
        this.#flushing = null;
      }
    })();
    await this.#flushing;
  }
}

/** Accepts `counter` (>= 1) at most once (RFC 4303 3.4.3 window); false for a replay. Mutates on success. */
export function acceptCounter(window: CounterWindow, counter: number): boolean {
  const { bits } = window;
  const w = bits.length * 32;
  if (counter > window.highest) {
    // The window slides: bits of the counters it passes over held counters now below it; clear them.
    if (counter - window.highest >= w) bits.fill(0);
    else for (let c = window.highest + 1; c <= counter; c++) bits[(c % w) >>> 5]! &= ~(1 << (c % w & 31));
    window.highest = counter;
  } else if (counter <= window.highest - w) return false;
  const slot = counter % w;
  const mask = 1 << (slot & 31);
  if ((bits[slot >>> 5]! & mask) !== 0) return false;
  bits[slot >>> 5]! |= mask;
  return true;
}

function malformedHeader(field: string, expected: string) {
  return httpError({ status: 400, code: 'malformed', message: `${field}: expected ${expected}`, details: { field } });
}

const sessionUnknown = (message: string) => httpError({ status: 401, code: 'session_unknown', message });

/**
 * Robot authentication for the safety routes: the session form when x-tg-session is present, the
 * signed form (requireAuth) otherwise. Sets the robot principal and the raw body like requireAuth.
 */
export function requireRobotSession(options: { deps: AppDeps; sessions: SafetySessions }): MiddlewareHandler<AppEnv> {
  const { deps, sessions } = options;
  const signed = requireAuth({ deps, robot: true });
  const budget = new SessionRateBudget({ deps });
  return async (c: Context<AppEnv>, next) => {
    const sessionId = c.req.header(SAFETY_SESSION_HEADERS.session);
    if (sessionId === undefined) return signed(c, next);
    const robotId = c.req.header(SAFETY_SESSION_HEADERS.robot);
    const counterText = c.req.header(SAFETY_SESSION_HEADERS.counter);
    const macText = c.req.header(SAFETY_SESSION_HEADERS.mac);
    if (!SESSION_ID_PATTERN.test(sessionId)) throw malformedHeader(SAFETY_SESSION_HEADERS.session, 'ss1.<16 hex>.<32 hex>');
    if (robotId === undefined || !/^[A-Za-z0-9._:-]{1,64}$/.test(robotId)) throw malformedHeader(SAFETY_SESSION_HEADERS.robot, 'the robot id');
    if (counterText === undefined || !COUNTER_PATTERN.test(counterText) || !Number.isSafeInteger(Number(counterText)))
      throw malformedHeader(SAFETY_SESSION_HEADERS.counter, 'a decimal integer in [1, 2^53-1] without leading zeros');
    if (macText === undefined || !MAC_PATTERN.test(macText)) throw malformedHeader(SAFETY_SESSION_HEADERS.mac, '64 lowercase hex (HMAC-SHA256)');
    const counter = Number(counterText);

    const session = sessions.get(sessionId);
    if (!session) {
      if (sessionInstance(sessionId) !== sessions.instanceId) throw sessionUnknown('this session was opened on another server instance (or before a restart); open a new one: POST /v1/safety/sessions');
      throw sessionUnknown('no such session (expired, ended or never opened); open a new one: POST /v1/safety/sessions');
    }
    // Same answer as a wrong MAC: a session id alone proves nothing.
    if (session.robotId !== robotId) throw httpError({ status: 401, code: 'bad_mac', message: 'session request MAC does not verify' });
    if (deps.now() >= session.expiresAt) {
      sessions.delete(session);
      throw httpError({ status: 401, code: 'session_expired', message: 'the safety session expired; open a new one: POST /v1/safety/sessions' });
    }

    const body = new Uint8Array(await c.req.arrayBuffer());
    const url = new URL(c.req.url);
    const input = sessionRequestMacInput({ sessionId, method: c.req.method, path: url.pathname + url.search, counter, bodySha256: createHash('sha256').update(body).digest() });
    const expected = createHmac('sha256', session.key).update(input).digest();
    if (!timingSafeEqual(expected, Buffer.from(macText, 'hex'))) throw httpError({ status: 401, code: 'bad_mac', message: 'session request MAC does not verify' });

    const now = deps.now();
    const robot = await sessions.robots.active({ robotId, now });
    if (!robot) {
      sessions.dropRobot(robotId);
      throw new AuthenticationError('unknown or revoked robot');
    }
    // Nothing awaited between this check and the mark: two copies of one request cannot both pass.
    if (sessions.get(sessionId) !== session) throw sessionUnknown('the safety session ended; open a new one: POST /v1/safety/sessions');
    if (!acceptCounter(session.counters, counter))
      throw httpError({ status: 401, code: 'replay', message: `session counter ${counter} was already used or is at least ${COUNTER_WINDOW} below the highest accepted` });
    c.set('principal', { kind: 'robot', orgId: robot.orgId, robotId: robot.id, fleetId: robot.fleetId, robot });
    c.set('rawBody', body);
    await budget.spend({ key: `robot:${robotId}`, limit: deps.rateLimits.robotPerMinute, what: 'this robot is over its request budget' });
    await next();
  };
}
