// Session lifecycle beyond create/end (server/db/people.ts): activity for the idle timeout, the time of
// the last password proof (re-authentication), revoking every session of a user, and the user changes
// that force it (roles, disable, password). Each change appends its audit leaf in its own transaction:
// user.roles, user.disable, user.enable, user.password, session.reauth, session.reauth_fail, user.lockout.
import { and, eq, inArray, isNull, ne } from 'drizzle-orm';
import { sessionActivity, sessions, users } from './schema.ts';
import type { Database } from './client.ts';
import type { Executor } from './common.ts';
import { appendAudit } from './audit.ts';
import type { Role, UserView } from './people.ts';
import { AuthenticationError, ForbiddenError } from '../../core/errors.ts';
import { httpError } from '../http/errors.ts';

export async function getSessionActivity(options: { db: Executor; sessionId: string }) {
  return (await options.db.select().from(sessionActivity).where(eq(sessionActivity.sessionId, options.sessionId)).get()) ?? null;
}

/** Records use (idle timeout) and, with `reauthAt`, a fresh password proof. */
export async function touchSession(options: { db: Database; sessionId: string; lastUsedAt: number; reauthAt?: number }): Promise<void> {
  await options.db.transaction(async (tx) => {
    await tx
      .insert(sessionActivity)
      .values({ sessionId: options.sessionId, lastUsedAt: options.lastUsedAt, reauthAt: options.reauthAt ?? 0 })
      .onConflictDoUpdate({ target: sessionActivity.sessionId, set: { lastUsedAt: options.lastUsedAt, ...(options.reauthAt !== undefined ? { reauthAt: options.reauthAt } : {}) } })
      .run();
  });
}

type Tx = Parameters<Parameters<Database['transaction']>[0]>[0];

async function revokeAll(tx: Tx, orgId: string, userId: string): Promise<number> {
  const rows = await tx.select({ id: sessions.id }).from(sessions).where(and(eq(sessions.orgId, orgId), eq(sessions.userId, userId))).all();
  if (rows.length === 0) return 0;
  const ids = rows.map((r) => r.id);
  await tx.delete(sessionActivity).where(inArray(sessionActivity.sessionId, ids)).run();
  await tx.delete(sessions).where(inArray(sessions.id, ids)).run();
  return ids.length;
}

export async function getUserInOrg(options: { db: Executor; orgId: string; userId: string }) {
  return (await options.db.select().from(users).where(and(eq(users.id, options.userId), eq(users.orgId, options.orgId))).get()) ?? null;
}

/** Same roles, whatever the order or repetition. */
function sameRoles(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((r) => sb.has(r));
}

/**
 * Changes a user's roles and/or disabled state (PATCH /v1/users/:id). Each real change revokes every
 * session of the user (ASVS 7.4.2: a role change or a disable takes effect on the next request, not at
 * the next sign-in) and appends its own leaf, actor = the admin, target = the user:
 *   user.roles    {name, oldRoles, newRoles, revokedSessions}
 *   user.disable  {name, revokedSessions}
 *   user.enable   {name, revokedSessions}
 * (roles first when both change; the second leaf's revokedSessions is then 0, the first already ended them).
 * Asking for the state the user already has changes, revokes and audits nothing.
 *
 * Inside the write transaction (so two admins acting at once cannot both pass): the actor must still be
 * an active admin of the organization (403 otherwise), and the organization keeps at least one active
 * admin (409 `last_admin`). Null when the user is not in the organization (another tenant's id: 404).
 */
export async function updateUser(options: {
  db: Database;
  orgId: string;
  actorId: string;
  userId: string;
  roles?: Role[];
  disabled?: boolean;
  now: number;
}): Promise<(UserView & { disabled: boolean; revokedSessions: number }) | null> {
  const { db, orgId, now } = options;
  return db.transaction(async (tx) => {
    const user = await tx.select().from(users).where(and(eq(users.id, options.userId), eq(users.orgId, orgId))).get();
    if (!user) return null;
    const actor = await tx.select().from(users).where(and(eq(users.id, options.actorId), eq(users.orgId, orgId))).get();
    if (!actor || actor.disabledAt !== null || !actor.roles.includes('admin')) throw new ForbiddenError('requires role admin (your roles changed meanwhile)');

    const oldRoles = user.roles as Role[];
    const newRoles = options.roles ? [...new Set(options.roles)] : oldRoles;
    const rolesChange = options.roles !== undefined && !sameRoles(oldRoles, newRoles);
    const wasDisabled = user.disabledAt !== null;
    const disabled = options.disabled ?? wasDisabled;
    const stateChange = disabled !== wasDisabled;
    const view = { id: user.id, name: user.name, createdAt: user.createdAt };
    if (!rolesChange && !stateChange) return { ...view, roles: oldRoles, disabled: wasDisabled, revokedSessions: 0 };

    const staysAdmin = newRoles.includes('admin') && !disabled;
    if (oldRoles.includes('admin') && !wasDisabled && !staysAdmin) {
      const others = await tx
        .select({ roles: users.roles })
        .from(users)
        .where(and(eq(users.orgId, orgId), isNull(users.disabledAt), ne(users.id, user.id)))
        .all();
      if (!others.some((u) => u.roles.includes('admin')))
        throw httpError({ status: 409, code: 'last_admin', message: 'this is the last active admin of the organization: make another user admin first' });
    }

    const actorRef = { type: 'user' as const, id: options.actorId };
    let revokedTotal = 0;
    if (rolesChange) {
      await tx.update(users).set({ roles: newRoles }).where(eq(users.id, user.id)).run();
      const revokedSessions = await revokeAll(tx, orgId, user.id);
      revokedTotal += revokedSessions;
      await appendAudit({ db: tx, orgId, actor: actorRef, action: 'user.roles', target: user.id, details: { name: user.name, oldRoles, newRoles, revokedSessions }, now });
    }
    if (stateChange) {
      await tx.update(users).set({ disabledAt: disabled ? now : null }).where(eq(users.id, user.id)).run();
      const revokedSessions = await revokeAll(tx, orgId, user.id);
      revokedTotal += revokedSessions;
      await appendAudit({ db: tx, orgId, actor: actorRef, action: disabled ? 'user.disable' : 'user.enable', target: user.id, details: { name: user.name, revokedSessions }, now });
    }
    return { ...view, roles: newRoles, disabled, revokedSessions: revokedTotal };
  });
}

/**
 * A password proved again on a session (POST /v1/sessions/reauth): sensitive actions of this session
 * only are allowed for the re-authentication window. Audited `session.reauth` (target = the session).
 */
export async function recordReauth(options: { db: Database; orgId: string; userId: string; sessionId: string; now: number }): Promise<void> {
  const { db, now } = options;
  await db.transaction(async (tx) => {
    // Only a session that still exists: a revoked session's late reauth must not resurrect an activity row.
    const live = await tx.select({ id: sessions.id }).from(sessions).where(and(eq(sessions.id, options.sessionId), eq(sessions.userId, options.userId))).get();
    if (!live) throw new AuthenticationError('session token is invalid or expired');
    await tx
      .insert(sessionActivity)
      .values({ sessionId: options.sessionId, lastUsedAt: now, reauthAt: now })
      .onConflictDoUpdate({ target: sessionActivity.sessionId, set: { lastUsedAt: now, reauthAt: now } })
      .run();
    await appendAudit({ db: tx, orgId: options.orgId, actor: { type: 'user', id: options.userId }, action: 'session.reauth', target: options.sessionId, details: { userId: options.userId }, now });
  });
}

/**
 * A wrong password on an authenticated session (re-authentication or a password change): audited
 * `session.reauth_fail` (target = the session). Bounded by the sign-in lockout, which counts these too.
 */
export async function recordPasswordProofFailure(options: { db: Database; orgId: string; userId: string; sessionId: string; purpose: 'reauth' | 'password_change'; now: number }): Promise<void> {
  await options.db.transaction(async (tx) => {
    await appendAudit({
      db: tx,
      orgId: options.orgId,
      actor: { type: 'user', id: options.userId },
      action: 'session.reauth_fail',
      target: options.sessionId,
      details: { userId: options.userId, purpose: options.purpose },
      now: options.now,
    });
  });
}

/**
 * The failed sign-in that used up an account's budget (server/http/rate-limit.ts): the account is
 * locked until `lockedUntil`. Audited `user.lockout`; the actor is the limiter, not the user, because
 * whoever typed the passwords is not known.
 */
export async function recordLockout(options: { db: Database; orgId: string; userId: string; failures: number; lockedUntil: number; now: number }): Promise<void> {
  await options.db.transaction(async (tx) => {
    await appendAudit({
      db: tx,
      orgId: options.orgId,
      actor: { type: 'system', id: 'signin-limiter' },
      action: 'user.lockout',
      target: options.userId,
      details: { failures: options.failures, lockedUntil: options.lockedUntil },
      now: options.now,
    });
  });
}

/**
 * Sets a new password hash and revokes every session of the user (the caller gets a new one), audited
 * `user.password` {revokedSessions} with the user as actor and target.
 */
export async function changePassword(options: { db: Database; orgId: string; userId: string; passwordHash: string; now: number }): Promise<number> {
  return options.db.transaction(async (tx) => {
    await tx.update(users).set({ passwordHash: options.passwordHash }).where(and(eq(users.id, options.userId), eq(users.orgId, options.orgId))).run();
    const revokedSessions = await revokeAll(tx, options.orgId, options.userId);
    await appendAudit({ db: tx, orgId: options.orgId, actor: { type: 'user', id: options.userId }, action: 'user.password', target: options.userId, details: { revokedSessions }, now: options.now });
    return revokedSessions;
  });
}
