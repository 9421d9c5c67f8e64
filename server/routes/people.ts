// People: POST /bootstrap, POST /sessions, DELETE /sessions/current, GET /me, POST /users, GET /users.
import { Hono } from 'hono';
import { z } from 'zod';
import { AuthenticationError, NotFoundError } from '../../core/errors.ts';
import { ROLES, bootstrapOrganization, createSession, createUser, endSession, findUserByName, getOrganization, hasAnyUser, listUsers } from '../db/people.ts';
import { dummyPasswordHash, hashPassword, verifyPassword } from '../auth/password.ts';
import { newId, newToken } from '../auth/tokens.ts';
import { SESSION_TTL_MS, personOf, requireAuth } from '../http/auth.ts';
import { httpError } from '../http/errors.ts';
import { SMALL_JSON_LIMIT, limitBody, readJson } from '../http/body.ts';
import { LoginThrottle } from '../http/throttle.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';

export const userNameSchema = z.string().min(1).max(64).regex(/^[A-Za-z0-9._@+-]+$/, 'letters, digits and . _ @ + - only');
export const passwordSchema = z.string().min(8).max(1024);
const orgNameSchema = z.string().trim().min(1).max(128);

const BootstrapBody = z.strictObject({ org: orgNameSchema, user: userNameSchema, password: passwordSchema });
const LoginBody = z.strictObject({ user: z.string().min(1).max(64), password: z.string().min(1).max(1024) });
const CreateUserBody = z.strictObject({ user: userNameSchema, password: passwordSchema, roles: z.array(z.enum(ROLES)).min(1).max(ROLES.length) });

export function createPeopleRoutes(options: { deps: AppDeps }): Hono<AppEnv> {
  const { deps } = options;
  const routes = new Hono<AppEnv>();
  const small = limitBody({ maxSize: SMALL_JSON_LIMIT });
  const throttle = new LoginThrottle();

  async function issueSession(orgId: string, userId: string) {
    const now = deps.now();
    const { id, token, secretHash } = newToken({ prefix: 'ses' });
    const expiresAt = now + SESSION_TTL_MS;
    await createSession({ db: deps.db, id, orgId, userId, secretHash, now, expiresAt });
    return { token, expiresAt };
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
    const session = await issueSession(org.id, user.id);
    return c.json({ ...session, user, org }, 201);
  });

  routes.post('/sessions', small, async (c) => {
    const body = await readJson(c, LoginBody);
    throttle.check({ key: body.user, now: deps.now() });
    const user = await findUserByName({ db: deps.db, name: body.user });
    const ok = await verifyPassword({ password: body.password, hash: user?.passwordHash ?? (await dummyPasswordHash()) });
    if (!user || !ok || user.disabledAt !== null) {
      throttle.fail({ key: body.user, now: deps.now() });
      throw new AuthenticationError('wrong user name or password');
    }
    throttle.succeed({ key: body.user });
    const session = await issueSession(user.orgId, user.id);
    return c.json({ ...session, user: { id: user.id, name: user.name, roles: user.roles } }, 201);
  });

  routes.delete('/sessions/current', requireAuth({ deps, person: true }), async (c) => {
    const p = personOf(c);
    await endSession({ db: deps.db, id: p.sessionId, orgId: p.orgId, userId: p.userId, now: deps.now() });
    return c.body(null, 204);
  });

  routes.get('/me', requireAuth({ deps, person: true }), async (c) => {
    const p = personOf(c);
    const org = await getOrganization({ db: deps.db, orgId: p.orgId });
    if (!org) throw new NotFoundError('organization not found');
    return c.json({ user: { id: p.userId, name: p.userName, roles: p.roles }, org });
  });

  routes.post('/users', small, requireAuth({ deps, person: { roles: ['admin'] } }), async (c) => {
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

  return routes;
}
