// Command safety validation and robot heartbeats:
//   POST /robots/me/heartbeat       robot: e-stop state; kept in memory for validation, persisted on a
//                                   state change (audited as robot.estop) and at most every 5 s otherwise
//   POST /safety/validate           robot: one request -> approve/deny with every check (core/safety/validate.ts)
//   POST /safety/validate/batch     robot: up to 64 requests in one signed call
//   GET  /safety/heartbeats?fleet=  people: the fleet's last persisted heartbeats
// Every deny appends an audit row (safety.deny); every decision is counted through `onSafetyDecision`
// (the hook metrics subscribe to). A malformed or physically impossible request is a 400 `malformed`
// whose `details.field` names the field (core/safety/parse.ts).
import { Hono } from 'hono';
import { FormatError, NotFoundError } from '../../core/errors.ts';
import { bytesToUtf8 } from '../../core/bytes.ts';
import { sha256 } from '../../core/codec/fingerprint.ts';
import { bytesToHex } from '../../core/bytes.ts';
import type { SafetyCell } from '../../core/safety/cell.ts';
import { parseSafetyRequest } from '../../core/safety/request.ts';
import { arr, fail, obj, oneOf, str } from '../../core/safety/parse.ts';
import { ESTOP_STATES, validateCommand, type CheckName, type EstopState, type Heartbeat, type SafetyDecision } from '../../core/safety/validate.ts';
import { auditSafetyDenials, getCell, getHeartbeat, listHeartbeats, saveHeartbeat } from '../db/cells.ts';
import { getFleet } from '../db/fleets.ts';
import { requireAuth, robotOf } from '../http/auth.ts';
import { KiB, MiB, SMALL_JSON_LIMIT, idParam, limitBody } from '../http/body.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';
import { cellKey, onCellChange } from './cells.ts';

export const VALIDATE_BODY_LIMIT = 512 * KiB;
export const BATCH_BODY_LIMIT = 4 * MiB;
export const MAX_BATCH = 64;
/** Cached cells are re-read after this long even without a change seen by this process. */
const CELL_CACHE_MS = 2000;
/** An unchanged e-stop state is persisted at most this often per robot. */
const HEARTBEAT_PERSIST_MS = 5000;

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

export function createSafetyRoutes(options: { deps: AppDeps }): Hono<AppEnv> {
  const { deps } = options;
  const routes = new Hono<AppEnv>();
  const cellCache = new Map<string, { cell: SafetyCell | null; version: number; at: number }>();
  const heartbeats = new Map<string, Heartbeat & { persistedAt: number }>();
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

  async function lastHeartbeat(orgId: string, robotId: string): Promise<Heartbeat | null> {
    const mem = heartbeats.get(robotId);
    if (mem) return mem;
    const row = await getHeartbeat({ db: deps.db, orgId, robotId });
    return row ? { receivedAt: row.receivedAt, estop: row.estop } : null;
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

  routes.post('/robots/me/heartbeat', limitBody({ maxSize: SMALL_JSON_LIMIT }), requireAuth({ deps, robot: true }), async (c) => {
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
    return c.json({ receivedAt: now, estop });
  });

  routes.post('/safety/validate', limitBody({ maxSize: VALIDATE_BODY_LIMIT }), requireAuth({ deps, robot: true }), async (c) => {
    const robot = robotOf(c);
    const body = parseJsonBody(c.get('rawBody'));
    const heartbeat = await lastHeartbeat(robot.orgId, robot.robotId);
    const { decision, denial } = await decide(robot.orgId, robot.fleetId, robot.robotId, body, undefined, heartbeat);
    if (denial) await auditSafetyDenials({ db: deps.db, orgId: robot.orgId, robotId: robot.robotId, denials: [denial], now: deps.now() });
    return c.json(decision);
  });

  routes.post('/safety/validate/batch', limitBody({ maxSize: BATCH_BODY_LIMIT }), requireAuth({ deps, robot: true }), async (c) => {
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
