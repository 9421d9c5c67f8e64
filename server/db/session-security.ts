// Session lifecycle beyond create/end (server/db/people.ts): activity for the idle timeout, the time of
// the last password proof (re-authentication), revoking every session of a user, and the user changes
// that force it (roles, disable, password).
import { and, eq, inArray } from 'drizzle-orm';
import { sessionActivity, sessions, users } from './schema.ts';
import type { Database } from './client.ts';
import type { Executor } from './common.ts';
import { appendAudit } from './audit.ts';
import type { Role, UserView } from './people.ts';

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

/**
 * Changes a user's roles and/or disabled state and revokes all of that user's sessions (ASVS 7.4.2),
 * audited. Null when the user is not in the organization.
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
    const set: Partial<typeof users.$inferInsert> = {};
    if (options.roles) set.roles = [...new Set(options.roles)];
    if (options.disabled !== undefined) set.disabledAt = options.disabled ? (user.disabledAt ?? now) : null;
    await tx.update(users).set(set).where(eq(users.id, user.id)).run();
    const revokedSessions = await revokeAll(tx, orgId, user.id);
    await appendAudit({
      db: tx,
      orgId,
      actor: { type: 'user', id: options.actorId },
      action: 'user.update',
      target: user.id,
      details: { ...(options.roles ? { roles: set.roles } : {}), ...(options.disabled !== undefined ? { disabled: options.disabled } : {}), revokedSessions },
      now,
    });
    const roles = (set.roles ?? user.roles) as Role[];
    const disabledAt = set.disabledAt !== undefined ? set.disabledAt : user.disabledAt;
    return { id: user.id, name: user.name, roles, createdAt: user.createdAt, disabled: disabledAt !== null, revokedSessions };
  });
}

/** Sets a new password hash and revokes every session of the user (the caller gets a new one). */
export async function changePassword(options: { db: Database; orgId: string; userId: string; passwordHash: string; now: number }): Promise<number> {
  return options.db.transaction(async (tx) => {
    await tx.update(users).set({ passwordHash: options.passwordHash }).where(and(eq(users.id, options.userId), eq(users.orgId, options.orgId))).run();
    const revokedSessions = await revokeAll(tx, options.orgId, options.userId);
    await appendAudit({ db: tx, orgId: options.orgId, actor: { type: 'user', id: options.userId }, action: 'user.password', target: options.userId, details: { revokedSessions }, now: options.now });
    return revokedSessions;
  });
}
