// Authentication and authorization middleware: people by session token, robots by signed requests.
//
// People: `Authorization: Bearer <token>` or the `tg_session` cookie (for the PWA). Tokens follow the
// Lucia guidance (server/auth/tokens.ts): SHA-256 of the secret stored, constant-time compare,
// sliding 10-day expiry. A cookie request with an unsafe method must come from the same origin
// (`Sec-Fetch-Site: same-origin`, or an `Origin` equal to the request's), so a cross-site form
// cannot ride the cookie (CSRF).
// Robots: headers x-tg-robot / x-tg-timestamp / x-tg-nonce / x-tg-signature; the ML-DSA-44 signature
// covers method, path+query, timestamp, nonce and SHA-256(body) (core/records/request-signature.ts).
// The server refuses a timestamp more than 5 minutes off and any nonce it has seen for that robot.
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import { AuthenticationError, ForbiddenError, ReplayError } from '../../core/errors.ts';
import { fromBase64 } from '../../core/bytes.ts';
import { ROBOT_HEADERS, verifyRobotRequest } from '../../core/records/request-signature.ts';
import { getSessionWithUser, extendSession, type Role } from '../db/people.ts';
import { getRobotById, recordRobotNonce } from '../db/robots.ts';
import { parseToken, secretMatches } from '../auth/tokens.ts';
import type { AppDeps, AppEnv, PersonPrincipal, Principal, RobotPrincipal } from './context.ts';

export const SESSION_COOKIE = 'tg_session';
export const SESSION_TTL_MS = 10 * 24 * 60 * 60 * 1000;
/** Sliding expiry: a session used in the second half of its life is extended to a full TTL. */
const SESSION_RENEW_BELOW_MS = SESSION_TTL_MS / 2;
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

function checkSameOrigin(c: Context): void {
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

async function authenticatePerson(c: Context, deps: AppDeps): Promise<PersonPrincipal | null> {
  const bearer = bearerToken(c);
  if (!bearer) return null;
  if (bearer.viaCookie) checkSameOrigin(c);
  const parsed = parseToken({ token: bearer.token });
  if (!parsed) throw new AuthenticationError('session token is invalid or expired');
  const found = await getSessionWithUser({ db: deps.db, id: parsed.id });
  const now = deps.now();
  if (!found || !secretMatches({ secret: parsed.secret, secretHash: found.session.secretHash }) || found.session.expiresAt <= now)
    throw new AuthenticationError('session token is invalid or expired');
  if (found.session.expiresAt - now < SESSION_RENEW_BELOW_MS)
    await extendSession({ db: deps.db, id: found.session.id, expiresAt: now + SESSION_TTL_MS });
  return { kind: 'person', orgId: found.orgId, userId: found.user.id, userName: found.user.name, roles: found.user.roles, sessionId: found.session.id };
}

const NONCE = /^[0-9a-f]{32}$/;
const TIMESTAMP = /^[0-9]{1,16}$/;

async function authenticateRobot(c: Context<AppEnv>, deps: AppDeps): Promise<RobotPrincipal | null> {
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
  const body = new Uint8Array(await c.req.arrayBuffer());
  const url = new URL(c.req.url);
  verifyRobotRequest({ method: c.req.method, path: url.pathname + url.search, timestamp, nonce, body, signature, publicKey: robot.dsaPublicKey });
  // Only a correctly signed request may spend a nonce, so nobody else can burn a robot's nonces.
  await recordRobotNonce({ db: deps.db, robotId, nonce, expiresAt: timestamp + ROBOT_CLOCK_SKEW_MS + 1, now });
  c.set('rawBody', body);
  return { kind: 'robot', orgId: robot.orgId, robotId: robot.id, fleetId: robot.fleetId, robot };
}

function hasRole(principal: PersonPrincipal, roles: readonly Role[] | undefined): boolean {
  return !roles || roles.length === 0 || roles.some((r) => principal.roles.includes(r));
}

/**
 * Requires an authenticated caller of the given kinds. `roles`: a person must hold at least one
 * (403 otherwise). Robots are only accepted where `robot: true`.
 */
export function requireAuth(options: { deps: AppDeps; person?: boolean | { roles: readonly Role[] }; robot?: boolean }): MiddlewareHandler<AppEnv> {
  const { deps } = options;
  const personRoles = typeof options.person === 'object' ? options.person.roles : undefined;
  const allowPerson = options.person !== undefined && options.person !== false;
  return async (c, next) => {
    let principal: Principal | null = null;
    if (c.req.header(ROBOT_HEADERS.robot) !== undefined) {
      if (!options.robot) throw new ForbiddenError('this route is not available to robots');
      principal = await authenticateRobot(c, deps);
    } else {
      principal = await authenticatePerson(c, deps);
    }
    if (!principal) throw new AuthenticationError('authentication required');
    // Set before the checks below, so a refused caller is still known to the denial audit (server/audit/).
    c.set('principal', principal);
    if (principal.kind === 'person' && !allowPerson) throw new ForbiddenError('this route is for robots');
    if (principal.kind === 'person' && !hasRole(principal, personRoles))
      throw new ForbiddenError(`requires role ${personRoles!.join(' or ')}`);
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
