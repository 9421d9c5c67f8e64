// `tensorguard robot validate` against a real server on a loopback port: a robot enrolled with the real
// `robot enroll` (bundle -> sealed keys in its home) validates through a safety session (one signed
// open, MACed requests) and with --signed, single and batch, and refuses bad arguments.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../../server/main.ts';
import { silentLogger } from '../../server/logger.ts';
import { createContext } from '../context.ts';
import { robotEnroll } from './robot.ts';
import { robotValidate } from './robot-validate.ts';
import { BUNDLE_FORMAT, encodeEnrollmentBundle } from '../../core/records/enrollment.ts';
import { randomBytes } from '../../core/random.ts';
import { generateSigningKeyPair } from '../../core/crypto/sign.ts';
import { TWO_LINK_CELL, twoLinkPose } from '../../core/safety/test-cell.ts';

const CELL = { ...TWO_LINK_CELL, obstacles: [] };
const pose = twoLinkPose;
const REQUEST = { cellId: 'line-1', trajectory: { waypoints: [0, 0.5, 1].map((s) => ({ t: s, joints: [-0.8 + 0.6 * s, 0.5], links: pose(-0.8 + 0.6 * s, 0.5) })) } };

describe('tensorguard robot validate', () => {
  let dir: string;
  let server: Awaited<ReturnType<typeof startServer>>;
  const ctx = () => createContext({ home: join(dir, 'robot-home'), json: true, passphrase: 'robot passphrase 1', quiet: true });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tg-robot-validate-'));
    server = await startServer({ port: 0, dataDir: join(dir, 'data'), logger: silentLogger });
    const call = async (method: string, path: string, body?: unknown, token?: string) => {
      const res = await fetch(server.url + path, { method, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
      expect(res.status, path).toBeLessThan(300);
      return res.json() as Promise<any>;
    };
    const admin = await call('POST', '/v1/bootstrap', { org: 'Acme', user: 'root', password: 'root password 1' });
    const fleet = await call('POST', '/v1/fleets', { name: 'arms' }, admin.token);
    await call('PUT', `/v1/fleets/${fleet.id}/cells/line-1`, CELL, admin.token);
    const token = await call('POST', `/v1/fleets/${fleet.id}/enrollment-tokens`, undefined, admin.token);
    const bundle = encodeEnrollmentBundle({
      bundle: { format: BUNDLE_FORMAT, serverUrl: server.url, orgId: admin.org.id, fleetId: fleet.id, bundleId: token.tokenId, token: token.token, attestKey: randomBytes(32), officerPublicKeys: [generateSigningKeyPair({ algorithm: 'ml-dsa-65' }).publicKey], expiresAt: Date.now() + 3_600_000 },
    });
    await writeFile(join(dir, 'bundle.json'), bundle);
    await robotEnroll(ctx(), { bundle: join(dir, 'bundle.json'), name: 'arm-1' });
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('validates through a safety session, single and batch, and with --signed', async () => {
    await writeFile(join(dir, 'one.json'), JSON.stringify(REQUEST));
    await writeFile(join(dir, 'batch.json'), JSON.stringify({ requests: [REQUEST, { ...REQUEST, requestId: 'b' }] }));
    const one = (await robotValidate(ctx(), { request: join(dir, 'one.json'), heartbeat: 'armed' })) as any;
    expect(one).toMatchObject({ auth: 'session', result: { decision: 'approve', cellId: 'line-1' } });
    expect(one.sessionExpiresAt).toBeGreaterThan(Date.now());
    const batch = (await robotValidate(ctx(), { request: join(dir, 'batch.json') })) as any;
    expect(batch.result).toMatchObject({ approved: 2, denied: 0 });
    const signed = (await robotValidate(ctx(), { request: join(dir, 'one.json'), signed: true })) as any;
    expect(signed).toMatchObject({ auth: 'signed', result: { decision: 'approve' } });
    const engaged = (await robotValidate(ctx(), { request: join(dir, 'one.json'), heartbeat: 'engaged' })) as any;
    expect(engaged.result.failed).toEqual(['emergency_stop']);
  }, 60_000);

  it('refuses bad arguments and reports the server\'s field-named 400', async () => {
    await writeFile(join(dir, 'bad.json'), '{"cellId":');
    await expect(robotValidate(ctx(), { request: join(dir, 'bad.json') })).rejects.toMatchObject({ code: 'bad_argument' });
    await expect(robotValidate(ctx(), { request: join(dir, 'one.json'), heartbeat: 'maybe' })).rejects.toMatchObject({ code: 'bad_argument' });
    await writeFile(join(dir, 'none.json'), JSON.stringify({ requests: [] }));
    await expect(robotValidate(ctx(), { request: join(dir, 'none.json') })).rejects.toMatchObject({ code: 'bad_argument' });
    await writeFile(join(dir, 'nofield.json'), JSON.stringify({ cellId: 'line-1' }));
    await expect(robotValidate(ctx(), { request: join(dir, 'nofield.json') })).rejects.toMatchObject({ status: 400, code: 'malformed' });
  }, 60_000);
});
