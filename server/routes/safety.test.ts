// Safety cells and command validation over HTTP: officer-configured cells, robot-signed validation and
// heartbeats, audited denials, the decision counter hook, field-named 400s, and the batch form.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, bootstrap, createFleet, createTestServer, enrollRobot, robotRequest, type TestRobot, type TestServer } from '../testing/harness.ts';
import { onSafetyDecision, type SafetyDecisionEvent } from './safety.ts';
import { TWO_LINK_CELL, twoLinkPose } from '../../core/safety/test-cell.ts';

const CELL = TWO_LINK_CELL;

const pose = twoLinkPose;
const waypoints = [0, 0.5, 1].map((s) => ({ t: s, joints: [-0.8 + 0.6 * s, 0.5], links: pose(-0.8 + 0.6 * s, 0.5) }));
const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

describe('safety routes', () => {
  let server: TestServer;
  let admin: Awaited<ReturnType<typeof bootstrap>>;
  let fleet: { id: string };
  let robot: TestRobot;
  const events: SafetyDecisionEvent[] = [];
  let unsubscribe: () => void;

  beforeAll(async () => {
    server = await createTestServer();
    admin = await bootstrap({ server });
    fleet = await createFleet({ server, token: admin.token });
    robot = await enrollRobot({ server, token: admin.token, fleetId: fleet.id });
    unsubscribe = onSafetyDecision((e) => events.push(e));
  });
  afterAll(async () => {
    unsubscribe();
    await server.close();
  });

  const post = (path: string, body: unknown) => robotRequest({ server, robot, method: 'POST', path, body: enc(body), contentType: 'application/json' });

  it('officers configure cells per fleet; versions grow; robots read their fleet\'s cells', async () => {
    const put = await api({ server, method: 'PUT', path: `/v1/fleets/${fleet.id}/cells/line-1`, token: admin.token, body: CELL });
    expect(put.status).toBe(201);
    expect(put.body).toMatchObject({ fleetId: fleet.id, cellId: 'line-1', version: 1 });
    expect(put.body.cell.ssm.humanSpeedMps).toBe(1.6); // defaults filled in
    const again = await api({ server, method: 'PUT', path: `/v1/fleets/${fleet.id}/cells/line-1`, token: admin.token, body: CELL });
    expect(again.status).toBe(200);
    expect(again.body.version).toBe(2);
    const list = await api({ server, method: 'GET', path: `/v1/fleets/${fleet.id}/cells`, token: admin.token });
    expect(list.body.map((c: { cellId: string }) => c.cellId)).toEqual(['line-1']);
    const own = await robotRequest({ server, robot, method: 'GET', path: `/v1/fleets/${fleet.id}/cells/line-1` });
    expect(own.status).toBe(200);
    const bad = await api({ server, method: 'PUT', path: `/v1/fleets/${fleet.id}/cells/line-2`, token: admin.token, body: { ...CELL, linkRadii: [-1, 0.05] } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.field).toBe('linkRadii[0]');
  });

  it('denies without a heartbeat and audits the denial', async () => {
    const res = await post('/v1/safety/validate', { cellId: 'line-1', requestId: 'r-1', trajectory: { waypoints } });
    expect(res.status).toBe(200);
    expect(res.body.decision).toBe('deny');
    expect(res.body.failed).toEqual(['emergency_stop']);
    expect(res.body.cellVersion).toBe(2);
    const audit = await api({ server, method: 'GET', path: '/v1/audit?limit=1000', token: admin.token });
    const deny = audit.body.entries.find((e: { action: string }) => e.action === 'safety.deny');
    expect(deny).toBeTruthy();
    expect(deny.actor).toEqual({ type: 'robot', id: robot.id });
    expect(deny.details.failed).toEqual(['emergency_stop']);
  });

  it('approves after an armed heartbeat, counts decisions, and denies again when the e-stop is engaged', async () => {
    const hb = await post('/v1/robots/me/heartbeat', { estop: 'armed', robotTime: Date.now() });
    expect(hb.status).toBe(200);
    const before = events.length;
    const ok = await post('/v1/safety/validate', { cellId: 'line-1', trajectory: { waypoints } });
    expect(ok.body.decision).toBe('approve');
    expect(events.length).toBe(before + 1);
    expect(events.at(-1)).toMatchObject({ decision: 'approve', robotId: robot.id, cellId: 'line-1', fleetId: fleet.id });
    await post('/v1/robots/me/heartbeat', { estop: 'engaged' });
    const denied = await post('/v1/safety/validate', { cellId: 'line-1', trajectory: { waypoints } });
    expect(denied.body.failed).toEqual(['emergency_stop']);
    const beats = await api({ server, method: 'GET', path: `/v1/safety/heartbeats?fleet=${fleet.id}`, token: admin.token });
    expect(beats.body[0]).toMatchObject({ robotId: robot.id, estop: 'engaged' });
    await post('/v1/robots/me/heartbeat', { estop: 'armed' });
  });

  it('answers 400 naming the field for malformed or impossible requests, 404 for an unknown cell', async () => {
    const backwards = await post('/v1/safety/validate', { cellId: 'line-1', trajectory: { waypoints: [waypoints[1], waypoints[0]] } });
    expect(backwards.status).toBe(400);
    expect(backwards.body.error).toMatchObject({ code: 'malformed', details: { field: 'trajectory.waypoints[1].t' } });
    const heavy = await post('/v1/safety/validate', { cellId: 'line-1', trajectory: { waypoints }, payloadKg: 50 });
    expect(heavy.body.error.details.field).toBe('payloadKg');
    const unknown = await post('/v1/safety/validate', { cellId: 'nope', trajectory: { waypoints } });
    expect(unknown.status).toBe(404);
    const heartbeat = await post('/v1/robots/me/heartbeat', { estop: 'maybe' });
    expect(heartbeat.body.error.details.field).toBe('estop');
  });

  it('validates a batch in one signed request', async () => {
    const collide = [0, 1].map((s) => ({ t: 3 * s, joints: [-0.5 + 2.07 * s, 0], links: pose(-0.5 + 2.07 * s, 0) }));
    const res = await post('/v1/safety/validate/batch', { requests: [{ cellId: 'line-1', trajectory: { waypoints } }, { cellId: 'line-1', trajectory: { waypoints: collide } }] });
    expect(res.status).toBe(200);
    expect(res.body.decisions.map((d: { decision: string }) => d.decision)).toEqual(['approve', 'deny']);
    expect(res.body.decisions[1].failed).toEqual(['collision']);
    const bad = await post('/v1/safety/validate/batch', { requests: [{ cellId: 'line-1', trajectory: { waypoints } }, { cellId: 'line-1' }] });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.field).toBe('requests[1].trajectory');
  });

  it('documents both robot authentication forms and the bodies, which parse.ts (not zod) still validates', async () => {
    const doc = (await api({ server, method: 'GET', path: '/openapi.json' })).body;
    const signed = { robotId: [], robotTimestamp: [], robotNonce: [], robotSignature: [] };
    const session = { robotId: [], robotSession: [], robotCounter: [], robotMac: [] };
    for (const path of ['/v1/robots/me/heartbeat', '/v1/safety/validate', '/v1/safety/validate/batch']) {
      const op = doc.paths[path].post;
      expect(op.security, path).toEqual([signed, session]);
      expect(op.requestBody.content['application/json'].schema.$ref, path).toMatch(/^#\/components\/schemas\//);
      expect(op.responses['200'].content['application/json'].schema, path).toBeTruthy();
    }
    expect(doc.paths['/v1/safety/sessions'].post.security).toEqual([signed]);
    expect(doc.paths['/v1/safety/heartbeats'].get.security).toEqual([{ bearer: [] }, { sessionCookie: [] }]);
    expect(doc.components.securitySchemes.robotMac).toMatchObject({ type: 'apiKey', in: 'header', name: 'x-tg-mac' });
    expect(doc.components.securitySchemes.robotSession).toMatchObject({ type: 'apiKey', in: 'header', name: 'x-tg-session' });
    expect(doc.components.schemas.SafetyRequest.required).toEqual(['cellId', 'trajectory']);
    expect(doc.components.schemas.SafetyRequestBatch.properties.requests.items.$ref).toBe('#/components/schemas/SafetyRequest');

    // Described, not gated: the body is read from the authenticated bytes whatever the Content-Type, as before.
    const plain = await robotRequest({ server, robot, method: 'POST', path: '/v1/safety/validate', body: enc({ cellId: 'line-1', trajectory: { waypoints } }), contentType: 'text/plain' });
    expect(plain.status).toBe(200);
    expect(plain.body.decision).toBe('approve');
    const unknownField = await post('/v1/safety/validate', { cellId: 'line-1', trajectory: { waypoints }, speed: 3 });
    expect(unknownField.status).toBe(400);
    expect(unknownField.body.error).toMatchObject({ code: 'malformed', details: { field: 'speed' } });
    // The fleet query is validated by zod through the shared hook.
    const badFleet = await api({ server, method: 'GET', path: '/v1/safety/heartbeats?fleet=not%20an%20id', token: admin.token });
    expect(badFleet.status).toBe(400);
    expect(badFleet.body.error).toMatchObject({ code: 'malformed', details: { field: 'fleet' } });
    expect((await api({ server, method: 'GET', path: '/v1/safety/heartbeats', token: admin.token })).status).toBe(400);
  });

  it('keeps people off the robot routes and robots off other fleets', async () => {
    const person = await api({ server, method: 'POST', path: '/v1/safety/validate', token: admin.token, body: { cellId: 'line-1' } });
    expect(person.status).toBe(403);
    const other = await createFleet({ server, token: admin.token, name: 'other' });
    const res = await robotRequest({ server, robot, method: 'GET', path: `/v1/fleets/${other.id}/cells` });
    expect(res.status).toBe(404);
  });
});
