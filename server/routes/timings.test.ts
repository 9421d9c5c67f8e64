// The round latency breakdown over HTTP: robots (signed) and officers report what they measured, the
// server records its own finalization, people of the organization read the statistics. Attacks: a
// robot posting an officer stage, a robot of another fleet, a replayed signed request, a tampered body,
// a person of another organization, a repeated stage, oversize and malformed reports.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { toBase64 } from '../../core/bytes.ts';
import { sha256 } from '../../core/codec/fingerprint.ts';
import { randomBytes } from '../../core/random.ts';
import { KEM_SIZES } from '../../core/crypto/kem.ts';
import { signReleaseManifest } from '../../core/records/release-manifest.ts';
import { auditLog, organizations, roundStageTimings, users } from '../db/schema.ts';
import { hashPassword } from '../auth/password.ts';
import { newId } from '../auth/tokens.ts';
import { api, bootstrap, createFleet, createTestServer, enrollRobot, fakeCiphertexts, makePackage, makeRoundConfig, robotRequest, setupOfficer, type TestRobot, type TestServer } from '../testing/harness.ts';

const json = (body: unknown) => new TextEncoder().encode(JSON.stringify(body));

describe('round stage timings', () => {
  let server: TestServer;
  let token: string;
  let orgId: string;
  let fleetId: string;
  let officer: Awaited<ReturnType<typeof setupOfficer>>;
  let robots: TestRobot[];
  let outsider: TestRobot; // enrolled in the org, but did not contribute
  let stranger: TestRobot; // of another fleet
  let roundId: string;
  let openRoundId: string;
  let foreignToken: string;
  let operatorToken: string;

  const post = (robot: TestRobot, id: string, body: unknown, extra: Partial<Parameters<typeof robotRequest>[0]> = {}) =>
    robotRequest({ server, robot, method: 'POST', path: `/v1/rounds/${id}/timings`, body: json(body), contentType: 'application/json', ...extra });
  const breakdown = async (id = roundId, as = token) => api({ server, method: 'GET', path: `/v1/rounds/${id}/timings`, token: as });
  const rowCount = async () => (await server.db.select().from(roundStageTimings).all()).length;

  async function openRound(contributors: TestRobot[], quorum: number) {
    const made = makeRoundConfig({ officer: officer.officer, orgId, fleetId, keyFingerprint: officer.keyFingerprint, now: server.clock.now, quorum });
    const res = await api({ server, method: 'POST', path: '/v1/rounds', token, body: { config: toBase64(made.bytes) } });
    expect(res.status).toBe(201);
    const fp = Uint8Array.from(Buffer.from(res.body.configFingerprint, 'hex'));
    for (const robot of contributors) {
      const pkg = makePackage({ robot, config: made.config, configFingerprint: fp, ciphertexts: fakeCiphertexts({ parmsId: officer.record.parmsId, count: 1 }) });
      expect((await robotRequest({ server, robot, method: 'POST', path: `/v1/rounds/${made.config.roundId}/contributions`, body: pkg.bytes })).status).toBe(201);
    }
    return made.config.roundId;
  }

  beforeAll(async () => {
    server = await createTestServer();
    const boot = await bootstrap({ server });
    token = boot.token;
    orgId = boot.org.id;
    fleetId = (await createFleet({ server, token })).id;
    const otherFleet = (await createFleet({ server, token, name: 'carts' })).id;
    officer = await setupOfficer({ server, token, orgId });
    robots = [];
    for (let i = 0; i < 3; i++) robots.push(await enrollRobot({ server, token, fleetId, name: `arm-${i}` }));
    outsider = await enrollRobot({ server, token, fleetId, name: 'arm-late' });
    stranger = await enrollRobot({ server, token, fleetId: otherFleet, name: 'cart-1' });
    roundId = await openRound(robots, 3);
    openRoundId = await openRound([robots[0]!], 3);
    const op = await api({ server, method: 'POST', path: '/v1/users', token, body: { user: 'otto', password: 'correct horse battery', roles: ['operator'] } });
    expect(op.status).toBe(201);
    operatorToken = (await api({ server, method: 'POST', path: '/v1/sessions', body: { user: 'otto', password: 'correct horse battery' } })).body.token;
    // Organization B: bootstrap is single, so straight into the database.
    const orgB = newId({ prefix: 'org' });
    await server.db.insert(organizations).values({ id: orgB, name: 'Mallory Corp', createdAt: server.clock.now }).run();
    await server.db
      .insert(users)
      .values({ id: newId({ prefix: 'usr' }), orgId: orgB, name: 'mallory', passwordHash: await hashPassword({ password: 'correct horse battery' }), roles: ['admin', 'officer', 'operator', 'auditor'], createdAt: server.clock.now })
      .run();
    foreignToken = (await api({ server, method: 'POST', path: '/v1/sessions', body: { user: 'mallory', password: 'correct horse battery' } })).body.token;
  });
  afterAll(async () => {
    await server?.close();
  });

  it('the server records the finalization as the aggregate stage, once', async () => {
    expect(await rowCount()).toBe(0);
    const closed = await api({ server, method: 'POST', path: `/v1/rounds/${roundId}/close`, token });
    expect(closed.status).toBe(200);
    const rows = await server.db.select().from(roundStageTimings).all();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ actorKind: 'server', stage: 'aggregate', orgId });
    expect(rows[0]!.durationMs).toBeGreaterThanOrEqual(0);
    expect(rows[0]!.durationMs).toBeLessThan(60_000);
    // closing again changes nothing
    expect((await api({ server, method: 'POST', path: `/v1/rounds/${roundId}/close`, token })).status).toBe(200);
    expect(await rowCount()).toBe(1);
    const b = await breakdown();
    expect(b.status).toBe(200);
    expect(b.body.stages.find((s: { stage: string }) => s.stage === 'aggregate').count).toBe(1);
    expect(b.body.criticalPath.segments).toEqual([{ segment: 'aggregate', stages: ['aggregate'], actorKind: 'server', actorId: null, ms: rows[0]!.durationMs }]);
    // the server's instance id (host name, pid) is not shown
    expect(JSON.stringify(b.body)).not.toContain(rows[0]!.actorId);
  });

  it('robots report their stages; the breakdown has hand-checkable statistics', async () => {
    const reports = [
      { train: 1000, compress: 10, encrypt: 40, upload: 70 },
      { train: 2000, compress: 20, encrypt: 50, upload: 80 },
      { train: 3000, compress: 30, encrypt: 60, upload: 90 },
    ];
    for (const [i, r] of reports.entries()) {
      const res = await post(robots[i]!, roundId, { stages: Object.entries(r).map(([stage, durationMs]) => ({ stage, durationMs })) });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body).toEqual({ roundId, actorKind: 'robot', stages: ['train', 'compress', 'encrypt', 'upload'] });
    }
    const b = (await breakdown()).body;
    const by = Object.fromEntries(b.stages.map((s: { stage: string }) => [s.stage, s]));
    // 1000, 2000, 3000: p50 = 2nd, p95 = 3rd
    expect(by.train).toEqual({ stage: 'train', count: 3, p50Ms: 2000, p95Ms: 3000, maxMs: 3000, totalMs: 6000 });
    expect(by.upload).toEqual({ stage: 'upload', count: 3, p50Ms: 80, p95Ms: 90, maxMs: 90, totalMs: 240 });
    expect(by.decrypt.count).toBe(0);
    const contribute = b.criticalPath.segments.find((s: { segment: string }) => s.segment === 'contribute');
    expect(contribute).toMatchObject({ actorKind: 'robot', actorId: robots[2]!.id, ms: 3180 });
    expect(b.reports).toBe(13);
    expect(b.actors).toEqual({ robot: 3, officer: 0, server: 1 });
    // every report is audited
    const audited = (await server.db.select().from(auditLog).all()).filter((r) => r.action === 'round.timings');
    expect(audited).toHaveLength(3);
  });

  it('a repeated stage by the same robot is 409 and changes nothing, also when mixed with new stages', async () => {
    const before = await rowCount();
    const again = await post(robots[0]!, roundId, { stages: [{ stage: 'upload', durationMs: 1 }] });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('stage_already_reported');
    expect(again.body.error.details.stage).toBe('upload');
    // all or nothing: in the open round, upload is new for robot 0 but encrypt repeats
    expect((await post(robots[0]!, openRoundId, { stages: [{ stage: 'encrypt', durationMs: 5 }] })).status).toBe(201);
    const mixed = await post(robots[0]!, openRoundId, { stages: [{ stage: 'upload', durationMs: 5 }, { stage: 'encrypt', durationMs: 6 }] });
    expect(mixed.status).toBe(409);
    expect(mixed.body.error.details.stage).toBe('encrypt');
    expect(await rowCount()).toBe(before + 1);
    const stored = (await server.db.select().from(roundStageTimings).all()).filter((r) => r.actorId === robots[0]!.id && r.stage === 'upload');
    expect(stored).toHaveLength(1); // the closed round's upload only
  });

  it('a robot posting an officer or server stage is 400 naming the field, and nothing changes', async () => {
    const before = await rowCount();
    const res = await post(outsider, roundId, { stages: [{ stage: 'compress', durationMs: 5 }, { stage: 'decrypt', durationMs: 5 }] });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/"stages\[1\]\.stage" expected one of the robot stages/);
    const agg = await post(robots[1]!, roundId, { stages: [{ stage: 'aggregate', durationMs: 5 }] });
    expect(agg.status).toBe(400);
    expect(agg.body.error.message).toMatch(/"stages\[0\]\.stage"/);
    expect(await rowCount()).toBe(before);
  });

  it('malformed reports: unknown stage, negative, over 24 h, non-number, extra fields, repeated stage, too many, oversize', async () => {
    const before = await rowCount();
    const bad: Array<[unknown, RegExp]> = [
      [{ stages: [{ stage: 'launch', durationMs: 1 }] }, /stages\.0\.stage/],
      [{ stages: [{ stage: 'apply', durationMs: -1 }] }, /stages\.0\.durationMs/],
      [{ stages: [{ stage: 'apply', durationMs: 86_400_000 }] }, /stages\.0\.durationMs/],
      [{ stages: [{ stage: 'apply', durationMs: '5' }] }, /stages\.0\.durationMs/],
      [{ stages: [{ stage: 'apply', durationMs: 1, robotId: robots[1]!.id }] }, /stages\.0/],
      [{ stages: [{ stage: 'apply', durationMs: 1 }], actorId: 'someone-else' }, /body|actorId/],
      [{ stages: [] }, /stages/],
      [{ stages: [{ stage: 'apply', durationMs: 1 }, { stage: 'apply', durationMs: 2 }] }, /"stages\[1\]\.stage" expected each stage once/],
      [{ stages: new Array(9).fill({ stage: 'apply', durationMs: 1 }) }, /stages/],
    ];
    for (const [body, message] of bad) {
      const res = await post(robots[1]!, roundId, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.message).toMatch(message);
    }
    const big = await post(robots[1]!, roundId, { stages: [{ stage: 'apply', durationMs: 1 }], pad: 'x'.repeat(5000) });
    expect(big.status).toBe(413);
    expect(await rowCount()).toBe(before);
  });

  it('a robot of another fleet gets 404; a robot without a contribution gets 409; nothing changes', async () => {
    const before = await rowCount();
    const foreignFleet = await post(stranger, roundId, { stages: [{ stage: 'upload', durationMs: 5 }] });
    expect(foreignFleet.status).toBe(404);
    expect(JSON.stringify(foreignFleet.body)).not.toContain(roundId);
    const noContribution = await post(outsider, roundId, { stages: [{ stage: 'upload', durationMs: 5 }] });
    expect(noContribution.status).toBe(409);
    expect(noContribution.body.error.code).toBe('not_a_contributor');
    const unknown = await post(robots[0]!, 'no-such-round', { stages: [{ stage: 'upload', durationMs: 5 }] });
    expect(unknown.status).toBe(404);
    expect(await rowCount()).toBe(before);
  });

  it('a replayed signed request is refused; a tampered body does not verify; nothing changes', async () => {
    const body = json({ stages: [{ stage: 'compress', durationMs: 7 }] });
    // robots[0] reports compress for the open round it contributed to, once
    const nonce = '0123456789abcdef0123456789abcdef';
    const first = await robotRequest({ server, robot: robots[0]!, method: 'POST', path: `/v1/rounds/${openRoundId}/timings`, body, contentType: 'application/json', nonce });
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    const before = await rowCount();
    const replay = await robotRequest({ server, robot: robots[0]!, method: 'POST', path: `/v1/rounds/${openRoundId}/timings`, body, contentType: 'application/json', nonce });
    expect(replay.status).toBe(401);
    expect(replay.body.error.code).toBe('replay');
    // the same signed request with a smaller duration swapped in
    const tampered = await robotRequest({
      server,
      robot: robots[0]!,
      method: 'POST',
      path: `/v1/rounds/${openRoundId}/timings`,
      body: json({ stages: [{ stage: 'encrypt', durationMs: 7 }] }),
      contentType: 'application/json',
      tamper: { body: json({ stages: [{ stage: 'encrypt', durationMs: 0.001 }] }) },
    });
    expect(tampered.status).toBe(401);
    // a stale timestamp (replayed after the window)
    const stale = await robotRequest({ server, robot: robots[0]!, method: 'POST', path: `/v1/rounds/${openRoundId}/timings`, body: json({ stages: [{ stage: 'encrypt', durationMs: 7 }] }), contentType: 'application/json', timestamp: server.clock.now - 6 * 60_000 });
    expect(stale.status).toBe(401);
    expect(await rowCount()).toBe(before);
  });

  it('officers report decrypt and review for a finalized round; other roles and open rounds are refused', async () => {
    const before = await rowCount();
    const early = await api({ server, method: 'POST', path: `/v1/rounds/${openRoundId}/timings`, token, body: { stages: [{ stage: 'decrypt', durationMs: 5 }] } });
    expect(early.status).toBe(409);
    expect(early.body.error.code).toBe('round_not_finalized');
    const robotStage = await api({ server, method: 'POST', path: `/v1/rounds/${roundId}/timings`, token, body: { stages: [{ stage: 'upload', durationMs: 5 }] } });
    expect(robotStage.status).toBe(400);
    expect(robotStage.body.error.message).toMatch(/"stages\[0\]\.stage" expected one of the officer stages \(decrypt, review\), got "upload"/);
    const operator = await api({ server, method: 'POST', path: `/v1/rounds/${roundId}/timings`, token: operatorToken, body: { stages: [{ stage: 'decrypt', durationMs: 5 }] } });
    expect(operator.status).toBe(403);
    expect(await rowCount()).toBe(before);
    const ok = await api({ server, method: 'POST', path: `/v1/rounds/${roundId}/timings`, token, body: { stages: [{ stage: 'decrypt', durationMs: 250 }, { stage: 'review', durationMs: 750 }] } });
    expect(ok.status).toBe(201);
    expect(ok.body.actorKind).toBe('officer');
    const again = await api({ server, method: 'POST', path: `/v1/rounds/${roundId}/timings`, token, body: { stages: [{ stage: 'review', durationMs: 1 }] } });
    expect(again.status).toBe(409);
    const b = (await breakdown()).body;
    expect(b.criticalPath.segments.find((s: { segment: string }) => s.segment === 'review')).toMatchObject({ actorKind: 'officer', ms: 1000 });
    expect(b.actors.officer).toBe(1);
    // any person of the organization reads the breakdown; robots do not
    expect((await breakdown(roundId, operatorToken)).status).toBe(200);
    expect((await robotRequest({ server, robot: robots[0]!, method: 'GET', path: `/v1/rounds/${roundId}/timings` })).status).toBe(403);
  });

  it('apply is taken only from robots a release of the round carries a key for', async () => {
    const payload = randomBytes(256);
    const manifest = signReleaseManifest({
      manifest: {
        releaseId: `rel-${randomUUID()}`,
        orgId,
        fleetId,
        roundId,
        releaseVersion: 1,
        adapterSha256: randomBytes(32),
        kind: 'release',
        rollbackOf: 0,
        payloadSha256: sha256(payload),
        canaryFraction: 1,
        createdAt: server.clock.now,
        wraps: [robots[0]!.id, robots[1]!.id].map((robotId) => ({ robotId, kemCiphertext: randomBytes(KEM_SIZES.ciphertext), wrappedKey: randomBytes(KEM_SIZES.wrappedKey) })),
      },
      secretKey: officer.officer.secretKey,
      publicKey: officer.officer.publicKey,
    });
    expect((await api({ server, method: 'POST', path: '/v1/releases', token, body: { manifest: toBase64(manifest), payload: toBase64(payload) } })).status).toBe(201);
    expect((await post(robots[0]!, roundId, { stages: [{ stage: 'apply', durationMs: 12 }] })).status).toBe(201);
    expect((await post(robots[1]!, roundId, { stages: [{ stage: 'apply', durationMs: 30 }] })).status).toBe(201);
    const unwrapped = await post(robots[2]!, roundId, { stages: [{ stage: 'apply', durationMs: 1 }] });
    expect(unwrapped.status).toBe(409);
    expect(unwrapped.body.error.code).toBe('no_release_for_robot');
    const b = (await breakdown()).body;
    expect(b.stages.find((s: { stage: string }) => s.stage === 'apply')).toEqual({ stage: 'apply', count: 2, p50Ms: 12, p95Ms: 30, maxMs: 30, totalMs: 42 });
    const aggregateMs = b.stages.find((s: { stage: string }) => s.stage === 'aggregate').maxMs;
    // contribute 3180 (robot 2) + aggregate + review 1000 + apply 30 (robot 1)
    expect(b.criticalPath.totalMs).toBeCloseTo(3180 + aggregateMs + 1000 + 30, 6);
  });

  it('a person of another organization sees nothing and changes nothing', async () => {
    const before = await rowCount();
    const read = await breakdown(roundId, foreignToken);
    expect(read.status).toBe(404);
    const write = await api({ server, method: 'POST', path: `/v1/rounds/${roundId}/timings`, token: foreignToken, body: { stages: [{ stage: 'decrypt', durationMs: 5 }] } });
    expect(write.status).toBe(404);
    for (const res of [read, write]) for (const id of [roundId, orgId, fleetId, robots[0]!.id]) expect(JSON.stringify(res.body)).not.toContain(id);
    expect((await api({ server, method: 'GET', path: `/v1/rounds/${roundId}/timings` })).status).toBe(401);
    expect(await rowCount()).toBe(before);
  });

  it('odd ids and bodies are a 4xx, never a 5xx', async () => {
    const ids = ['..', '%2e%2e', 'a'.repeat(5000), '0', '-1', 'null', '__proto__', 'constructor', '😀', '%00', '%ZZ', encodeURIComponent(' '), roundId];
    const bodies: unknown[] = [null, [], 'x', { stages: null }, { stages: [{}] }, { stages: [{ stage: '__proto__', durationMs: 1 }] }, { stages: [{ stage: 'upload', durationMs: 1e308 }] }, { stages: [{ stage: 'upload', durationMs: -0 }], __proto__: { x: 1 } }];
    for (const id of ids) {
      const get = await api({ server, method: 'GET', path: `/v1/rounds/${id}/timings`, token });
      expect(get.status, `GET ${id.slice(0, 20)}`).toBeLessThan(500);
      for (const body of bodies) {
        const res = await api({ server, method: 'POST', path: `/v1/rounds/${id}/timings`, token, body });
        expect(res.status, `POST ${id.slice(0, 20)} ${JSON.stringify(body)}`).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
        if (id.length > 1000) continue; // a robot cannot even sign a path that long (4 KiB bound)
        const robot = await post(robots[2]!, id, body);
        expect(robot.status, `robot POST ${id.slice(0, 20)} ${JSON.stringify(body)}`).toBeGreaterThanOrEqual(400);
        expect(robot.status).toBeLessThan(500);
      }
    }
  });

  it('is documented in /openapi.json', async () => {
    const doc = (await api({ server, method: 'GET', path: '/openapi.json' })).body;
    expect(Object.keys(doc.paths['/v1/rounds/{id}/timings'])).toEqual(expect.arrayContaining(['get', 'post']));
  });
});
