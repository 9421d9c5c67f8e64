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
// OpenAPI routes (@hono/zod-openapi): each route declares both robot authentication forms and its
// answers; the fleet query of GET /safety/heartbeats is validated by zod. The JSON bodies of the robot
// routes are only described (describedJsonBody): they keep being parsed from the authenticated raw
// bytes by core/safety/parse.ts, which names the bad field and checks a request against the cell it
// names (joint count, payload rating), something no schema fixed before the cell is read can do; and
// no zod validator re-reads and re-parses the body on this hot path.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { FormatError, NotFoundError } from '../../core/errors.ts';
import { bytesToUtf8, bytesToHex, toBase64 } from '../../core/bytes.ts';
import { sha256 } from '../../core/codec/fingerprint.ts';
import type { SafetyCell } from '../../core/safety/cell.ts';
import { MAX_WAYPOINTS, parseSafetyRequest } from '../../core/safety/request.ts';
import { arr, fail, obj, oneOf, str } from '../../core/safety/parse.ts';
import { BODY_REGIONS } from '../../core/safety/body-regions.ts';
import { ESTOP_STATES, validateCommand, type CheckName, type EstopState, type Heartbeat, type SafetyDecision } from '../../core/safety/validate.ts';
import { auditSafetyDenials, getCell, getHeartbeat, listHeartbeats, saveHeartbeat } from '../db/cells.ts';
import { getFleet } from '../db/fleets.ts';
import { appendAudit } from '../db/audit.ts';
import { requireAuth, robotOf } from '../http/auth.ts';
import { KiB, MiB, NO_BODY_LIMIT, SMALL_JSON_LIMIT, idParam, limitBody, limitBodyByLength } from '../http/body.ts';
import { SafetySessions, requireRobotSession } from '../http/robot-session.ts';
import { AUTH_ERRORS, createOpenApiRoutes, describedJsonBody, errorResponses, jsonResponse, security } from '../http/openapi-route.ts';
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
// The document's picture of the bodies and answers. The request schemas describe what
// core/safety/request.ts and the heartbeat handler accept (they are not what validates it); the answer
// schemas are what the handlers' c.json bodies are type-checked against.

const Vec3 = z.tuple([z.number(), z.number(), z.number()]).openapi({ description: 'metres in the cell frame; |component| <= 1000' });
const RegionSchema = z.enum(BODY_REGIONS);
const SafetyRequestSchema = z
  .strictObject({
    cellId: z.string().min(1).max(64).openapi({ description: 'a cell of the robot’s fleet (404 otherwise)' }),
    requestId: z.string().min(1).max(128).optional().openapi({ description: 'echoed in the decision and the audit row of a deny' }),
    trajectory: z.strictObject({
      waypoints: z
        .array(
          z.strictObject({
            t: z.number().min(0).max(86_400).openapi({ description: 'seconds from the start, strictly increasing' }),
            joints: z.array(z.number().min(-1000).max(1000)).openapi({ description: 'one per joint of the cell' }),
            links: z.array(Vec3).openapi({ description: 'base, joints..., tool tip: linkRadii.length + 1 points; rigid links keep their length' }),
            jointVelocities: z.array(z.number().min(-1000).max(1000)).optional(),
          }),
        )
        .min(1)
        .max(MAX_WAYPOINTS),
    }),
    payloadKg: z.number().min(0).optional().openapi({ description: 'default 0; at most the cell robot’s rated payload' }),
    humans: z
      .array(
        z.strictObject({
          id: z.string().min(1).max(64).optional(),
          position: Vec3,
          radius: z.number().min(0).max(2).optional(),
          velocity: Vec3.nullable().optional().openapi({ description: 'm/s, at most 10 m/s' }),
          regions: z.array(RegionSchema).min(1).max(BODY_REGIONS.length).optional(),
        }),
      )
      .max(64)
      .optional(),
    predictedContacts: z
      .array(z.strictObject({ region: RegionSchema, forceN: z.number().min(0).max(1e6), kind: z.enum(['transient', 'quasi_static']).optional() }))
      .max(256)
      .optional(),
  })
  .openapi('SafetyRequest', {
    description:
      'A command safety request (core/safety/request.ts, docs/SAFETY.md). Checked against the cell it names, so a request that cannot be physical for that cell is 400 `malformed` with details.field naming the field (e.g. `trajectory.waypoints[2].links[1]`).',
  });
const HeartbeatBodySchema = z.strictObject({
  estop: z.enum(ESTOP_STATES),
  robotTime: z.number().int().nonnegative().optional().openapi({ description: 'the robot clock, milliseconds since the epoch' }),
});
const CheckNameSchema = z.enum(['joint_limits', 'joint_speed', 'workspace', 'collision', 'power_force_limiting', 'speed_separation', 'emergency_stop'] satisfies CheckName[]);
const SafetyDecisionSchema = z
  .object({
    decision: z.enum(['approve', 'deny']),
    cellId: z.string(),
    requestId: z.string().nullable(),
    checks: z.array(
      z.object({
        name: CheckNameSchema,
        status: z.enum(['pass', 'fail', 'not_applicable']),
        detail: z.string(),
        values: z.record(z.string(), z.union([z.number(), z.string(), z.null()])).optional(),
      }),
    ),
    failed: z.array(CheckNameSchema),
    recommendation: z.object({ maxSpeedMps: z.number().nullable(), timeScale: z.number().nullable(), actions: z.array(z.string()) }),
    cellVersion: z.number().int().openapi({ description: 'the version of the cell the request was checked against' }),
  })
  .openapi('SafetyDecision');
const HeartbeatSchema = z.object({ robotId: z.string(), fleetId: z.string(), estop: z.enum(ESTOP_STATES), robotTime: z.number().nullable(), receivedAt: z.number() }).openapi('RobotHeartbeat');
const SafetySessionSchema = z
  .object({
    sessionId: z.string(),
    robotId: z.string(),
    expiresAt: z.number(),
    counterWindow: z.number().int().openapi({ description: 'counters up to this far below the highest accepted are still accepted once' }),
    kemCiphertext: z.string().openapi({ description: 'base64 ML-KEM-768 ciphertext to the robot’s enrolled key' }),
    wrappedKey: z.string().openapi({ description: 'base64 AES-256-GCM wrap of the 32-byte session key' }),
  })
  .openapi('SafetySession');

/** The error answers of the robot routes, signed or session form. */
const ROBOT_ROUTE_ERRORS = {
  400: '`malformed`: details.field names the bad field of the body or session header',
  401: 'not authenticated: `unauthenticated`, `replay`, `bad_signature` (signed form); `session_unknown`, `session_expired`, `bad_mac`, `replay` (session form)',
  403: '`forbidden`: a person on a robot route',
  413: '`oversize`: the body exceeds the route limit (Content-Length decides when present)',
  429: true,
} as const;

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


export function createSafetyRoutes(options: { deps: AppDeps }): OpenAPIHono<AppEnv> {
  const { deps } = options;
  const routes = createOpenApiRoutes();
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

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/safety/sessions',
      tags: ['safety'],
      summary: 'Open a safety session: a 10-minute HMAC key wrapped to the robot’s ML-KEM-768 key',
      description: 'Who may call it: robot (signed form only). Takes no body, or {}.',
      security: security({ robot: true }),
      middleware: [limitBody({ maxSize: NO_BODY_LIMIT }), requireAuth({ deps, robot: true })] as const,
      responses: {
        201: jsonResponse('the session; only the robot can unwrap its key', SafetySessionSchema),
        ...errorResponses({ ...AUTH_ERRORS, 400: '`malformed`: a body other than {}', 403: '`forbidden`: a person on a robot route', 413: true }),
      },
    }),
    async (c) => {
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
    },
  );

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/robots/me/heartbeat',
      tags: ['safety'],
      summary: 'Robot e-stop heartbeat',
      description: 'Who may call it: robot (signed or safety session form).',
      security: security({ robot: true, robotSession: true }),
      middleware: [limitBodyByLength({ maxSize: SMALL_JSON_LIMIT }), robotAuth] as const,
      request: { body: describedJsonBody({ routes, name: 'RobotHeartbeatReport', schema: HeartbeatBodySchema }) },
      responses: { 200: jsonResponse('recorded', z.object({ receivedAt: z.number(), estop: z.enum(ESTOP_STATES) })), ...errorResponses(ROBOT_ROUTE_ERRORS) },
    }),
    async (c) => {
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
      return c.json({ receivedAt: now, estop }, 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/safety/validate',
      tags: ['safety'],
      summary: 'Validate one motion command',
      description: 'Who may call it: robot (signed or safety session form). A deny is audited (safety.deny).',
      security: security({ robot: true, robotSession: true }),
      middleware: [limitBodyByLength({ maxSize: VALIDATE_BODY_LIMIT }), robotAuth] as const,
      request: { body: describedJsonBody({ routes, name: 'SafetyRequest', schema: SafetyRequestSchema }) },
      responses: { 200: jsonResponse('approve or deny, with every check', SafetyDecisionSchema), ...errorResponses({ ...ROBOT_ROUTE_ERRORS, 404: '`not_found`: the cell is not configured for the robot’s fleet (details.field `cellId`)' }) },
    }),
    async (c) => {
      const robot = robotOf(c);
      const body = parseJsonBody(c.get('rawBody'));
      const heartbeat = await lastHeartbeat(robot.orgId, robot.robotId);
      const { decision, denial } = await decide(robot.orgId, robot.fleetId, robot.robotId, body, undefined, heartbeat);
      if (denial) await auditSafetyDenials({ db: deps.db, orgId: robot.orgId, robotId: robot.robotId, denials: [denial], now: deps.now() });
      return c.json(decision, 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/safety/validate/batch',
      tags: ['safety'],
      summary: `Validate up to ${MAX_BATCH} motion commands`,
      description: 'Who may call it: robot (signed or safety session form). A malformed item refuses the whole batch before anything is recorded.',
      security: security({ robot: true, robotSession: true }),
      middleware: [limitBodyByLength({ maxSize: BATCH_BODY_LIMIT }), robotAuth] as const,
      request: {
        body: describedJsonBody({ routes, name: 'SafetyRequestBatch', schema: z.strictObject({ requests: z.array(SafetyRequestSchema).min(1).max(MAX_BATCH) }) }),
      },
      responses: {
        200: jsonResponse('one decision per request, in order', z.object({ decisions: z.array(SafetyDecisionSchema), approved: z.number().int(), denied: z.number().int() })),
        ...errorResponses({ ...ROBOT_ROUTE_ERRORS, 404: '`not_found`: a cell is not configured for the robot’s fleet (details.field `requests[i].cellId`)' }),
      },
    }),
    async (c) => {
      const robot = robotOf(c);
      const body = obj('', parseJsonBody(c.get('rawBody')), ['requests']);
      const requests = arr('requests', body.requests, 1, MAX_BATCH);
      const heartbeat = await lastHeartbeat(robot.orgId, robot.robotId);
      const decisions: Array<SafetyDecision & { cellVersion: number }> = [];
      const denials: Array<{ target: string; details: Record<string, unknown> }> = [];
      // Validate every item before anything is recorded: a malformed item refuses the whole batch.
      const outcomes = [];
      for (let i = 0; i < requests.length; i++) outcomes.push(await decide(robot.orgId, robot.fleetId, robot.robotId, requests[i], `requests[${i}]`, heartbeat));
      for (const o of outcomes) {
        decisions.push(o.decision);
        if (o.denial) denials.push(o.denial);
      }
      await auditSafetyDenials({ db: deps.db, orgId: robot.orgId, robotId: robot.robotId, denials, now: deps.now() });
      return c.json({ decisions, approved: decisions.filter((d) => d.decision === 'approve').length, denied: denials.length }, 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/safety/heartbeats',
      tags: ['safety'],
      summary: 'Last heartbeats of a fleet',
      description: 'Who may call it: any signed-in person of the organization.',
      security: security({ person: true }),
      middleware: [requireAuth({ deps, person: true })] as const,
      request: { query: z.object({ fleet: idParam }) },
      responses: { 200: jsonResponse('the last persisted heartbeat of each robot of the fleet (fresher from memory when this process has one)', z.array(HeartbeatSchema)), ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'fleet not found' }) },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const fleetId = c.req.valid('query').fleet;
      if (!(await getFleet({ db: deps.db, orgId, fleetId }))) throw new NotFoundError('fleet not found');
      const rows = await listHeartbeats({ db: deps.db, orgId, fleetId });
      // The in-memory copy is fresher than the throttled row.
      return c.json(rows.map((r) => ({ ...r, ...(heartbeats.has(r.robotId) ? { receivedAt: heartbeats.get(r.robotId)!.receivedAt, estop: heartbeats.get(r.robotId)!.estop } : {}) })), 200);
    },
  );

  return routes;
}
