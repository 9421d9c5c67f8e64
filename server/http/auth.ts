// Authentication and authorization middleware: people by session token, robots by signed requests.
//
// People: `Authorization: Bearer <token>` (CLI) or the HttpOnly `tg_session` cookie (PWA). Tokens follow
// the Lucia guidance (server/auth/tokens.ts): SHA-256 of the secret stored, constant-time compare.
// Timeouts (ASVS 7.3.1, 7.3.2): a session ends 30 minutes after its last use (idle) and 12 hours after
// sign-in (absolute), whichever comes first; use is recorded at most once a minute. Sensitive actions
// (`reauth: true`) need a password proof within the last 5 minutes (sign-in or POST /v1/sessions/reauth)
// and answer 403 `reauth_required` otherwise. A cookie request with an unsafe method must come from the
// same origin (`Sec-Fetch-Site: same-origin`, or an `Origin` equal to the request's): CSRF.
// Robots: headers x-tg-robot / x-tg-timestamp / x-tg-nonce / x-tg-signature; the ML-DSA-44 signature
// covers method, path+query, timestamp, nonce and SHA-256(body) (core/records/request-signature.ts).
// The server refuses a timestamp more than 5 minutes off and any nonce it has seen for that robot: an
// in-memory set (server/http/seen-nonces.ts) in front of the nonce table, written by group commit
// (server/db/write-batcher.ts) before the request proceeds.
// Every authenticated request spends the caller's rate budget (server/http/rate-limit.ts).
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import { AuthenticationError, ForbiddenError, ReplayError } from '../../core/errors.ts';
import { fromBase64 } from '../../core/bytes.ts';
import { ROBOT_HEADERS, verifyRobotRequest } from '../../core/records/request-signature.ts';
import { getSessionWithUser, type Role } from '../db/people.ts';
import { getSessionActivity, touchSession } from '../db/session-security.ts';
import { getRobotById } from '../db/robots.ts';
import { parseToken, secretMatches } from '../auth/tokens.ts';
import { httpError } from './errors.ts';
import { spendBudget } from './rate-limit.ts';
import type { AppDeps, AppEnv, PersonPrincipal, Principal, RobotPrincipal } from './context.ts';

export const SESSION_COOKIE = 'tg_session';
/** Absolute session lifetime from sign-in (ASVS 7.3.2). */
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;
/** Idle timeout (ASVS 7.3.1). */
export const SESSION_IDLE_MS = 30 * 60 * 1000;
/** How recent a password proof must be for a sensitive action. */
export const REAUTH_WINDOW_MS = 5 * 60 * 1000;
/** Session use is written at most this often (the idle timeout's resolution). */
const ACTIVITY_RESOLUTION_MS = 60 * 1000;
export const ROBOT_CLOCK_SKEW_MS = 5 * 60 * 1000;

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function bearerToken(c: Context): { token: string; viaCookie: boolean } | null {
  const header = c.req.header('authorization');
  if (header !== undefined) {
    const m = /^Bearer +(\S+)$/i.exec(header);
    if (!m) throw new AuthenticationError('Authorization header must be "Bearer <token>"');
    return { token: m[1]!, viaCookie: false };
  }
  const cookie = getCookie(c, SESSION_COOKIE);
  return cookie ? { token: cookie, viaCookie: true } : null;
}

export function checkSameOrigin(c: Context): void {
  if (SAFE_METHODS.has(c.req.method)) return;
  const site = c.req.header('sec-fetch-site');
  if (site !== undefined) {
    if (site === 'same-origin') return;
    throw new ForbiddenError('cookie-authenticated request from another site refused');
  }
  const origin = c.req.header('origin');
  if (origin !== undefined && origin === new URL(c.req.url).origin) return;
  throw new ForbiddenError('cookie-authenticated unsafe request needs Sec-Fetch-Site: same-origin or a matching Origin');
}

const EXPIRED = 'session token is invalid or expired';

async function authenticatePerson(c: Context, deps: AppDeps): Promise<(PersonPrincipal & { reauthAt: number }) | null> {
  const bearer = bearerToken(c);
  if (!bearer) return null;
  if (bearer.viaCookie) checkSameOrigin(c);
  const parsed = parseToken({ token: bearer.token });
  if (!parsed) throw new AuthenticationError(EXPIRED);
  const found = await getSessionWithUser({ db: deps.db, id: parsed.id });
  const now = deps.now();
  if (!found || !secretMatches({ secret: parsed.secret, secretHash: found.session.secretHash }) || found.session.expiresAt <= now) throw new AuthenticationError(EXPIRED);
  const activity = await getSessionActivity({ db: deps.db, sessionId: found.session.id });
  const lastUsedAt = activity?.lastUsedAt ?? found.session.createdAt;
  if (now - lastUsedAt > SESSION_IDLE_MS) throw new AuthenticationError(EXPIRED);
  if (now - lastUsedAt >= ACTIVITY_RESOLUTION_MS) await touchSession({ db: deps.db, sessionId: found.session.id, lastUsedAt: now });
  return {
    kind: 'person',
    orgId: found.orgId,
    userId: found.user.id,
    userName: found.user.name,
    roles: found.user.roles,
    sessionId: found.session.id,
    reauthAt: activity?.reauthAt ?? 0,
  };
}

const NONCE = /^[0-9a-f]{32}$/;
const TIMESTAMP = /^[0-9]{1,16}$/;

async function authenticateRobot(c: Context<AppEnv>, deps: AppDeps, budget: RobotBudget | undefined): Promise<RobotPrincipal | null> {
  const robotId = c.req.header(ROBOT_HEADERS.robot);
  if (robotId === undefined) return null;
  const timestampText = c.req.header(ROBOT_HEADERS.timestamp);
  const nonce = c.req.header(ROBOT_HEADERS.nonce);
  const signatureText = c.req.header(ROBOT_HEADERS.signature);
  if (timestampText === undefined || nonce === undefined || signatureText === undefined)
    throw new AuthenticationError(`robot requests need ${Object.values(ROBOT_HEADERS).join(', ')}`);
  if (!TIMESTAMP.test(timestampText)) throw new AuthenticationError(`${ROBOT_HEADERS.timestamp} must be milliseconds since the epoch`);
  if (!NONCE.test(nonce)) throw new AuthenticationError(`${ROBOT_HEADERS.nonce} must be 16 bytes of lowercase hex`);
  let signature: Uint8Array;
  try {
    signature = fromBase64(signatureText, ROBOT_HEADERS.signature);
  } catch {
    throw new AuthenticationError(`${ROBOT_HEADERS.signature} must be base64`);
  }
  const robot = await getRobotById({ db: deps.db, robotId });
  if (!robot || robot.revokedAt !== null) throw new AuthenticationError('unknown or revoked robot');
  const timestamp = Number(timestampText);
  const now = deps.now();
  if (Math.abs(now - timestamp) > ROBOT_CLOCK_SKEW_MS)
    throw new ReplayError(`request timestamp is more than ${ROBOT_CLOCK_SKEW_MS / 60000} minutes from the server clock`, { serverTime: now });
  // A replay of a request this instance served: refused before the signature check and any write.
  if (deps.seenNonces.has({ robotId, nonce, now })) throw replayed();
  const body = c.get('preReadBody') ?? new Uint8Array(await c.req.arrayBuffer());
  const url = new URL(c.req.url);
  verifyRobotRequest({ method: c.req.method, path: url.pathname + url.search, timestamp, nonce, body, signature, publicKey: robot.dsaPublicKey });
  // Only a correctly signed request may spend a nonce, so nobody else can burn a robot's nonces.
  const expiresAt = timestamp + ROBOT_CLOCK_SKEW_MS + 1;
  deps.seenNonces.add({ robotId, nonce, expiresAt });
  const [fresh] = await Promise.all([
    deps.batcher.recordNonce({ robotId, nonce, expiresAt }),
    spendBudget({ deps, key: `robot:${robotId}`, limit: deps.rateLimits.robotPerMinute, what: 'this robot is over its request budget' }),
    budget === 'contributions'
      ? spendBudget({ deps, key: `robot-contrib:${robotId}`, limit: deps.rateLimits.robotContributionsPerMinute, what: 'this robot is over its contribution budget' })
      : undefined,
  ]);
  if (!fresh) throw replayed();
  c.set('rawBody', body);
  return { kind: 'robot', orgId: robot.orgId, robotId: robot.id, fleetId: robot.fleetId, robot };
}

function replayed() {
  return httpError({ status: 401, code: 'replay', message: 'request nonce was already used' });
}

type RobotBudget = 'contributions';

function hasRole(principal: PersonPrincipal, roles: readonly Role[] | undefined): boolean {
  return !roles || roles.length === 0 || roles.some((r) => principal.roles.includes(r));
}

/**
 * Requires an authenticated caller of the given kinds. `roles`: a person must hold at least one
 * (403 otherwise). Robots are only accepted where `robot: true`; `robotBudget` names an extra
 * per-robot budget the route spends. `reauth`: a person must have proved the password within
 * REAUTH_WINDOW_MS, or `deps.reauthWindowMs` (TG_REAUTH_WINDOW_MS, refused in production), on this very
 * session (403 `reauth_required`).
 */
export function requireAuth(options: {
  deps: AppDeps;
  person?: boolean | { roles: readonly Role[] };
  robot?: boolean;
  robotBudget?: RobotBudget;
  reauth?: boolean;
}): MiddlewareHandler<AppEnv> {
  const { deps } = options;
  const personRoles = typeof options.person === 'object' ? options.person.roles : undefined;
  const allowPerson = options.person !== undefined && options.person !== false;
  return async (c, next) => {
    let principal: Principal | null = null;
    let reauthAt = 0;
    if (c.req.header(ROBOT_HEADERS.robot) !== undefined) {
      if (!options.robot) throw new ForbiddenError('this route is not available to robots');
      principal = await authenticateRobot(c, deps, options.robotBudget);
    } else {
      const person = await authenticatePerson(c, deps);
      if (person) {
        ({ reauthAt } = person);
        principal = { kind: 'person', orgId: person.orgId, userId: person.userId, userName: person.userName, roles: person.roles, sessionId: person.sessionId };
      }
    }
    if (!principal) throw new AuthenticationError('authentication required');
    // Set before the checks below, so a refused caller is still known to the denial audit (server/audit/).
    c.set('principal', principal);
    if (principal.kind === 'person') {
      await spendBudget({ deps, key: `user:${principal.userId}`, limit: deps.rateLimits.userPerMinute, what: 'too many requests for this user' });
      if (!allowPerson) throw new ForbiddenError('this route is for robots');
      if (!hasRole(principal, personRoles)) throw new ForbiddenError(`requires role ${personRoles!.join(' or ')}`);
      if (options.reauth && deps.now() - reauthAt > (deps.reauthWindowMs ?? REAUTH_WINDOW_MS))
        throw httpError({ status: 403, code: 'reauth_required', message: 'this action needs your password again: POST /v1/sessions/reauth' });
    }
    await next();
  };
}

export function personOf(c: Context<AppEnv>): PersonPrincipal {
  const p = c.get('principal');
  if (p.kind !== 'person') throw new ForbiddenError('this route is for people');
  return p;
}

export function robotOf(c: Context<AppEnv>): RobotPrincipal {
  const p = c.get('principal');
  if (p.kind !== 'robot') throw new ForbiddenError('this route is for robots');
  return p;
}

export function actorOf(c: Context<AppEnv>): { type: 'user' | 'robot'; id: string } {
  const p = c.get('principal');
  return p.kind === 'person' ? { type: 'user', id: p.userId } : { type: 'robot', id: p.robotId };
}
