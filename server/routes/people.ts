// People: POST /bootstrap, POST /sessions, POST /sessions/reauth, DELETE /sessions/current, GET /me,
// POST /users, GET /users, PATCH /users/:id, POST /users/me/password.
// Bootstrap and sign-in return the token (for the CLI's Bearer header) and set it as the HttpOnly
// `tg_session` cookie (for the PWA, which never sees it); sign-out clears it. Role changes, disabling
// and password changes revoke the user's sessions; user creation and user changes need a recent
// password proof on the same session (server/http/auth.ts `reauth`).
//
// Audit leaves (the repositories append them in the change's transaction): org.bootstrap, user.create,
// session.create {reason}, session.delete, session.reauth, session.reauth_fail (wrong password on a
// signed-in session), user.roles {oldRoles, newRoles}, user.disable, user.enable, user.password, and
// user.lockout for the failure that locks an account (server/http/rate-limit.ts). A failed sign-in
// itself is a denial (server/audit/denials.ts `session.fail`, bounded per window).
import { Hono, type Context } from 'hono';
import { deleteCookie, setCookie } from 'hono/cookie';
import { z } from 'zod';
import { AuthenticationError, ForbiddenError, NotFoundError } from '../../core/errors.ts';
import { ROLES, bootstrapOrganization, createSession, createUser, endSession, findUserByName, getOrganization, hasAnyUser, listUsers } from '../db/people.ts';
import { dummyPasswordHash, hashPassword, verifyPassword } from '../auth/password.ts';
import { newId, newToken } from '../auth/tokens.ts';
import { SESSION_COOKIE, SESSION_TTL_MS, personOf, requireAuth } from '../http/auth.ts';
import { changePassword, getUserInOrg, recordLockout, recordPasswordProofFailure, recordReauth, updateUser } from '../db/session-security.ts';
import { checkSignin, clientAddress, failSignin, succeedSignin } from '../http/rate-limit.ts';
import { httpError } from '../http/errors.ts';
import { SMALL_JSON_LIMIT, idParam, limitBody, readJson, NO_BODY_LIMIT } from '../http/body.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';

export const userNameSchema = z.string().min(1).max(64).regex(/^[A-Za-z0-9._@+-]+$/, 'letters, digits and . _ @ + - only');
export const passwordSchema = z.string().min(8).max(1024);
const orgNameSchema = z.string().trim().min(1).max(128);

export const BootstrapBody = z.strictObject({ org: orgNameSchema, user: userNameSchema, password: passwordSchema });
export const LoginBody = z.strictObject({ user: z.string().min(1).max(64), password: z.string().min(1).max(1024) });
const rolesSchema = z.array(z.enum(ROLES)).min(1).max(ROLES.length);
export const CreateUserBody = z.strictObject({ user: userNameSchema, password: passwordSchema, roles: rolesSchema });
export const UpdateUserBody = z
  .strictObject({ roles: rolesSchema.optional(), disabled: z.boolean().optional() })
  .refine((b) => b.roles !== undefined || b.disabled !== undefined, 'give roles, disabled or both');
export const ReauthBody = z.strictObject({ password: z.string().min(1).max(1024) });
export const ChangePasswordBody = z.strictObject({ currentPassword: z.string().min(1).max(1024), newPassword: passwordSchema });


export function createPeopleRoutes(options: { deps: AppDeps }): Hono<AppEnv> {
  const { deps } = options;
  const routes = new Hono<AppEnv>();
  const small = limitBody({ maxSize: SMALL_JSON_LIMIT });

  /** A new session (a new token on every sign-in, ASVS 7.2.4), also set as the HttpOnly cookie. */
  async function issueSession(c: Context<AppEnv>, orgId: string, userId: string, reason: 'signin' | 'bootstrap' | 'password_change') {
    const now = deps.now();
    const { id, token, secretHash } = newToken({ prefix: 'ses' });
    const expiresAt = now + SESSION_TTL_MS;
    await createSession({ db: deps.db, id, orgId, userId, secretHash, now, expiresAt, reason });
    const https = new URL(c.req.url).protocol === 'https:' || (deps.trustProxy && c.req.header('x-forwarded-proto') === 'https');
    setCookie(c, SESSION_COOKIE, token, { httpOnly: true, sameSite: 'Lax', secure: deps.secureCookies || https, path: '/', expires: new Date(expiresAt) });
    return { token, expiresAt };
  }

  /** Counts a failed sign-in or password proof; the failure that locks the account is audited. */
  async function countFailure(c: Context<AppEnv>, userName: string, user: { id: string; orgId: string } | null): Promise<void> {
    const address = clientAddress(c, { trustProxy: deps.trustProxy });
    const result = await failSignin({ deps, user: userName, address });
    if (result.accountLocked && user)
      await recordLockout({ db: deps.db, orgId: user.orgId, userId: user.id, failures: result.accountFailures, lockedUntil: result.lockedUntil, now: deps.now() });
  }

  /**
   * The signed-in person's password again (re-authentication, password change): under the sign-in
   * lockout, and a wrong one is 401 `wrong_password` (not `unauthenticated`: the session itself is
   * fine, so the PWA keeps it), counted and audited.
   */
  async function proveCurrentPassword(c: Context<AppEnv>, password: string, purpose: 'reauth' | 'password_change'): Promise<void> {
    const p = personOf(c);
    await checkSignin({ deps, user: p.userName, address: clientAddress(c, { trustProxy: deps.trustProxy }) });
    const user = await getUserInOrg({ db: deps.db, orgId: p.orgId, userId: p.userId });
    if (user && (await verifyPassword({ password, hash: user.passwordHash }))) return;
    await recordPasswordProofFailure({ db: deps.db, orgId: p.orgId, userId: p.userId, sessionId: p.sessionId, purpose, now: deps.now() });
    await countFailure(c, p.userName, { id: p.userId, orgId: p.orgId });
    throw httpError({ status: 401, code: 'wrong_password', message: 'wrong password' });
  }

  routes.post('/bootstrap', small, async (c) => {
    const body = await readJson(c, BootstrapBody);
    // Cheap refusal before the expensive hash; the transaction re-checks (two racing bootstraps).
    if (await hasAnyUser({ db: deps.db })) throw httpError({ status: 409, code: 'already_bootstrapped', message: 'the server already has users' });
    const passwordHash = await hashPassword({ password: body.password });
    const { org, user } = await bootstrapOrganization({
      db: deps.db,
      orgId: newId({ prefix: 'org' }),
      orgName: body.org,
      userId: newId({ prefix: 'usr' }),
      userName: body.user,
      passwordHash,
      now: deps.now(),
    });
    const session = await issueSession(c, org.id, user.id, 'bootstrap');
    return c.json({ ...session, user, org }, 201);
  });

  routes.post('/sessions', small, async (c) => {
    const body = await readJson(c, LoginBody);
    const address = clientAddress(c, { trustProxy: deps.trustProxy });
    await checkSignin({ deps, user: body.user, address });
    const user = await findUserByName({ db: deps.db, name: body.user });
    const ok = await verifyPassword({ password: body.password, hash: user?.passwordHash ?? (await dummyPasswordHash()) });
    if (!user || !ok || user.disabledAt !== null) {
      await countFailure(c, body.user, user);
      throw new AuthenticationError('wrong user name or password');
    }
    await succeedSignin({ deps, user: body.user });
    const session = await issueSession(c, user.orgId, user.id, 'signin');
    return c.json({ ...session, user: { id: user.id, name: user.name, roles: user.roles } }, 201);
  });

  routes.delete('/sessions/current', limitBody({ maxSize: NO_BODY_LIMIT }), requireAuth({ deps, person: true }), async (c) => {
    const p = personOf(c);
    await endSession({ db: deps.db, id: p.sessionId, orgId: p.orgId, userId: p.userId, now: deps.now() });
    deleteCookie(c, SESSION_COOKIE, { path: '/' });
    return c.body(null, 204);
  });

  // Re-authentication: the password again, for the sensitive actions of the next 5 minutes.
  // The proof counts for this session only; a revoked or ended session's token is 401 before this runs.
  routes.post('/sessions/reauth', small, requireAuth({ deps, person: true }), async (c) => {
    const p = personOf(c);
    const body = await readJson(c, ReauthBody);
    await proveCurrentPassword(c, body.password, 'reauth');
    await succeedSignin({ deps, user: p.userName });
    const now = deps.now();
    await recordReauth({ db: deps.db, orgId: p.orgId, userId: p.userId, sessionId: p.sessionId, now });
    return c.json({ reauthAt: now });
  });

  // A new password ends every session of the user, this one included; the caller gets a new one.
  routes.post('/users/me/password', small, requireAuth({ deps, person: true }), async (c) => {
    const p = personOf(c);
    const body = await readJson(c, ChangePasswordBody);
    await proveCurrentPassword(c, body.currentPassword, 'password_change');
    await succeedSignin({ deps, user: p.userName });
    const passwordHash = await hashPassword({ password: body.newPassword });
    const revokedSessions = await changePassword({ db: deps.db, orgId: p.orgId, userId: p.userId, passwordHash, now: deps.now() });
    const session = await issueSession(c, p.orgId, p.userId, 'password_change');
    return c.json({ ...session, revokedSessions });
  });

  routes.get('/me', requireAuth({ deps, person: true }), async (c) => {
    const p = personOf(c);
    const org = await getOrganization({ db: deps.db, orgId: p.orgId });
    if (!org) throw new NotFoundError('organization not found');
    return c.json({ user: { id: p.userId, name: p.userName, roles: p.roles }, org });
  });

  routes.post('/users', small, requireAuth({ deps, person: { roles: ['admin'] }, reauth: true }), async (c) => {
    const p = personOf(c);
    const body = await readJson(c, CreateUserBody);
    const passwordHash = await hashPassword({ password: body.password });
    const user = await createUser({
      db: deps.db,
      orgId: p.orgId,
      actorId: p.userId,
      userId: newId({ prefix: 'usr' }),
      name: body.user,
      passwordHash,
      roles: body.roles,
      now: deps.now(),
    });
    return c.json(user, 201);
  });

  routes.get('/users', requireAuth({ deps, person: { roles: ['admin'] } }), async (c) => {
    const p = personOf(c);
    return c.json(await listUsers({ db: deps.db, orgId: p.orgId }));
  });

  // Roles and disabling; either revokes all of the user's sessions. An admin cannot disable themself,
  // and nobody can leave the organization without an active admin (409 `last_admin`, checked in the
  // transaction): an admin may drop their own admin role only while another active admin remains.
  routes.patch('/users/:id', small, requireAuth({ deps, person: { roles: ['admin'] }, reauth: true }), async (c) => {
    const p = personOf(c);
    const userId = idParam.parse(c.req.param('id'));
    const body = await readJson(c, UpdateUserBody);
    if (userId === p.userId && body.disabled === true) throw new ForbiddenError('an admin cannot disable themself; another admin can');
    const user = await updateUser({ db: deps.db, orgId: p.orgId, actorId: p.userId, userId, roles: body.roles, disabled: body.disabled, now: deps.now() });
    if (!user) throw new NotFoundError('user not found');
    // Dropping one's own admin role ended this session too: clear its cookie.
    if (userId === p.userId && user.revokedSessions > 0) deleteCookie(c, SESSION_COOKIE, { path: '/' });
    return c.json(user);
  });

  return routes;
}
