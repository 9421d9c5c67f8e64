// Fuzzing every route of the server (createApp through app.request): random and mutated JSON bodies,
// mutated update packages, random and mutated path ids and query strings, as a person, a robot (signed
// requests), a stranger or nobody. Whatever comes in, the answer is never a 5xx: bad input is a 4xx
// with an error code, never an internal error. The route list comes from the app itself, so routes
// added later are fuzzed too.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBase64 } from '../../core/bytes.ts';
import { randomBytes } from '../../core/random.ts';
import { ROBOT_HEADERS, signRobotRequest } from '../../core/records/request-signature.ts';
import { api, bootstrap, createFleet, enrollRobot, fakeCiphertexts, makePackage, makeRoundConfig, robotRequest, setupOfficer, type TestRobot, type TestServer } from '../../server/testing/harness.ts';
import { createOpsTestServer } from '../../server/operations/testing.ts';
import { fuzzBytes, fuzzJsonValue } from './mutate.ts';

const RUNS = Number(process.env.TG_FUZZ_ROUTE_RUNS ?? 1200);
/** Routes whose handlers hash passwords (scrypt N=2^17, ~0.2 s each): fuzzed less often to stay bounded. */
const SLOW = new Set(['POST /v1/sessions', 'POST /v1/users', 'POST /v1/bootstrap']);
/** Ends the fuzzer's own session; fuzzed with a throwaway session instead. */
const LOGOUT = 'DELETE /v1/sessions/current';

interface Route {
  method: string;
  path: string;
}

interface Case {
  route: Route;
  params: string[];
  query: string;
  auth: 'admin' | 'robot' | 'none' | 'bad-token';
  body: { kind: 'json'; value: unknown } | { kind: 'text'; text: string } | { kind: 'bytes'; bytes: Uint8Array } | { kind: 'none' };
}

describe('every route answers bad input with a 4xx, never a 5xx', () => {
  let server: TestServer;
  let token: string;
  let robot: TestRobot;
  const ids: Record<string, string[]> = { id: [], cid: [], version: ['1', '2', '0', '-1', '999999999999'], cellId: ['cell-a'] };
  const seeds = new Map<string, unknown[]>();
  let packageBytes: Uint8Array;
  let routes: Route[];

  /** Sends a valid request and keeps its body as a mutation seed for the route. */
  async function seeded(method: string, path: string, template: string, body: unknown) {
    const res = await api({ server, method, path, token, body });
    const key = `${method} ${template}`;
    seeds.set(key, [...(seeds.get(key) ?? []), body]);
    return res;
  }

  beforeAll(async () => {
    server = await createOpsTestServer();
    const admin = await bootstrap({ server });
    token = admin.token;
    seeds.set('POST /v1/bootstrap', [{ org: 'Acme', user: 'bob', password: 'a password 123' }]);
    seeds.set('POST /v1/sessions', [{ user: 'alice', password: 'correct horse battery' }]);
    seeds.set('POST /v1/users', [{ user: 'carol', password: 'carol password', roles: ['auditor'] }]);
    const fleet = await createFleet({ server, token, name: 'arms' });
    seeds.set('POST /v1/fleets', [{ name: 'carts', envelope: { updateBytes: { max: 1_000_000 } }, dpEpsilonBudget: 5 }]);
    ids.id!.push(fleet.id);
    const officer = await setupOfficer({ server, token, orgId: admin.org.id });
    seeds.set('POST /v1/officer-keys', [{ publicKey: toBase64(officer.officer.publicKey) }]);
    robot = await enrollRobot({ server, token, fleetId: fleet.id });
    ids.id!.push(robot.id);
    const tokenRes = await api({ server, method: 'POST', path: `/v1/fleets/${fleet.id}/enrollment-tokens`, token });
    seeds.set('POST /v1/enroll', [{ token: tokenRes.body.token, name: 'fuzz-bot', dsaPublicKey: toBase64(randomBytes(1312)), kemPublicKey: toBase64(randomBytes(1184)), attestation: toBase64(randomBytes(32)) }]);
    const made = makeRoundConfig({ officer: officer.officer, orgId: admin.org.id, fleetId: fleet.id, keyFingerprint: officer.keyFingerprint, now: server.clock.now, roundId: 'fuzz-round', quorum: 1 });
    const opened = await seeded('POST', '/v1/rounds', '/v1/rounds', { config: toBase64(made.bytes) });
    expect(opened.status).toBe(201);
    ids.id!.push('fuzz-round');
    const fingerprint = Uint8Array.from(Buffer.from(opened.body.configFingerprint, 'hex'));
    packageBytes = makePackage({ robot, config: made.config, configFingerprint: fingerprint, ciphertexts: fakeCiphertexts({ parmsId: officer.record.parmsId, count: 1 }) }).bytes;
    const second = makeRoundConfig({ officer: officer.officer, orgId: admin.org.id, fleetId: fleet.id, keyFingerprint: officer.keyFingerprint, now: server.clock.now, roundId: 'fuzz-round-2', quorum: 1 });
    seeds.set('POST /v1/rounds', [...(seeds.get('POST /v1/rounds') ?? []), { config: toBase64(second.bytes) }]);
    const other = await enrollRobot({ server, token, fleetId: fleet.id });
    const pushed = await robotRequest({
      server,
      robot: other,
      method: 'POST',
      path: '/v1/rounds/fuzz-round/contributions',
      body: makePackage({ robot: other, config: made.config, configFingerprint: fingerprint, ciphertexts: fakeCiphertexts({ parmsId: officer.record.parmsId, count: 1 }) }).bytes,
    });
    expect(pushed.status).toBe(201);
    ids.cid!.push(pushed.body.contributionId);
    seeds.set('POST /v1/he-keys', [{ record: toBase64(randomBytes(2000)) }]);
    seeds.set('POST /v1/releases', [{ manifest: toBase64(randomBytes(3000)), payload: toBase64(randomBytes(100)) }]);

    const seen = new Set<string>();
    routes = [];
    for (const r of server.app.routes) {
      const key = `${r.method} ${r.path}`;
      // The PWA's catch-all serves the built SPA, not JSON; before `npm run build` it answers 503
      // not_built by design (npm start builds first). It is covered by the browser suite.
      if (r.method === 'ALL' || seen.has(key) || key === LOGOUT || r.path === '/*') continue;
      seen.add(key);
      routes.push({ method: r.method, path: r.path });
    }
  }, 60_000);
  afterAll(() => server.close());

  const paramNames = (path: string) => [...path.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1]!);

  function caseArbitrary(): fc.Arbitrary<Case> {
    const fast = routes.filter((r) => !SLOW.has(`${r.method} ${r.path}`));
    const slow = routes.filter((r) => SLOW.has(`${r.method} ${r.path}`));
    const route = fc.oneof({ weight: 60, arbitrary: fc.constantFrom(...fast) }, { weight: 1, arbitrary: fc.constantFrom(...slow) });
    return route.chain((r) => {
      const names = paramNames(r.path);
      const idArb = (name: string) =>
        fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom(...(ids[name]?.length ? ids[name]! : ids.id!)) },
          { weight: 2, arbitrary: fc.string({ maxLength: 80 }) },
          { weight: 1, arbitrary: fc.constantFrom('..', '%2e%2e', 'a'.repeat(5000), '0', '-1', 'null', 'undefined', '__proto__', 'constructor', '😀', '%00', '%ZZ') },
        );
      const key = `${r.method} ${r.path}`;
      const jsonSeeds = seeds.get(key) ?? [{}];
      const body: fc.Arbitrary<Case['body']> =
        r.method === 'GET' || r.method === 'HEAD'
          ? fc.constant({ kind: 'none' as const })
          : key === 'POST /v1/rounds/:id/contributions'
            ? fuzzBytes([packageBytes], 512).map((bytes) => ({ kind: 'bytes' as const, bytes }))
            : fc.oneof(
                { weight: 8, arbitrary: fuzzJsonValue(jsonSeeds).map((value) => ({ kind: 'json' as const, value })) },
                { weight: 1, arbitrary: fc.string({ maxLength: 100 }).map((text) => ({ kind: 'text' as const, text })) },
                { weight: 1, arbitrary: fc.constant({ kind: 'none' as const }) },
              );
      const query = fc
        .array(fc.tuple(fc.constantFrom('fleet', 'state', 'after', 'limit', 'round', 'first', 'second', 'leaf', 'size', 'x'), fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom(...ids.id!, 'open', '-1', '1e309', '99999999999999999999'))), { maxLength: 3 })
        .map((pairs) => (pairs.length ? `?${new URLSearchParams(pairs).toString()}` : ''));
      return fc.record({
        route: fc.constant(r),
        params: fc.tuple(...names.map(idArb)).map((p) => p as string[]),
        query,
        auth: fc.constantFrom<Case['auth']>('admin', 'admin', 'admin', 'robot', 'robot', 'none', 'bad-token'),
        body,
      });
    });
  }

  async function send(c: Case): Promise<{ status: number; text: string; path: string }> {
    let i = 0;
    const path =
      c.route.path.replace(/:([A-Za-z]+)/g, () => {
        const v = c.params[i++]!;
        return /%/.test(v) ? v : encodeURIComponent(v);
      }) + c.query;
    let raw: Uint8Array | undefined;
    const headers: Record<string, string> = {};
    if (c.body.kind === 'json') {
      raw = new TextEncoder().encode(JSON.stringify(c.body.value) ?? 'null');
      headers['content-type'] = 'application/json';
    } else if (c.body.kind === 'text') {
      raw = new TextEncoder().encode(c.body.text);
      headers['content-type'] = 'application/json';
    } else if (c.body.kind === 'bytes') {
      raw = c.body.bytes;
      headers['content-type'] = 'application/octet-stream';
    }
    if (c.auth === 'admin') headers.authorization = `Bearer ${token}`;
    if (c.auth === 'bad-token') headers.authorization = `Bearer ses_${'0'.repeat(24)}.${'A'.repeat(43)}`;
    if (c.auth === 'robot') {
      const url = new URL(path, 'http://localhost');
      // The signed fingerprint bounds the path at 4096 bytes: a robot cannot sign a longer one.
      const signable = url.pathname.length + url.search.length <= 4096;
      const signed = signable
        ? signRobotRequest({ method: c.route.method, path: url.pathname + url.search, body: raw ?? new Uint8Array(0), secretKey: robot.keys.secretKey, timestamp: server.clock.now })
        : { timestamp: server.clock.now, nonce: '0'.repeat(32), signature: new Uint8Array(2420) };
      headers[ROBOT_HEADERS.robot] = robot.id;
      headers[ROBOT_HEADERS.timestamp] = String(signed.timestamp);
      headers[ROBOT_HEADERS.nonce] = signed.nonce;
      headers[ROBOT_HEADERS.signature] = toBase64(signed.signature);
    }
    const res = await server.app.request(path, { method: c.route.method, headers, body: raw as Uint8Array<ArrayBuffer> | undefined });
    return { status: res.status, text: await res.text(), path };
  }

  it('fuzzes every route with random and mutated requests', async () => {
    const statuses = new Map<number, number>();
    const hit = new Set<string>();
    await fc.assert(
      fc.asyncProperty(caseArbitrary(), async (c) => {
        const res = await send(c);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        hit.add(`${c.route.method} ${c.route.path}`);
        if (res.status >= 500) throw new Error(`${c.route.method} ${res.path.slice(0, 200)} as ${c.auth} -> ${res.status} ${res.text.slice(0, 300)}`);
      }),
      { numRuns: RUNS, seed: process.env.TG_FUZZ_SEED ? Number(process.env.TG_FUZZ_SEED) : undefined },
    );
    console.log(JSON.stringify({ routeFuzz: { runs: RUNS, routes: routes.length, statuses: Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])) } }));
    // Every route was reached, and the fuzzer got past validation often enough to mean something.
    expect(routes.filter((r) => !hit.has(`${r.method} ${r.path}`) && !SLOW.has(`${r.method} ${r.path}`))).toEqual([]);
    expect([...statuses.keys()].some((s) => s >= 200 && s < 300)).toBe(true);
  });
});
