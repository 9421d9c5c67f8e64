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
// OpenAPI routes (@hono/zod-openapi): the schemas below validate the requests (after the body limit and
// authentication, as the route middleware lists them) and document them and the answers in
// GET /openapi.json (server/http/openapi-route.ts).
import type { Context } from 'hono';
import { deleteCookie, setCookie } from 'hono/cookie';
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { AuthenticationError, ForbiddenError, NotFoundError } from '../../core/errors.ts';
import { ROLES, type Role, bootstrapOrganization, createSession, createUser, endSession, findUserByName, getOrganization, hasAnyUser, listUsers } from '../db/people.ts';
import { dummyPasswordHash, hashPassword, verifyPassword } from '../auth/password.ts';
import { newId, newToken } from '../auth/tokens.ts';
import { SESSION_COOKIE, SESSION_TTL_MS, personOf, requireAuth } from '../http/auth.ts';
import { changePassword, getUserInOrg, recordLockout, recordPasswordProofFailure, recordReauth, updateUser } from '../db/session-security.ts';
import { checkSignin, clientAddress, failSignin, succeedSignin } from '../http/rate-limit.ts';
import { httpError } from '../http/errors.ts';
import { SMALL_JSON_LIMIT, idParam, limitBody, NO_BODY_LIMIT } from '../http/body.ts';
import { AUTH_ERRORS, BODY_ERRORS, createOpenApiRoutes, errorResponses, jsonBody, jsonResponse, security } from '../http/openapi-route.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';

export const userNameSchema = z.string().min(1).max(64).regex(/^[A-Za-z0-9._@+-]+$/, 'letters, digits and . _ @ + - only');
export const passwordSchema = z.string().min(8).max(1024);
const orgNameSchema = z.string().trim().min(1).max(128);

export const BootstrapBody = z.strictObject({ org: orgNameSchema, user: userNameSchema, password: passwordSchema }).openapi('Bootstrap');
export const LoginBody = z.strictObject({ user: z.string().min(1).max(64), password: z.string().min(1).max(1024) }).openapi('SignIn');
const rolesSchema = z.array(z.enum(ROLES)).min(1).max(ROLES.length);
export const CreateUserBody = z.strictObject({ user: userNameSchema, password: passwordSchema, roles: rolesSchema }).openapi('UserCreation');
export const UpdateUserBody = z
  .strictObject({ roles: rolesSchema.optional(), disabled: z.boolean().optional() })
  .refine((b) => b.roles !== undefined || b.disabled !== undefined, 'give roles, disabled or both')
  .openapi({ description: 'roles, disabled or both' });
export const ReauthBody = z.strictObject({ password: z.string().min(1).max(1024) }).openapi('Reauthentication');
export const ChangePasswordBody = z.strictObject({ currentPassword: z.string().min(1).max(1024), newPassword: passwordSchema }).openapi('PasswordChange');

// Answers (the handlers' c.json bodies are type-checked against these).
const RoleSchema = z.enum(ROLES);
export const UserSchema = z.object({ id: z.string(), name: z.string(), roles: z.array(RoleSchema), createdAt: z.number() }).openapi('User');
const UserListEntrySchema = UserSchema.extend({ disabled: z.boolean(), disabledAt: z.number().nullable() }).openapi('UserListEntry');
const OrganizationSchema = z.object({ id: z.string(), name: z.string() }).openapi('Organization');
const SessionUser = z.object({ id: z.string(), name: z.string(), roles: z.array(RoleSchema) });
const sessionFields = {
  token: z.string().openapi({ description: 'the session token (Authorization: Bearer); also set as the HttpOnly tg_session cookie' }),
  expiresAt: z.number(),
};
const UserIdParams = z.object({ id: idParam });

export function createPeopleRoutes(options: { deps: AppDeps }): OpenAPIHono<AppEnv> {
  const { deps } = options;
  const routes = createOpenApiRoutes();
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

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/bootstrap',
      tags: ['people'],
      summary: 'Create the organization and its first admin+officer (once)',
      description: 'Who may call it: anyone, while the server has no user. The answer sets the HttpOnly tg_session cookie.',
      security: [],
      middleware: [small] as const,
      request: { body: jsonBody(BootstrapBody) },
      responses: {
        201: jsonResponse('the organization, its first user and a session', z.object({ ...sessionFields, user: UserSchema, org: OrganizationSchema })),
        ...errorResponses({ ...BODY_ERRORS, 409: '`already_bootstrapped`: the server already has users' }),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
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
    },
  );

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/sessions',
      tags: ['people'],
      summary: 'Sign in: a new session token, also set as the HttpOnly tg_session cookie',
      description: 'Who may call it: anyone (rate limited per user name and per address; repeated failures lock the account for a while).',
      security: [],
      middleware: [small] as const,
      request: { body: jsonBody(LoginBody) },
      responses: {
        201: jsonResponse('signed in', z.object({ ...sessionFields, user: SessionUser })),
        ...errorResponses({ ...BODY_ERRORS, 401: '`unauthenticated`: wrong user name or password, or a disabled user', 429: true }),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
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
      return c.json({ ...session, user: { id: user.id, name: user.name, roles: user.roles as Role[] } }, 201);
    },
  );

  routes.openapi(
    createRoute({
      method: 'delete',
      path: '/sessions/current',
      tags: ['people'],
      summary: 'Sign out: end this session and clear the cookie',
      description: 'Who may call it: any signed-in person of the organization.',
      security: security({ person: true }),
      middleware: [limitBody({ maxSize: NO_BODY_LIMIT }), requireAuth({ deps, person: true })] as const,
      responses: { 204: { description: 'signed out' }, ...errorResponses({ ...AUTH_ERRORS, 413: true }) },
    }),
    async (c) => {
      const p = personOf(c);
      await endSession({ db: deps.db, id: p.sessionId, orgId: p.orgId, userId: p.userId, now: deps.now() });
      deleteCookie(c, SESSION_COOKIE, { path: '/' });
      return c.body(null, 204);
    },
  );

  // Re-authentication: the password again, for the sensitive actions of the next 5 minutes.
  // The proof counts for this session only; a revoked or ended session's token is 401 before this runs.
  routes.openapi(
    createRoute({
      method: 'post',
      path: '/sessions/reauth',
      tags: ['people'],
      summary: 'Prove the password again for the sensitive actions of the next 5 minutes',
      description: 'Who may call it: any signed-in person of the organization. The proof counts for this session only.',
      security: security({ person: true }),
      middleware: [small, requireAuth({ deps, person: true })] as const,
      request: { body: jsonBody(ReauthBody) },
      responses: {
        200: jsonResponse('re-authenticated', z.object({ reauthAt: z.number() })),
        ...errorResponses({ ...AUTH_ERRORS, ...BODY_ERRORS, 401: '`wrong_password` (the session stays valid), or not authenticated' }),
      },
    }),
    async (c) => {
      const p = personOf(c);
      const body = c.req.valid('json');
      await proveCurrentPassword(c, body.password, 'reauth');
      await succeedSignin({ deps, user: p.userName });
      const now = deps.now();
      await recordReauth({ db: deps.db, orgId: p.orgId, userId: p.userId, sessionId: p.sessionId, now });
      return c.json({ reauthAt: now }, 200);
    },
  );

  // A new password ends every session of the user, this one included; the caller gets a new one.
  routes.openapi(
    createRoute({
      method: 'post',
      path: '/users/me/password',
      tags: ['people'],
      summary: 'Change the own password; revokes every session, returns a new one',
      description: 'Who may call it: any signed-in person of the organization. The answer sets the new session as the HttpOnly tg_session cookie.',
      security: security({ person: true }),
      middleware: [small, requireAuth({ deps, person: true })] as const,
      request: { body: jsonBody(ChangePasswordBody) },
      responses: {
        200: jsonResponse('the new session', z.object({ ...sessionFields, revokedSessions: z.number().int() })),
        ...errorResponses({ ...AUTH_ERRORS, ...BODY_ERRORS, 401: '`wrong_password` (the session stays valid), or not authenticated' }),
      },
    }),
    async (c) => {
      const p = personOf(c);
      const body = c.req.valid('json');
      await proveCurrentPassword(c, body.currentPassword, 'password_change');
      await succeedSignin({ deps, user: p.userName });
      const passwordHash = await hashPassword({ password: body.newPassword });
      const revokedSessions = await changePassword({ db: deps.db, orgId: p.orgId, userId: p.userId, passwordHash, now: deps.now() });
      const session = await issueSession(c, p.orgId, p.userId, 'password_change');
      return c.json({ ...session, revokedSessions }, 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/me',
      tags: ['people'],
      summary: 'The signed-in user and organization',
      description: 'Who may call it: any signed-in person of the organization.',
      security: security({ person: true }),
      middleware: [requireAuth({ deps, person: true })] as const,
      responses: { 200: jsonResponse('the user and organization', z.object({ user: SessionUser, org: OrganizationSchema })), ...errorResponses({ ...AUTH_ERRORS, 404: 'organization not found' }) },
    }),
    async (c) => {
      const p = personOf(c);
      const org = await getOrganization({ db: deps.db, orgId: p.orgId });
      if (!org) throw new NotFoundError('organization not found');
      return c.json({ user: { id: p.userId, name: p.userName, roles: p.roles }, org }, 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/users',
      tags: ['people'],
      summary: 'Create a user (recent re-authentication)',
      description: 'Who may call it: admin, after POST /v1/sessions/reauth on this session within the last 5 minutes.',
      security: security({ person: true }),
      middleware: [small, requireAuth({ deps, person: { roles: ['admin'] }, reauth: true })] as const,
      request: { body: jsonBody(CreateUserBody) },
      responses: {
        201: jsonResponse('the user', UserSchema),
        ...errorResponses({ ...AUTH_ERRORS, ...BODY_ERRORS, 403: '`forbidden` (not an admin) or `reauth_required`', 409: '`user_exists`: the name is taken' }),
      },
    }),
    async (c) => {
      const p = personOf(c);
      const body = c.req.valid('json');
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
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/users',
      tags: ['people'],
      summary: 'List users',
      description: 'Who may call it: admin.',
      security: security({ person: true }),
      middleware: [requireAuth({ deps, person: { roles: ['admin'] } })] as const,
      responses: { 200: jsonResponse('the organization’s users, disabled ones included', z.array(UserListEntrySchema)), ...errorResponses(AUTH_ERRORS) },
    }),
    async (c) => {
      const p = personOf(c);
      return c.json(await listUsers({ db: deps.db, orgId: p.orgId }), 200);
    },
  );

  // Roles and disabling; either revokes all of the user's sessions. An admin cannot disable themself,
  // and nobody can leave the organization without an active admin (409 `last_admin`, checked in the
  // transaction): an admin may drop their own admin role only while another active admin remains.
  routes.openapi(
    createRoute({
      method: 'patch',
      path: '/users/{id}',
      tags: ['people'],
      summary: 'Change roles or disable; revokes the user’s sessions (recent re-authentication)',
      description: 'Who may call it: admin, after POST /v1/sessions/reauth on this session within the last 5 minutes.',
      security: security({ person: true }),
      middleware: [small, requireAuth({ deps, person: { roles: ['admin'] }, reauth: true })] as const,
      request: { params: UserIdParams, body: jsonBody(UpdateUserBody) },
      responses: {
        200: jsonResponse('the user after the change', UserSchema.extend({ disabled: z.boolean(), revokedSessions: z.number().int() })),
        ...errorResponses({
          ...AUTH_ERRORS,
          ...BODY_ERRORS,
          403: '`forbidden` (not an admin, or disabling oneself) or `reauth_required`',
          404: 'user not found (also for another organization’s user)',
          409: '`last_admin`: the organization would keep no active admin',
        }),
      },
    }),
    async (c) => {
      const p = personOf(c);
      const userId = c.req.valid('param').id;
      const body = c.req.valid('json');
      if (userId === p.userId && body.disabled === true) throw new ForbiddenError('an admin cannot disable themself; another admin can');
      const user = await updateUser({ db: deps.db, orgId: p.orgId, actorId: p.userId, userId, roles: body.roles, disabled: body.disabled, now: deps.now() });
      if (!user) throw new NotFoundError('user not found');
      // Dropping one's own admin role ended this session too: clear its cookie.
      if (userId === p.userId && user.revokedSessions > 0) deleteCookie(c, SESSION_COOKIE, { path: '/' });
      return c.json(user, 200);
    },
  );

  return routes;
}
