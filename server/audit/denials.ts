// Audits denials (server/audit/service.ts bounds how many leaves they cost). Mounted once, before the
// routes: it looks at each finished request and, for a refusal, records who was refused and why.
//
//   403 by a signed-in person or an authenticated robot           -> access.denied
//   a robot's refused upload (POST /v1/rounds/:id/contributions)  -> contribution.refuse
//   401/403 naming an existing robot it could not authenticate as -> robot.auth_fail (unverified caller)
//   401/429 on POST /v1/sessions for an existing user name        -> session.fail
//
// Everything else (anonymous callers, unknown names, invalid tokens) names no organization and stays
// in the JSON log only. The lookups and the write happen after the response is decided, in the
// background, so refusals answer exactly as fast as before.
import type { Context, MiddlewareHandler } from 'hono';
import { TensorGuardError } from '../../core/errors.ts';
import { ROBOT_HEADERS } from '../../core/records/request-signature.ts';
import { findUserByName } from '../db/people.ts';
import { getRobotById } from '../db/robots.ts';
import type { AppDeps, AppEnv, Principal } from '../http/context.ts';
import type { Denial } from './service.ts';

const CONTRIBUTION_PATH = /^\/v1\/rounds\/([^/]{1,64})\/contributions$/;
const STATUS_CODES: Record<number, string> = { 401: 'unauthenticated', 403: 'forbidden', 404: 'not_found', 409: 'conflict', 413: 'oversize', 429: 'throttled' };

function errorCode(c: Context<AppEnv>, status: number): string {
  const e = c.error;
  if (e instanceof TensorGuardError) return e.code;
  return STATUS_CODES[status] ?? (status >= 400 && status < 500 ? 'malformed' : 'error');
}

export function auditDenials(options: { deps: AppDeps }): MiddlewareHandler<AppEnv> {
  const { deps } = options;
  return async (c, next) => {
    await next();
    const status = c.res.status;
    if (status < 400 || status >= 500) return;
    const method = c.req.method;
    const path = c.req.path.slice(0, 200);
    const principal = c.get('principal') as Principal | undefined;
    const code = errorCode(c, status);
    const contribution = method === 'POST' ? CONTRIBUTION_PATH.exec(path) : null;
    const now = deps.now();
    const record = (denial: Denial | (() => Promise<Denial | null>)) => deps.audit.denials.record({ db: deps.db, logger: deps.logger, denial, now });

    if (principal && contribution && principal.kind === 'robot') {
      record({
        orgId: principal.orgId,
        actor: { type: 'robot', id: principal.robotId },
        action: 'contribution.refuse',
        target: contribution[1]!,
        code,
        details: { status },
      });
      return;
    }
    if (principal && status === 403) {
      const actor = principal.kind === 'person' ? { type: 'user' as const, id: principal.userId } : { type: 'robot' as const, id: principal.robotId };
      record({ orgId: principal.orgId, actor, action: 'access.denied', target: `${method} ${path}`, code, details: { status } });
      return;
    }
    if (principal) return;

    const robotId = c.req.header(ROBOT_HEADERS.robot);
    if ((status === 401 || status === 403) && robotId !== undefined && robotId.length > 0 && robotId.length <= 64) {
      record(async () => {
        const robot = await getRobotById({ db: deps.db, robotId });
        if (!robot) return null;
        return { orgId: robot.orgId, actor: { type: 'robot', id: robot.id }, action: 'robot.auth_fail', target: `${method} ${path}`, code, details: { status, verified: false } };
      });
      return;
    }
    if ((status === 401 || status === 429) && method === 'POST' && path === '/v1/sessions') {
      let name: unknown;
      try {
        name = ((await c.req.json()) as { user?: unknown }).user; // hono caches the body the route parsed
      } catch {
        return;
      }
      if (typeof name !== 'string' || name.length === 0 || name.length > 64) return;
      record(async () => {
        const user = await findUserByName({ db: deps.db, name });
        if (!user) return null;
        return { orgId: user.orgId, actor: { type: 'user', id: user.id }, action: 'session.fail', target: user.id, code, details: { status } };
      });
    }
  };
}
