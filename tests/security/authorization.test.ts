// The exhaustive authorization test, generated from the app's route table (Hono's app.routes): every
// route x every caller — each role of organization A (admin, officer, operator, auditor), a robot of
// the fleet, a robot of another fleet, an anonymous caller, and a user of organization B holding valid
// ids of A — gets exactly the status ACCESS declares, against a private copy of one fixture. A route
// of the app missing from ACCESS fails the test. Beyond the status: a refused request changes no data
// of A, and no response to B carries any identifier or name of A, nor changes any of A's rows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, robotRequest, type TestServer } from '../../server/testing/harness.ts';
import { ROBOT_HEADERS, signRobotRequest } from '../../core/records/request-signature.ts';
import { toBase64 } from '../../core/bytes.ts';
import { CELL, buildFixture, copyOfFixture, routeKeys, snapshotOrg, type Fixture } from './fixture.ts';

type Caller = 'admin' | 'officer' | 'operator' | 'auditor' | 'robot' | 'otherRobot' | 'anonymous' | 'foreign';
const CALLERS: Caller[] = ['admin', 'officer', 'operator', 'auditor', 'robot', 'otherRobot', 'anonymous', 'foreign'];
type Role = 'admin' | 'officer' | 'operator' | 'auditor';
type Expect = Record<Caller, number>;

interface Access {
  /** The concrete request path, with ids of organization A. */
  path: (f: Fixture) => string;
  /** JSON body for unsafe methods (default {}); a validation failure (400) still proves the caller got past authorization. */
  body?: (f: Fixture) => unknown;
  expect: Expect;
}

const ALL: Role[] = ['admin', 'officer', 'operator', 'auditor'];

/** A person-only route: `roles` get `ok`, other roles 403, robots 403, anonymous 401, B gets `foreign`. */
function persons(ok: number, foreign: number, roles: Role[] = ALL): Expect {
  const r = (role: Role) => (roles.includes(role) ? ok : 403);
  return { admin: r('admin'), officer: r('officer'), operator: r('operator'), auditor: r('auditor'), robot: 403, otherRobot: 403, anonymous: 401, foreign };
}
/** A robot-only route: people 403 (B's user too), anonymous 401. */
function robots(robot: number, otherRobot: number): Expect {
  return { admin: 403, officer: 403, operator: 403, auditor: 403, robot, otherRobot, anonymous: 401, foreign: 403 };
}
/** A route for people and robots. */
function both(ok: number, robot: number, otherRobot: number, foreign: number, roles: Role[] = ALL): Expect {
  return { ...persons(ok, foreign, roles), robot, otherRobot };
}
function everyone(status: number): Expect {
  return Object.fromEntries(CALLERS.map((c) => [c, status])) as Expect;
}
/** Readers of releases, registry and aggregates (people who review; operators run robots, they do not review). */
const READERS: Role[] = ['admin', 'officer', 'auditor'];
/** The audit log is read by admins and auditors (officers act; their actions are what is audited). */
const AUDIT_READERS: Role[] = ['admin', 'auditor'];
const at = (p: string) => () => p;

/** Expected access, one entry per route of the app ("METHOD template"). */
const ACCESS: Record<string, Access> = {
  'GET /healthz': { path: at('/healthz'), expect: everyone(200) },
  'GET /readyz': { path: at('/readyz'), expect: everyone(200) },
  'GET /metrics': { path: at('/metrics'), expect: everyone(200) },
  'GET /openapi.json': { path: at('/openapi.json'), expect: everyone(200) },
  'GET /docs': { path: at('/docs'), expect: everyone(200) },
  'GET /docs/render.js': { path: at('/docs/render.js'), expect: everyone(200) },
  'GET /docs/style.css': { path: at('/docs/style.css'), expect: everyone(200) },
  'GET /*': { path: at('/'), expect: everyone(200) },
  'HEAD /*': { path: at('/manifest.webmanifest'), expect: everyone(200) },
  // people
  'POST /v1/bootstrap': { path: at('/v1/bootstrap'), body: () => ({ org: 'Evil', user: 'eve', password: 'long enough password' }), expect: everyone(409) },
  'POST /v1/sessions': { path: at('/v1/sessions'), body: () => ({ user: 'nobody', password: 'wrong password' }), expect: everyone(401) },
  'POST /v1/sessions/reauth': { path: at('/v1/sessions/reauth'), expect: persons(400, 400) },
  'DELETE /v1/sessions/current': { path: at('/v1/sessions/current'), expect: persons(204, 204) },
  'GET /v1/me': { path: at('/v1/me'), expect: persons(200, 200) },
  'POST /v1/users': { path: at('/v1/users'), expect: persons(400, 400, ['admin']) },
  'GET /v1/users': { path: at('/v1/users'), expect: persons(200, 200, ['admin']) },
  'PATCH /v1/users/:id': { path: (f) => `/v1/users/${f.userIds.operator}`, body: () => ({ roles: ['auditor'] }), expect: persons(200, 404, ['admin']) },
  'POST /v1/users/me/password': { path: at('/v1/users/me/password'), expect: persons(400, 400) },
  // fleets, keys, robots
  'POST /v1/fleets': { path: at('/v1/fleets'), expect: persons(400, 400, ['admin', 'officer']) },
  'GET /v1/fleets': { path: at('/v1/fleets'), expect: persons(200, 200) },
  'GET /v1/fleets/:id': { path: (f) => `/v1/fleets/${f.fleet1}`, expect: both(200, 200, 404, 404) },
  'POST /v1/officer-keys': { path: at('/v1/officer-keys'), expect: persons(400, 400, ['officer']) },
  'GET /v1/officer-keys': { path: at('/v1/officer-keys'), expect: both(200, 200, 200, 200) },
  'POST /v1/fleets/:id/enrollment-tokens': { path: (f) => `/v1/fleets/${f.fleet1}/enrollment-tokens`, expect: persons(201, 404, ['admin', 'officer']) },
  'POST /v1/enroll': { path: at('/v1/enroll'), expect: everyone(400) },
  'GET /v1/robots/me': { path: at('/v1/robots/me'), expect: robots(200, 200) },
  'GET /v1/robots': { path: at('/v1/robots'), expect: persons(200, 200) },
  'GET /v1/robots/:id': { path: (f) => `/v1/robots/${f.robot1.id}`, expect: persons(200, 404) },
  'DELETE /v1/robots/:id': { path: (f) => `/v1/robots/${f.robot1.id}`, expect: persons(204, 404, ['admin', 'officer']) },
  // HE keys
  'POST /v1/he-keys': { path: at('/v1/he-keys'), expect: persons(400, 400, ['officer']) },
  'GET /v1/he-keys': { path: at('/v1/he-keys'), expect: persons(200, 200) },
  'GET /v1/he-keys/revocations': { path: at('/v1/he-keys/revocations'), expect: both(200, 200, 200, 200) },
  'GET /v1/he-keys/current': { path: at('/v1/he-keys/current'), expect: both(200, 200, 200, 404) },
  'GET /v1/he-keys/:version': { path: at('/v1/he-keys/1'), expect: both(200, 200, 200, 404) },
  'POST /v1/he-keys/:version/revoke': { path: at('/v1/he-keys/1/revoke'), expect: persons(400, 400, ['officer']) },
  // rounds and contributions
  'POST /v1/rounds': { path: at('/v1/rounds'), expect: persons(400, 400, ['officer']) },
  'GET /v1/rounds': { path: at('/v1/rounds'), expect: both(200, 200, 200, 200) },
  'GET /v1/rounds/:id': { path: (f) => `/v1/rounds/${f.openRound}`, expect: both(200, 200, 404, 404) },
  'POST /v1/rounds/:id/close': { path: (f) => `/v1/rounds/${f.openRound}/close`, expect: persons(409, 404, ['officer']) },
  'GET /v1/rounds/:id/aggregate': { path: (f) => `/v1/rounds/${f.finalRound}/aggregate`, expect: persons(200, 404, READERS) },
  'GET /v1/rounds/:id/aggregate/ciphertext': { path: (f) => `/v1/rounds/${f.finalRound}/aggregate/ciphertext`, expect: persons(200, 404, READERS) },
  'GET /v1/rounds/:id/contributions': { path: (f) => `/v1/rounds/${f.openRound}/contributions`, expect: persons(200, 404, READERS) },
  // The package is parsed before the fleet check; a well-formed package from another fleet's robot is 403 `wrong_fleet` (server/routes/contributions.test.ts).
  'POST /v1/rounds/:id/contributions': { path: (f) => `/v1/rounds/${f.openRound}/contributions`, expect: robots(400, 400) },
  'GET /v1/rounds/:id/contributions/:cid/package': { path: (f) => `/v1/rounds/${f.openRound}/contributions/${f.contribution}/package`, expect: persons(200, 404, ['officer']) },
  // Body validation precedes the round lookup here: B's malformed body is 400 before any id is resolved (nothing of A is read or shown).
  'POST /v1/rounds/:id/rejection': { path: (f) => `/v1/rounds/${f.finalRound}/rejection`, expect: persons(400, 400, ['officer']) },
  'GET /v1/rounds/:id/decision': { path: (f) => `/v1/rounds/${f.finalRound}/decision`, expect: persons(200, 404) },
  // releases
  'POST /v1/releases': { path: at('/v1/releases'), expect: persons(400, 400, ['officer']) },
  'GET /v1/releases': { path: (f) => `/v1/releases?fleet=${f.fleet1}`, expect: persons(200, 404) },
  'GET /v1/releases/latest': { path: at('/v1/releases/latest'), expect: robots(200, 404) },
  'GET /v1/releases/:id': { path: (f) => `/v1/releases/${f.release}`, expect: both(200, 200, 404, 404) },
  'POST /v1/releases/:id/report': { path: (f) => `/v1/releases/${f.release}/report`, expect: robots(400, 404) },
  'GET /v1/releases/:id/status': { path: (f) => `/v1/releases/${f.release}/status`, expect: persons(200, 404) },
  // audit
  'GET /v1/audit': { path: at('/v1/audit'), expect: persons(200, 200, AUDIT_READERS) },
  'GET /v1/audit/key': { path: at('/v1/audit/key'), expect: persons(200, 200, AUDIT_READERS) },
  'GET /v1/audit/checkpoint': { path: at('/v1/audit/checkpoint'), expect: persons(200, 200, AUDIT_READERS) },
  'GET /v1/audit/leaves': { path: at('/v1/audit/leaves?start=0&end=1'), expect: persons(200, 200, AUDIT_READERS) },
  'GET /v1/audit/proof/inclusion': { path: at('/v1/audit/proof/inclusion?index=0&size=1'), expect: persons(200, 200, AUDIT_READERS) },
  'GET /v1/audit/proof/consistency': { path: at('/v1/audit/proof/consistency?from=1&to=1'), expect: persons(200, 200, AUDIT_READERS) },
  'POST /v1/audit/events': { path: at('/v1/audit/events'), expect: persons(400, 400, ['officer']) },
  'GET /v1/dp/ledger': { path: (f) => `/v1/dp/ledger?fleet=${f.fleet1}`, expect: persons(200, 404) },
  // safety
  'PUT /v1/fleets/:id/cells/:cellId': { path: (f) => `/v1/fleets/${f.fleet1}/cells/line-1`, body: () => CELL, expect: persons(200, 404, ['admin', 'officer']) },
  'GET /v1/fleets/:id/cells': { path: (f) => `/v1/fleets/${f.fleet1}/cells`, expect: both(200, 200, 404, 404) },
  'GET /v1/fleets/:id/cells/:cellId': { path: (f) => `/v1/fleets/${f.fleet1}/cells/line-1`, expect: both(200, 200, 404, 404) },
  'DELETE /v1/fleets/:id/cells/:cellId': { path: (f) => `/v1/fleets/${f.fleet1}/cells/line-1`, expect: persons(204, 404, ['admin', 'officer']) },
  'POST /v1/robots/me/heartbeat': { path: at('/v1/robots/me/heartbeat'), expect: robots(400, 400) },
  'POST /v1/safety/sessions': { path: at('/v1/safety/sessions'), expect: robots(201, 201) },
  'POST /v1/safety/validate': { path: at('/v1/safety/validate'), expect: robots(400, 400) },
  'POST /v1/safety/validate/batch': { path: at('/v1/safety/validate/batch'), expect: robots(400, 400) },
  'GET /v1/safety/heartbeats': { path: (f) => `/v1/safety/heartbeats?fleet=${f.fleet1}`, expect: persons(200, 404) },
  // registry and canary (OpenAPIHono route files)
  'GET /v1/registry/models': { path: at('/v1/registry/models'), expect: persons(200, 200, READERS) },
  'POST /v1/registry/models': { path: at('/v1/registry/models'), expect: persons(400, 400, ['officer']) },
  'GET /v1/registry/lineage': { path: (f) => `/v1/registry/lineage?fleet=${f.fleet1}`, expect: persons(200, 404, READERS) },
  'GET /v1/safety/decisions': { path: (f) => `/v1/safety/decisions?fleet=${f.fleet1}`, expect: persons(200, 404, READERS) },
  'POST /v1/releases/:id/telemetry': { path: (f) => `/v1/releases/${f.release}/telemetry`, expect: robots(400, 400) },
  'GET /v1/releases/:id/canary': { path: (f) => `/v1/releases/${f.release}/canary`, expect: persons(200, 404, READERS) },
  'GET /v1/fleets/:id/rollout-policy': { path: (f) => `/v1/fleets/${f.fleet1}/rollout-policy`, expect: persons(200, 404, READERS) },
  'PUT /v1/fleets/:id/rollout-policy': { path: (f) => `/v1/fleets/${f.fleet1}/rollout-policy`, expect: persons(400, 400, ['officer']) },
  'POST /v1/releases/:id/promote': { path: (f) => `/v1/releases/${f.release}/promote`, expect: persons(400, 400, ['officer']) },
  'POST /v1/fleets/:id/rollback': { path: (f) => `/v1/fleets/${f.fleet1}/rollback`, expect: persons(400, 400, ['officer']) },
  // round latency breakdown: robot1 contributed to finalRound (201); an officer cannot report `train` (400, checked before the round is looked up)
  'POST /v1/rounds/:id/timings': { path: (f) => `/v1/rounds/${f.finalRound}/timings`, body: () => ({ stages: [{ stage: 'train', durationMs: 12 }] }), expect: { ...persons(400, 400, ['officer']), robot: 201, otherRobot: 404 } },
  'GET /v1/rounds/:id/timings': { path: (f) => `/v1/rounds/${f.finalRound}/timings`, expect: persons(200, 404) },
  // customer evaluation models: metadata for readers, blobs and changes for officers (each case on a private copy)
  'POST /v1/evaluation-models': { path: at('/v1/evaluation-models'), expect: persons(400, 400, ['officer']) },
  'GET /v1/evaluation-models': { path: (f) => `/v1/evaluation-models?fleet=${f.fleet1}`, expect: persons(200, 404, READERS) },
  'GET /v1/evaluation-models/:id': { path: (f) => `/v1/evaluation-models/${f.evalModel}`, expect: persons(200, 404, READERS) },
  'GET /v1/evaluation-models/:id/model': { path: (f) => `/v1/evaluation-models/${f.evalModel}/model`, expect: persons(200, 404, ['officer']) },
  'GET /v1/evaluation-models/:id/scenarios': { path: (f) => `/v1/evaluation-models/${f.evalModel}/scenarios`, expect: persons(200, 404, ['officer']) },
  'POST /v1/evaluation-models/:id/retire': { path: (f) => `/v1/evaluation-models/${f.evalModel}/retire`, body: () => ({ reason: 'outdated' }), expect: persons(200, 404, ['officer']) },
};

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/**
 * State-changing routes whose success appends no audit leaf, and why. Every other POST/PUT/PATCH/DELETE
 * answered 2xx must have appended at least one leaf to the audit log (issue 4: every state change).
 */
const UNAUDITED_SUCCESS: Record<string, string> = {
  'POST /v1/safety/validate': 'approvals are counted in metrics; only denials are audited',
  'POST /v1/safety/validate/batch': 'approvals are counted in metrics; only denials are audited',
  'POST /v1/robots/me/heartbeat': 'a heartbeat is audited only when the e-stop state changes',
};

async function auditCount(server: TestServer): Promise<number> {
  const rows = await server.db.$client.execute('select count(*) from audit_log');
  return Number(rows.rows[0]![0]);
}
/** Public documents (same for every caller; the metrics carry no tenant data, only route templates). */
const PUBLIC_DOCUMENTS = new Set(['GET /*', 'HEAD /*', 'GET /openapi.json', 'GET /docs/render.js', 'GET /metrics']);

async function call(options: { server: TestServer; fixture: Fixture; caller: Caller; method: string; path: string; body: unknown }) {
  const { server, fixture, caller, method, path } = options;
  const json = UNSAFE.has(method) ? options.body : undefined;
  if (caller === 'robot' || caller === 'otherRobot') {
    const robot = caller === 'robot' ? fixture.robot1 : fixture.robot2;
    const octet = path.endsWith('/contributions');
    const bytes = json === undefined ? undefined : new TextEncoder().encode(JSON.stringify(json));
    if (method === 'HEAD') {
      // The harness parses JSON bodies; a HEAD answer has none.
      const signed = signRobotRequest({ method, path, body: new Uint8Array(0), secretKey: robot.keys.secretKey, timestamp: server.clock.now });
      const res = await server.app.request(path, {
        method,
        headers: { [ROBOT_HEADERS.robot]: robot.id, [ROBOT_HEADERS.timestamp]: String(signed.timestamp), [ROBOT_HEADERS.nonce]: signed.nonce, [ROBOT_HEADERS.signature]: toBase64(signed.signature) },
      });
      return { status: res.status, body: await res.text(), headers: res.headers };
    }
    return robotRequest({ server, robot, method, path, body: bytes, contentType: octet ? 'application/octet-stream' : 'application/json' });
  }
  const token = caller === 'anonymous' ? undefined : fixture.tokens[caller];
  return api({ server, method, path, token, body: json });
}

describe('authorization, exhaustively from the route table', () => {
  let fixture: Fixture;
  beforeAll(async () => {
    fixture = await buildFixture();
  }, 300_000);
  afterAll(async () => {
    await fixture?.template.close();
  });

  it('declares the expected access of every route the app serves, and nothing else', () => {
    const served = routeKeys(fixture.template.app);
    expect(served.filter((k) => !(k in ACCESS)), 'routes missing from ACCESS').toEqual([]);
    expect(Object.keys(ACCESS).filter((k) => !served.includes(k)), 'ACCESS entries for routes that do not exist').toEqual([]);
  });

  it('answers every route x caller with the declared status, changes nothing on refusal, and shows B nothing of A', async () => {
    const mismatches: string[] = [];
    for (const key of routeKeys(fixture.template.app)) {
      const access = ACCESS[key];
      if (!access) continue;
      const method = key.slice(0, key.indexOf(' '));
      const path = access.path(fixture);
      // The callers of one route run side by side, each on its own copy.
      await Promise.all(
        CALLERS.map(async (caller) => {
          const server = await copyOfFixture({ fixture });
          try {
            const before = await snapshotOrg({ db: server.db, orgId: fixture.orgA, withAudit: caller === 'foreign' });
            const leavesBefore = await auditCount(server);
            const res = await call({ server, fixture, caller, method, path, body: access.body?.(fixture) ?? {} });
            const want = access.expect[caller];
            if (res.status !== want) mismatches.push(`${key} as ${caller}: ${res.status} (expected ${want}) ${JSON.stringify(res.body)?.slice(0, 160)}`);
            if (UNSAFE.has(method) && res.status >= 200 && res.status < 300 && !(key in UNAUDITED_SUCCESS) && (await auditCount(server)) <= leavesBefore)
              mismatches.push(`${key} as ${caller}: ${res.status} changed state without an audit leaf`);
            if (caller === 'foreign' || [401, 403, 404].includes(res.status)) {
              const after = await snapshotOrg({ db: server.db, orgId: fixture.orgA, withAudit: caller === 'foreign' });
              for (const table of Object.keys(before)) if (before[table] !== after[table]) mismatches.push(`${key} as ${caller} (${res.status}) changed ${table} of organization A`);
            }
            if (caller === 'foreign' && !PUBLIC_DOCUMENTS.has(key)) {
              const text = typeof res.body === 'string' ? res.body : JSON.stringify(res.body);
              for (const secret of fixture.secretsOfA) if (text?.includes(secret)) mismatches.push(`${key} showed organization B ${JSON.stringify(secret)} of A`);
            }
          } finally {
            await server.close();
          }
        }),
      );
    }
    expect(mismatches).toEqual([]);
  }, 600_000);
});

