// The command-safety benchmark: requests per second and p99 latency of POST /v1/safety/validate in its
// two forms — through a robot safety session (HMAC-SHA256 per request after one ML-DSA-signed open,
// server/http/robot-session.ts) and robot-signed per request (ML-DSA-44 verified, nonce recorded) —
// each running every check, against a trivial route (GET /healthz) on the same server over loopback,
// plus the batch form and the pure validator alone. The server runs in a child process so the load
// generator does not share its event loop; requests are signed or MACed before the clock starts (that
// is the robot's cost, not the server's). Prints one JSON document. DESIGN.md targets: >= 2,000 req/s,
// p99 < 20 ms on 2 cores.
//   npm run bench -- safety [--requests=N] [--concurrency=C] [--server-cpu-prof=DIR]
// --server-cpu-prof=DIR writes a V8 CPU profile of the server process (node --cpu-prof) to DIR.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import { fromBase64, toBase64 } from '../core/bytes.ts';
import { randomBytes } from '../core/random.ts';
import { generateSigningKeyPair } from '../core/crypto/sign.ts';
import { generateKemKeyPair, unwrapContentKey } from '../core/crypto/kem.ts';
import { ROBOT_HEADERS, signRobotRequest } from '../core/records/request-signature.ts';
import { SAFETY_SESSION_HEADERS, macSessionRequest, safetySessionContext } from '../core/records/safety-session.ts';
import { parseSafetyCell } from '../core/safety/cell.ts';
import { parseSafetyRequest } from '../core/safety/request.ts';
import { validateCommand } from '../core/safety/validate.ts';

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));


// ---------------------------------------------------------------------------------------------------------

const CELL = {
  name: 'bench',
  joints: Array.from({ length: 6 }, (_, i) => ({ name: `j${i}`, min: -3, max: 3, maxSpeed: 2 })),
  linkRadii: [0.08, 0.06, 0.06, 0.05],
  workspace: [{ name: 'table', planes: [[1, 0, 0, 1.2], [-1, 0, 0, 1.2], [0, 1, 0, 1.2], [0, -1, 0, 1.2], [0, 0, 1, 2], [0, 0, -1, 0]].map(([x, y, z, d]) => ({ normal: [x, y, z], offset: d })) }],
  obstacles: [
    { name: 'rack', shape: 'box', center: [0, 1, 0.5], halfExtents: [0.3, 0.1, 0.5], rotation: [Math.cos(0.2), 0, 0, Math.sin(0.2)] },
    { name: 'post', shape: 'capsule', a: [-0.9, -0.9, 0], b: [-0.9, -0.9, 1.5], radius: 0.05 },
    { name: 'lamp', shape: 'sphere', center: [0.8, -0.8, 1.6], radius: 0.1 },
    { name: 'bin', shape: 'box', center: [-0.8, 0.5, 0.2], halfExtents: [0.15, 0.2, 0.2] },
  ],
  robot: { movingMassKg: 25, maxPayloadKg: 5 },
  // Keep the bench's one heartbeat valid for the whole run.
  estop: { maxHeartbeatAgeMs: 3_600_000 },
};

/** A 10-waypoint motion of a 4-link arm (points base..tool), one person 2 m away. */
function requestBody(i: number) {
  const waypoints = Array.from({ length: 10 }, (_, k) => {
    const a = -0.6 + 0.08 * k + 0.001 * (i % 7);
    const pts: number[][] = [[0, 0, 0.3]];
    const lengths = [0.4, 0.35, 0.25, 0.1];
    let x = 0;
    let y = 0;
    for (const L of lengths) {
      x += L * Math.cos(a);
      y += L * Math.sin(a);
      pts.push([x, y, 0.3]);
    }
    return { t: 0.1 * k, joints: [a, 0, 0, 0, 0, 0], links: pts };
  });
  return { cellId: 'bench', requestId: `b-${i}`, trajectory: { waypoints }, payloadKg: 1, humans: [{ id: 'op', position: [-1.5, -1.5, 1], velocity: [0.2, 0.2, 0] }] };
}

interface Prepared {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

async function load(options: { port: number; requests: Prepared[]; concurrency: number }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  const latencies: number[] = [];
  let next = 0;
  let failures = 0;
  const statuses = new Map<number, number>();
  const one = (r: Prepared) =>
    new Promise<void>((resolve) => {
      const t = performance.now();
      const req = http.request({ host: '127.0.0.1', port: options.port, method: r.method, path: r.path, headers: r.headers, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          latencies.push(performance.now() - t);
          statuses.set(res.statusCode!, (statuses.get(res.statusCode!) ?? 0) + 1);
          if (res.statusCode! >= 300) failures++;
          resolve();
        });
      });
      req.on('error', () => {
        failures++;
        resolve();
      });
      req.end(r.body);
    });
  const started = performance.now();
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (next < options.requests.length) await one(options.requests[next++]!);
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requests: options.requests.length,
    concurrency: options.concurrency,
    requestsPerSecond: Math.round(options.requests.length / seconds),
    p50Ms: Number(percentile(latencies, 0.5).toFixed(2)),
    p99Ms: Number(percentile(latencies, 0.99).toFixed(2)),
    failures,
    statuses: Object.fromEntries(statuses),
  };
}

async function main(): Promise<void> {
  const requests = Number(args.get('requests') ?? 3000);
  const concurrency = Number(args.get('concurrency') ?? 16);
  const dir = await mkdtemp(join(tmpdir(), 'tg-bench-safety-'));
  const prof = args.get('server-cpu-prof');
  const child = spawn(process.execPath, [...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []), '--import', 'tsx', fileURLToPath(import.meta.url), `--serve=${dir}`], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    // The child answers one JSON line per line it is sent: first its port, then on "cpu" its CPU time.
    const lines: string[] = [];
    const waiting: Array<{ resolve: (line: string) => void; reject: (e: Error) => void }> = [];
    child.once('exit', (code) => {
      for (const w of waiting.splice(0)) w.reject(new Error(`server exited (${code})`));
    });
    let buf = '';
    child.stdout!.on('data', (d) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const w = waiting.shift();
        if (w) w.resolve(line);
        else lines.push(line);
      }
    });
    const nextLine = () => new Promise<string>((resolve, reject) => {
      const l = lines.shift();
      if (l !== undefined) return resolve(l);
      waiting.push({ resolve, reject });
    });
    const port = JSON.parse(await nextLine()).port as number;
    /** The server process's CPU time (user + system), microseconds. */
    const serverCpuUs = async () => {
      child.stdin!.write('cpu\n');
      return JSON.parse(await nextLine()).cpuUs as number;
    };
    /** One load run plus the server CPU it cost per request (robust to other load on the machine). */
    const measured = async (o: Parameters<typeof load>[0]) => {
      const before = await serverCpuUs();
      const r = await load(o);
      const cpu = (await serverCpuUs()) - before;
      return { ...r, serverCpuUsPerRequest: Math.round(cpu / o.requests.length), serverCapacityPerCore: Math.round((1e6 * o.requests.length) / cpu) };
    };
    const base = `http://127.0.0.1:${port}`;
    const json = async (method: string, path: string, body?: unknown, token?: string) => {
      const res = await fetch(base + path, { method, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
      const out = await res.json().catch(() => null);
      if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(out)}`);
      return out as any;
    };
    const admin = await json('POST', '/v1/bootstrap', { org: 'Bench', user: 'bench', password: 'bench-password-1' });
    const fleet = await json('POST', '/v1/fleets', { name: 'bench' }, admin.token);
    await json('PUT', `/v1/fleets/${fleet.id}/cells/bench`, CELL, admin.token);
    const token = await json('POST', `/v1/fleets/${fleet.id}/enrollment-tokens`, undefined, admin.token);
    const keys = generateSigningKeyPair({ algorithm: 'ml-dsa-44' });
    const kem = generateKemKeyPair();
    const robot = await json('POST', '/v1/enroll', { token: token.token, name: 'bench-robot', dsaPublicKey: toBase64(keys.publicKey), kemPublicKey: toBase64(kem.publicKey), attestation: toBase64(randomBytes(32)) });
    const signed = (path: string, body: unknown): Prepared => {
      const bytes = Buffer.from(JSON.stringify(body));
      const s = signRobotRequest({ method: 'POST', path, body: bytes, secretKey: keys.secretKey });
      return {
        method: 'POST',
        path,
        body: bytes,
        headers: { 'content-type': 'application/json', 'content-length': String(bytes.length), [ROBOT_HEADERS.robot]: robot.robotId, [ROBOT_HEADERS.timestamp]: String(s.timestamp), [ROBOT_HEADERS.nonce]: s.nonce, [ROBOT_HEADERS.signature]: toBase64(s.signature) },
      };
    };
    const hb = signed('/v1/robots/me/heartbeat', { estop: 'armed' });
    await load({ port, requests: [hb], concurrency: 1 });

    // A safety session: one signed open, the key unwrapped with the robot's ML-KEM secret key.
    const openReq = signed('/v1/safety/sessions', {});
    const opened = await fetch(base + openReq.path, { method: 'POST', headers: openReq.headers, body: new Uint8Array(openReq.body!) });
    if (opened.status !== 201) throw new Error(`POST /v1/safety/sessions: ${opened.status} ${await opened.text()}`);
    const session = (await opened.json()) as { sessionId: string; expiresAt: number; kemCiphertext: string; wrappedKey: string };
    const sessionKey = unwrapContentKey({ kemCiphertext: fromBase64(session.kemCiphertext), wrappedKey: fromBase64(session.wrappedKey), secretKey: kem.secretKey, context: safetySessionContext({ sessionId: session.sessionId, robotId: robot.robotId, expiresAt: session.expiresAt }) });
    let counter = 0;
    const macd = (path: string, body: unknown): Prepared => {
      const bytes = Buffer.from(JSON.stringify(body));
      const c = ++counter;
      return {
        method: 'POST',
        path,
        body: bytes,
        headers: {
          'content-type': 'application/json',
          'content-length': String(bytes.length),
          [SAFETY_SESSION_HEADERS.robot]: robot.robotId,
          [SAFETY_SESSION_HEADERS.session]: session.sessionId,
          [SAFETY_SESSION_HEADERS.counter]: String(c),
          [SAFETY_SESSION_HEADERS.mac]: macSessionRequest({ key: sessionKey, sessionId: session.sessionId, method: 'POST', path, counter: c, body: bytes }),
        },
      };
    };
    const tMac = performance.now();
    const sessionValidate = Array.from({ length: Math.max(requests * 2, 6000) + 500 }, (_, i) => macd('/v1/safety/validate', requestBody(i)));
    const macMs = (performance.now() - tMac) / sessionValidate.length;

    const tSign = performance.now();
    const validate = Array.from({ length: requests + 200 }, (_, i) => signed('/v1/safety/validate', requestBody(i)));
    const signMs = (performance.now() - tSign) / validate.length;
    const batchSize = 64;
    const batches = Array.from({ length: Math.max(20, Math.round(requests / batchSize)) + 5 }, (_, i) => signed('/v1/safety/validate/batch', { requests: Array.from({ length: batchSize }, (_, k) => requestBody(i * batchSize + k)) }));
    const trivial = Array.from({ length: Math.max(requests * 3, 5000) }, (): Prepared => ({ method: 'GET', path: '/healthz', headers: {} }));
    // The same robot authentication (signature, nonce record) without any safety work: GET /v1/robots/me.
    const authOnly = Array.from({ length: Math.round(requests / 2) + 100 }, (): Prepared => {
      const s = signRobotRequest({ method: 'GET', path: '/v1/robots/me', body: new Uint8Array(0), secretKey: keys.secretKey });
      return { method: 'GET', path: '/v1/robots/me', headers: { [ROBOT_HEADERS.robot]: robot.robotId, [ROBOT_HEADERS.timestamp]: String(s.timestamp), [ROBOT_HEADERS.nonce]: s.nonce, [ROBOT_HEADERS.signature]: toBase64(s.signature) } };
    });

    // Warm-up (JIT, connection pool), then the measured runs.
    await load({ port, requests: trivial.slice(0, 500), concurrency });
    await load({ port, requests: validate.slice(0, 200), concurrency });
    await load({ port, requests: batches.slice(0, 5), concurrency: 4 });
    await load({ port, requests: authOnly.slice(0, 100), concurrency });
    await load({ port, requests: sessionValidate.slice(0, 500), concurrency });
    const trivialResult = await measured({ port, requests: trivial, concurrency });
    const sessionResult = await measured({ port, requests: sessionValidate.slice(500), concurrency });
    const authResult = await measured({ port, requests: authOnly.slice(100), concurrency });
    const validateResult = await measured({ port, requests: validate.slice(200), concurrency });
    const batchResult = await measured({ port, requests: batches.slice(5), concurrency: 4 });

    // The validator alone (what the route adds to authentication and I/O).
    const cell = parseSafetyCell({ value: CELL });
    const bodies = Array.from({ length: 2000 }, (_, i) => requestBody(i));
    const heartbeat = { receivedAt: Date.now(), estop: 'armed' as const };
    // Warm-up until the JIT has settled (a 500-decision warm-up measured ~4x slower than steady state).
    for (let pass = 0; pass < 5; pass++) for (const b of bodies) validateCommand({ cell, request: parseSafetyRequest({ value: b, cell }), heartbeat, now: Date.now() });
    const t0 = performance.now();
    let approved = 0;
    for (const b of bodies) if (validateCommand({ cell, request: parseSafetyRequest({ value: b, cell }), heartbeat, now: Date.now() }).decision === 'approve') approved++;
    const coreSeconds = (performance.now() - t0) / 1000;

    process.stdout.write(
      JSON.stringify(
        {
          benchmark: 'safety',
          machine: { cpus: cpus().length, node: process.version },
          workload: { waypoints: 10, links: 4, joints: 6, obstacles: CELL.obstacles.length, humans: 1, decision: approved === bodies.length ? 'approve' : 'mixed' },
          trivialRoute: { route: 'GET /healthz', ...trivialResult },
          robotAuthOnly: { route: 'GET /v1/robots/me (robot-signed, no safety work)', ...authResult },
          validateSession: {
            route: 'POST /v1/safety/validate (safety session, HMAC-SHA256)',
            ...sessionResult,
            ratioToTrivial: Number((sessionResult.requestsPerSecond / trivialResult.requestsPerSecond).toFixed(3)),
            cpuRatioToTrivial: Number((sessionResult.serverCpuUsPerRequest / trivialResult.serverCpuUsPerRequest).toFixed(2)),
          },
          validate: { route: 'POST /v1/safety/validate (ML-DSA-44 signed per request)', ...validateResult, ratioToTrivial: Number((validateResult.requestsPerSecond / trivialResult.requestsPerSecond).toFixed(3)), ratioToRobotAuthOnly: Number((validateResult.requestsPerSecond / authResult.requestsPerSecond).toFixed(3)) },
          validateBatch: { route: 'POST /v1/safety/validate/batch', batchSize, ...batchResult, decisionsPerSecond: batchResult.requestsPerSecond * batchSize },
          validatorOnly: { decisionsPerSecond: Math.round(bodies.length / coreSeconds), microsecondsPerDecision: Number(((1e6 * coreSeconds) / bodies.length).toFixed(1)) },
          robotSigningMsPerRequest: Number(signMs.toFixed(2)),
          robotMacMsPerRequest: Number(macMs.toFixed(3)),
          targets: {
            requestsPerSecond: 2000,
            p99Ms: 20,
            metBySession: sessionResult.requestsPerSecond >= 2000 && sessionResult.p99Ms < 20,
            metBySigned: validateResult.requestsPerSecond >= 2000 && validateResult.p99Ms < 20,
          },
        },
        null,
        2,
      ) + '\n',
    );
  } finally {
    child.stdin!.end();
    await new Promise((r) => child.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Child: the server.
if (args.has('serve')) {
  const { startServer } = await import('../server/main.ts');
  const { silentLogger } = await import('../server/logger.ts');
  // One robot sends thousands of requests a second here: lift the per-robot and per-user budgets
  // (server/http/rate-limit.ts), which are counted all the same (the cost stays in the figures).
  const server = await startServer({ port: 0, host: '127.0.0.1', dataDir: args.get('serve')!, logger: silentLogger, rateLimits: { robotPerMinute: 1e9, userPerMinute: 1e9 } });
  process.stdout.write(JSON.stringify({ port: server.port }) + '\n');
  let pending = '';
  process.stdin.on('data', (d) => {
    pending += d;
    let i: number;
    while ((i = pending.indexOf('\n')) >= 0) {
      const command = pending.slice(0, i);
      pending = pending.slice(i + 1);
      if (command === 'cpu') {
        const u = process.cpuUsage();
        process.stdout.write(JSON.stringify({ cpuUs: u.user + u.system }) + '\n');
      }
    }
  });
  process.stdin.on('end', async () => {
    await server.close();
    process.exit(0);
  });
} else await main();
