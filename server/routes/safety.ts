// Command safety validation, robot safety sessions and heartbeats:
//   POST /safety/sessions           robot (ML-DSA signed): opens a safety session; the session key comes
//                                   back wrapped to the robot's ML-KEM-768 key (server/http/robot-session.ts)
//   POST /robots/me/heartbeat       robot: e-stop state; kept in memory for validation, persisted on a
//                                   state change (audited as robot.estop) and at most every 5 s otherwise
//   POST /safety/validate           robot: one request -> approve/deny with every check (core/safety/validate.ts)
//   POST /safety/validate/batch     robot: up to 64 requests in one call
//   GET  /safety/heartbeats?fleet=  people: the fleet's last persisted heartbeats
// The three robot routes accept either a signed request (server/http/auth.ts) or a session request
// (x-tg-session, x-tg-counter, x-tg-mac: HMAC-SHA256, core/records/safety-session.ts); both end in the
// same robot principal, so the checks, audit and metrics after authentication are identical.
// Every deny appends an audit row (safety.deny); every decision is counted through `onSafetyDecision`
// (the hook metrics subscribe to). A malformed or physically impossible request is a 400 `malformed`
// whose `details.field` names the field (core/safety/parse.ts).
// Per request, after authentication: the cell comes from a cache (CELL_CACHE_MS, dropped on a change in
// this process), the heartbeat from memory (a database read only for a robot whose heartbeat this
// process has not seen; a read that can only deny is remembered for HEARTBEAT_MISS_MS), and the body is
// parsed once.
import { Hono, type MiddlewareHandler } from 'hono';
import { FormatError, NotFoundError, OversizeError } from '../../core/errors.ts';
import { bytesToUtf8, bytesToHex, toBase64 } from '../../core/bytes.ts';
import { sha256 } from '../../core/codec/fingerprint.ts';
import type { SafetyCell } from '../../core/safety/cell.ts';
import { parseSafetyRequest } from '../../core/safety/request.ts';
import { arr, fail, obj, oneOf, str } from '../../core/safety/parse.ts';
import { ESTOP_STATES, validateCommand, type CheckName, type EstopState, type Heartbeat, type SafetyDecision } from '../../core/safety/validate.ts';
import { auditSafetyDenials, getCell, getHeartbeat, listHeartbeats, saveHeartbeat } from '../db/cells.ts';
import { getFleet } from '../db/fleets.ts';
import { appendAudit } from '../db/audit.ts';
import { requireAuth, robotOf } from '../http/auth.ts';
import { KiB, MiB, NO_BODY_LIMIT, SMALL_JSON_LIMIT, idParam, limitBody } from '../http/body.ts';
import { SafetySessions, requireRobotSession } from '../http/robot-session.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';
import { cellKey, onCellChange } from './cells.ts';

export const VALIDATE_BODY_LIMIT = 512 * KiB;
export const BATCH_BODY_LIMIT = 4 * MiB;
export const MAX_BATCH = 64;
/** Cached cells are re-read after this long even without a change seen by this process. */
const CELL_CACHE_MS = 2000;
/** An unchanged e-stop state is persisted at most this often per robot. */
const HEARTBEAT_PERSIST_MS = 5000;
/**
 * A heartbeat read from the database that can only deny (none yet, or the e-stop not armed) is reused
 * this long; a read that could approve is never cached, so an e-stop engaged through another instance
 * is seen on the next request.
 */
const HEARTBEAT_MISS_MS = 1000;

// ---------------------------------------------------------------------------------------------------------
// The counter hook: metrics (server/metrics/) subscribe; nothing here depends on them.

export interface SafetyDecisionEvent {
  orgId: string;
  fleetId: string;
  robotId: string;
  cellId: string;
  decision: 'approve' | 'deny';
  failed: CheckName[];
  durationMs: number;
}

const decisionListeners = new Set<(event: SafetyDecisionEvent) => void>();
/** Totals since the process started, by decision. */
export const safetyDecisionCounts = { approve: 0, deny: 0 };

/** Subscribes to every safety decision (approvals and denials); returns the unsubscribe function. */
export function onSafetyDecision(listener: (event: SafetyDecisionEvent) => void): () => void {
  decisionListeners.add(listener);
  return () => decisionListeners.delete(listener);
}

function emit(event: SafetyDecisionEvent): void {
  safetyDecisionCounts[event.decision]++;
  for (const l of decisionListeners) {
    try {
      l(event);
    } catch {
      /* a listener's failure never changes a decision */
    }
  }
}

// ---------------------------------------------------------------------------------------------------------

function parseJsonBody(bytes: Uint8Array | undefined): unknown {
  try {
    return JSON.parse(bytesToUtf8(bytes ?? new Uint8Array(0)));
  } catch (cause) {
    throw new FormatError('request body must be JSON', undefined, cause);
  }
}

/** POST /safety/sessions takes no body, or an empty JSON object. */
function expectEmptyBody(bytes: Uint8Array | undefined): void {
  const text = bytes && bytes.length > 0 ? bytesToUtf8(bytes).trim() : '';
  if (text === '') return;
  const body = parseJsonBody(bytes);
  if (body === null || typeof body !== 'object' || Array.isArray(body) || Object.keys(body).length > 0)
    throw new FormatError('POST /v1/safety/sessions takes no body (or {})', { field: Object.keys(body ?? {})[0] ?? 'body' });
}

/**
 * The body limit of the validation routes, without the cost of hono's bodyLimit on the Node adapter:
 * that one reads `request.body`, which makes @hono/node-server build a full web Request and stream
 * around the socket (~15% of a validation's CPU here). With a Content-Length (which Node's HTTP parser
 * holds the body to), the length alone decides, and the body is later read straight from the socket;
 * a chunked body goes through the streaming limit (server/http/body.ts). Same 413 `oversize`.
 */
function limitBodyByLength(options: { maxSize: number }): MiddlewareHandler {
  const { maxSize } = options;
  const streaming = limitBody({ maxSize });
  return async (c, next) => {
    const length = c.req.header('content-length');
    if (length === undefined || c.req.header('transfer-encoding') !== undefined) return streaming(c, next);
    if (Number(length) > maxSize) throw new OversizeError(`request body exceeds the limit of ${maxSize} bytes for this route`, { limit: maxSize });
    return next();
  };
}

export function createSafetyRoutes(options: { deps: AppDeps }): Hono<AppEnv> {
  const { deps } = options;
  const routes = new Hono<AppEnv>();
  const cellCache = new Map<string, { cell: SafetyCell | null; version: number; at: number }>();
  const heartbeats = new Map<string, Heartbeat & { persistedAt: number }>();
  const heartbeatMisses = new Map<string, { heartbeat: Heartbeat | null; at: number }>();
  const sessions = new SafetySessions({ db: deps.db });
  const robotAuth = requireRobotSession({ deps, sessions });
  onCellChange((key) => cellCache.delete(key));

  async function loadCell(orgId: string, fleetId: string, cellId: string): Promise<{ cell: SafetyCell; version: number }> {
    const key = cellKey(orgId, fleetId, cellId);
    const now = deps.now();
    let hit = cellCache.get(key);
    if (!hit || now - hit.at > CELL_CACHE_MS || now < hit.at) {
      const view = await getCell({ db: deps.db, orgId, fleetId, cellId });
      hit = { cell: view?.cell ?? null, version: view?.version ?? 0, at: now };
      if (cellCache.size > 10_000) cellCache.clear();
      cellCache.set(key, hit);
    }
    if (!hit.cell) throw new NotFoundError(`cell ${cellId} is not configured for this robot's fleet`, { field: 'cellId' });
    return { cell: hit.cell, version: hit.version };
  }

  function lastHeartbeat(orgId: string, robotId: string): Heartbeat | null | Promise<Heartbeat | null> {
    const mem = heartbeats.get(robotId);
    if (mem) return mem;
    const now = deps.now();
    const miss = heartbeatMisses.get(robotId);
    if (miss && now - miss.at < HEARTBEAT_MISS_MS && now >= miss.at) return miss.heartbeat;
    return getHeartbeat({ db: deps.db, orgId, robotId }).then((row) => {
      const heartbeat: Heartbeat | null = row ? { receivedAt: row.receivedAt, estop: row.estop } : null;
      if (heartbeat === null || heartbeat.estop !== 'armed') {
        if (heartbeatMisses.size >= 10_000) heartbeatMisses.clear();
        heartbeatMisses.set(robotId, { heartbeat, at: now });
      } else heartbeatMisses.delete(robotId);
      return heartbeat;
    });
  }

  /** Validates one request body; returns the decision and, for a deny, its audit row. */
  async function decide(orgId: string, fleetId: string, robotId: string, body: unknown, field: string | undefined, heartbeat: Heartbeat | null) {
    const started = performance.now();
    const cellId = str(field ? `${field}.cellId` : 'cellId', (body as { cellId?: unknown } | null)?.cellId, 64);
    const { cell, version } = await loadCell(orgId, fleetId, cellId);
    const request = parseSafetyRequest({ value: body, cell, field });
    const decision: SafetyDecision & { cellVersion: number } = { ...validateCommand({ cell, request, heartbeat, now: deps.now() }), cellVersion: version };
    emit({ orgId, fleetId, robotId, cellId, decision: decision.decision, failed: decision.failed, durationMs: performance.now() - started });
    const denial =
      decision.decision === 'deny'
        ? {
            target: `${fleetId}/${cellId}`,
            details: {
              cellVersion: version,
              requestId: request.requestId,
              failed: decision.failed,
              checks: decision.checks.filter((ch) => ch.status === 'fail').map((ch) => ({ name: ch.name, detail: ch.detail })),
              requestSha256: bytesToHex(sha256(new TextEncoder().encode(JSON.stringify(body)))),
            },
          }
        : null;
    return { decision, denial };
  }

  routes.post('/safety/sessions', limitBody({ maxSize: NO_BODY_LIMIT }), requireAuth({ deps, robot: true }), async (c) => {
    const robot = robotOf(c);
    expectEmptyBody(c.get('rawBody'));
    const now = deps.now();
    const opened = sessions.open({ robot: robot.robot, now });
    try {
      // The session is a credential: its issue is audited (never its key); it is usable once this commits.
      await deps.db.transaction((tx) =>
        appendAudit({ db: tx, orgId: robot.orgId, actor: { type: 'robot', id: robot.robotId }, action: 'robot.safety_session.open', target: robot.robotId, details: { sessionId: opened.sessionId, expiresAt: opened.expiresAt, instanceId: sessions.instanceId }, now }),
      );
    } catch (error) {
      sessions.drop(opened.sessionId);
      throw error;
    }
    return c.json(
      { sessionId: opened.sessionId, robotId: opened.robotId, expiresAt: opened.expiresAt, counterWindow: opened.counterWindow, kemCiphertext: toBase64(opened.kemCiphertext), wrappedKey: toBase64(opened.wrappedKey) },
      201,
    );
  });

  routes.post('/robots/me/heartbeat', limitBodyByLength({ maxSize: SMALL_JSON_LIMIT }), robotAuth, async (c) => {
    const robot = robotOf(c);
    const body = obj('', parseJsonBody(c.get('rawBody')), ['estop', 'robotTime']);
    const estop = oneOf('estop', body.estop, ESTOP_STATES) as EstopState;
    let robotTime: number | null = null;
    if (body.robotTime !== undefined) {
      if (typeof body.robotTime !== 'number' || !Number.isSafeInteger(body.robotTime) || body.robotTime < 0) fail('robotTime', 'expected milliseconds since the epoch');
      robotTime = body.robotTime as number;
    }
    const now = deps.now();
    const previous = heartbeats.get(robot.robotId) ?? null;
    const previousState = previous?.estop ?? (await getHeartbeat({ db: deps.db, orgId: robot.orgId, robotId: robot.robotId }))?.estop ?? null;
    const persist = !previous || previousState !== estop || now - previous.persistedAt >= HEARTBEAT_PERSIST_MS;
    if (persist) await saveHeartbeat({ db: deps.db, orgId: robot.orgId, heartbeat: { robotId: robot.robotId, fleetId: robot.fleetId, estop, robotTime, receivedAt: now }, previous: previousState });
    heartbeats.set(robot.robotId, { receivedAt: now, estop, persistedAt: persist ? now : previous!.persistedAt });
    heartbeatMisses.delete(robot.robotId);
    return c.json({ receivedAt: now, estop });
  });

  routes.post('/safety/validate', limitBodyByLength({ maxSize: VALIDATE_BODY_LIMIT }), robotAuth, async (c) => {
    const robot = robotOf(c);
    const body = parseJsonBody(c.get('rawBody'));
    const heartbeat = await lastHeartbeat(robot.orgId, robot.robotId);
    const { decision, denial } = await decide(robot.orgId, robot.fleetId, robot.robotId, body, undefined, heartbeat);
    if (denial) await auditSafetyDenials({ db: deps.db, orgId: robot.orgId, robotId: robot.robotId, denials: [denial], now: deps.now() });
    return c.json(decision);
  });

  routes.post('/safety/validate/batch', limitBodyByLength({ maxSize: BATCH_BODY_LIMIT }), robotAuth, async (c) => {
    const robot = robotOf(c);
    const body = obj('', parseJsonBody(c.get('rawBody')), ['requests']);
    const requests = arr('requests', body.requests, 1, MAX_BATCH);
    const heartbeat = await lastHeartbeat(robot.orgId, robot.robotId);
    const decisions: SafetyDecision[] = [];
    const denials: Array<{ target: string; details: Record<string, unknown> }> = [];
    // Validate every item before anything is recorded: a malformed item refuses the whole batch.
    const outcomes = [];
    for (let i = 0; i < requests.length; i++) outcomes.push(await decide(robot.orgId, robot.fleetId, robot.robotId, requests[i], `requests[${i}]`, heartbeat));
    for (const o of outcomes) {
      decisions.push(o.decision);
      if (o.denial) denials.push(o.denial);
    }
    await auditSafetyDenials({ db: deps.db, orgId: robot.orgId, robotId: robot.robotId, denials, now: deps.now() });
    return c.json({ decisions, approved: decisions.filter((d) => d.decision === 'approve').length, denied: denials.length });
  });

  routes.get('/safety/heartbeats', requireAuth({ deps, person: true }), async (c) => {
    const orgId = c.get('principal').orgId;
    const fleetId = idParam.parse(c.req.query('fleet'));
    if (!(await getFleet({ db: deps.db, orgId, fleetId }))) throw new NotFoundError('fleet not found');
    const rows = await listHeartbeats({ db: deps.db, orgId, fleetId });
    // The in-memory copy is fresher than the throttled row.
    return c.json(rows.map((r) => ({ ...r, ...(heartbeats.has(r.robotId) ? { receivedAt: heartbeats.get(r.robotId)!.receivedAt, estop: heartbeats.get(r.robotId)!.estop } : {}) })));
  });

  return routes;
}
