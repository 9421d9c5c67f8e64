// Evaluation model routes over HTTP, from the attacker's side too: registration checks (signature by a
// registered officer key, org, fleet, blob hashes), the fleet's active model, downloads only for
// officers, retire once, tenant isolation, robots refused, oversize bodies, and an audit leaf per change.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromBase64, toBase64 } from '../../core/bytes.ts';
import { generateSigningKeyPair } from '../../core/crypto/sign.ts';
import { randomBytes } from '../../core/random.ts';
import { newId } from '../auth/tokens.ts';
import { organizations, users } from '../db/schema.ts';
import { hashPassword } from '../auth/password.ts';
import { fakeEvalModelRegistration } from '../../core/eval/customer-test-models.ts';
import { api, bootstrap, createFleet, createTestServer, enrollRobot, robotRequest, setupOfficer, type TestRobot, type TestServer } from '../testing/harness.ts';

const PASSWORD = 'correct horse battery staple';

describe('evaluation model routes', () => {
  let server: TestServer;
  let token: string;
  let officerToken: string;
  let auditorToken: string;
  let operatorToken: string;
  let foreignToken: string;
  let orgId: string;
  let fleetId: string;
  let otherFleet: string;
  let officer: Awaited<ReturnType<typeof setupOfficer>>;
  let robot: TestRobot;

  async function user(name: string, roles: string[]) {
    expect((await api({ server, method: 'POST', path: '/v1/users', token, body: { user: name, password: PASSWORD, roles } })).status).toBe(201);
    return (await api({ server, method: 'POST', path: '/v1/sessions', body: { user: name, password: PASSWORD } })).body.token as string;
  }
  const reg = (o: Partial<Parameters<typeof fakeEvalModelRegistration>[0]> = {}) =>
    fakeEvalModelRegistration({ signer: officer.officer, orgId, fleetId, now: server.clock.now, ...o });
  const auditActions = async () => (await server.db.$client.execute({ sql: 'select action, target from audit_log where org_id = ? order by leaf_index', args: [orgId] })).rows.map((r) => `${r[0]} ${r[1]}`);

  beforeAll(async () => {
    server = await createTestServer();
    const boot = await bootstrap({ server });
    token = boot.token;
    orgId = boot.org.id;
    fleetId = (await createFleet({ server, token, name: 'arms' })).id;
    otherFleet = (await createFleet({ server, token, name: 'carts' })).id;
    officer = await setupOfficer({ server, token, orgId });
    officerToken = await user('eve-officer', ['officer']);
    auditorToken = await user('aud', ['auditor']);
    operatorToken = await user('op', ['operator']);
    robot = await enrollRobot({ server, token, fleetId });
    const orgB = newId({ prefix: 'org' });
    await server.db.insert(organizations).values({ id: orgB, name: 'Mallory Corp', createdAt: server.clock.now }).run();
    await server.db.insert(users).values({ id: newId({ prefix: 'usr' }), orgId: orgB, name: 'mallory', passwordHash: await hashPassword({ password: PASSWORD }), roles: ['admin', 'officer', 'operator', 'auditor'], createdAt: server.clock.now }).run();
    foreignToken = (await api({ server, method: 'POST', path: '/v1/sessions', body: { user: 'mallory', password: PASSWORD } })).body.token;
  });
  afterAll(async () => server?.close());

  it('registers a signed model, lists it as the active one, serves record and blobs to officers, and audits', async () => {
    const first = reg({ modelId: 'em-first', name: 'line 3' });
    const res = await api({ server, method: 'POST', path: '/v1/evaluation-models', token: officerToken, body: first.body });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ id: 'em-first', fleetId, name: 'line 3', state: 'active', modelBytes: first.model.length, scenariosBytes: first.sealed.length });
    expect(res.body.fingerprint).toBe(Buffer.from(first.fingerprint).toString('hex'));
    server.clock.now += 1000;
    const second = reg({ modelId: 'em-second' });
    expect((await api({ server, method: 'POST', path: '/v1/evaluation-models', token: officerToken, body: second.body })).status).toBe(201);
    const list = await api({ server, method: 'GET', path: `/v1/evaluation-models?fleet=${fleetId}`, token: auditorToken });
    expect(list.status).toBe(200);
    expect(list.body.map((m: { id: string; state: string }) => [m.id, m.state])).toEqual([['em-second', 'active'], ['em-first', 'registered']]);
    expect(list.body[0].record).toBeUndefined();
    const one = await api({ server, method: 'GET', path: '/v1/evaluation-models/em-first', token: auditorToken });
    expect(one.status).toBe(200);
    expect(fromBase64(one.body.record)).toEqual(first.signed);
    const model = await server.app.request('/v1/evaluation-models/em-first/model', { headers: { authorization: `Bearer ${officerToken}` } });
    expect(model.status).toBe(200);
    expect(new Uint8Array(await model.arrayBuffer())).toEqual(first.model);
    const scen = await server.app.request('/v1/evaluation-models/em-first/scenarios', { headers: { authorization: `Bearer ${officerToken}` } });
    expect(new Uint8Array(await scen.arrayBuffer())).toEqual(first.sealed);
    // Auditors read metadata, not the blobs; operators and robots nothing.
    expect((await api({ server, method: 'GET', path: '/v1/evaluation-models/em-first/scenarios', token: auditorToken })).status).toBe(403);
    expect((await api({ server, method: 'GET', path: `/v1/evaluation-models?fleet=${fleetId}`, token: operatorToken })).status).toBe(403);
    expect((await robotRequest({ server, robot, method: 'GET', path: '/v1/evaluation-models/em-first/model' })).status).toBe(403);
    expect(await auditActions()).toEqual(expect.arrayContaining(['evaluation_model.register em-first', 'evaluation_model.register em-second']));
  });

  it('refuses records it cannot trust or that do not match the blobs, and changes nothing', async () => {
    const before = await auditActions();
    const post = (body: unknown, t = officerToken) => api({ server, method: 'POST', path: '/v1/evaluation-models', token: t, body });
    // Signed by a key that is not a registered officer key of the organization.
    const mallory = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
    const foreignSigner = reg({ signer: mallory });
    expect((await post(foreignSigner.body)).body.error.code).toBe('untrusted_signer');
    // The server (or anyone on the way) swapped the model or the ciphertext.
    const swapped = reg();
    expect((await post({ ...swapped.body, model: toBase64(randomBytes(512)) })).body.error.code).toBe('integrity');
    const tampered = fromBase64(swapped.body.scenarios);
    tampered[20] = tampered[20]! ^ 1;
    expect((await post({ ...swapped.body, scenarios: toBase64(tampered) })).body.error.code).toBe('integrity');
    // A broken signature.
    const broken = fromBase64(swapped.body.record);
    broken[broken.length - 5] = broken[broken.length - 5]! ^ 1;
    expect((await post({ ...swapped.body, record: toBase64(broken) })).status).toBe(401);
    // Another organization's id in the record, an unknown fleet.
    expect((await post(reg({ orgId: 'org-other' }).body)).body.error.code).toBe('integrity');
    expect((await post(reg({ fleetId: 'no-such-fleet' }).body)).status).toBe(404);
    // Unknown fields, missing fields, a record that is not base64.
    expect((await post({ ...swapped.body, extra: 1 })).status).toBe(400);
    expect((await post({ record: swapped.body.record })).status).toBe(400);
    expect((await post({ ...swapped.body, record: '***' })).status).toBe(400);
    // Replay of a registered record (same id and fingerprint): 409, no second row.
    const again = reg({ modelId: 'em-replay' });
    expect((await post(again.body)).status).toBe(201);
    const replay = await post(again.body);
    expect(replay.status).toBe(409);
    expect(replay.body.error.code).toBe('eval_model_exists');
    // Wrong roles and the other tenant (holding every role) cannot register for A.
    expect((await post(reg().body, auditorToken)).status).toBe(403);
    expect((await post(reg().body, foreignToken)).body.error.code).toBe('untrusted_signer');
    expect(await auditActions()).toEqual([...before, 'evaluation_model.register em-replay']);
  });

  it('refuses an oversize body before reading it', async () => {
    const res = await server.app.request('/v1/evaluation-models', {
      method: 'POST',
      headers: { authorization: `Bearer ${officerToken}`, 'content-type': 'application/json', 'content-length': String(200 * 1024 * 1024) },
      body: '{}',
    });
    expect(res.status).toBe(413);
  });

  it('keeps tenants apart: another organization sees none of the models, ids or blobs', async () => {
    for (const path of ['/v1/evaluation-models/em-first', '/v1/evaluation-models/em-first/model', '/v1/evaluation-models/em-first/scenarios']) {
      const res = await api({ server, method: 'GET', path, token: foreignToken });
      expect(res.status).toBe(404);
      expect(JSON.stringify(res.body)).not.toContain(fleetId);
    }
    expect((await api({ server, method: 'GET', path: `/v1/evaluation-models?fleet=${fleetId}`, token: foreignToken })).status).toBe(404);
    expect((await api({ server, method: 'POST', path: '/v1/evaluation-models/em-first/retire', token: foreignToken, body: { reason: 'mine now' } })).status).toBe(404);
    expect((await api({ server, method: 'GET', path: `/v1/evaluation-models?fleet=${otherFleet}`, token: officerToken })).body).toEqual([]);
  });

  it('retires once (officer only, reason required), and the next newest model becomes active', async () => {
    expect((await api({ server, method: 'POST', path: '/v1/evaluation-models/em-replay/retire', token: auditorToken, body: { reason: 'x' } })).status).toBe(403);
    expect((await api({ server, method: 'POST', path: '/v1/evaluation-models/em-replay/retire', token: officerToken, body: { reason: '  ' } })).status).toBe(400);
    const r = await api({ server, method: 'POST', path: '/v1/evaluation-models/em-replay/retire', token: officerToken, body: { reason: 'scenario set outdated' } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ state: 'retired', retireReason: 'scenario set outdated' });
    const again = await api({ server, method: 'POST', path: '/v1/evaluation-models/em-replay/retire', token: officerToken, body: { reason: 'again' } });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('eval_model_retired');
    const list = await api({ server, method: 'GET', path: `/v1/evaluation-models?fleet=${fleetId}`, token: officerToken });
    expect(list.body.find((m: { state: string }) => m.state === 'active').id).toBe('em-second');
    expect((await auditActions()).at(-1)).toBe('evaluation_model.retire em-replay');
    expect((await api({ server, method: 'POST', path: '/v1/evaluation-models/no-such/retire', token: officerToken, body: { reason: 'x' } })).status).toBe(404);
  });
});
