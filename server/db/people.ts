// Organizations, users and sessions: the repository functions the people routes use. Every change
// appends its audit leaf in the same transaction: org.bootstrap, user.create, session.create (with the
// reason: signin, bootstrap or password_change), session.delete (sign-out). Role changes, disabling,
// re-authentication and lockouts live in server/db/session-security.ts.
import { and, asc, eq, sql } from 'drizzle-orm';
import { organizations, sessionActivity, sessions, users } from './schema.ts';
import { isUniqueViolation, toBuffer, toBytes, type Executor } from './common.ts';
import type { Database } from './client.ts';
import { appendAudit } from './audit.ts';
import { httpError } from '../http/errors.ts';

export const ROLES = ['admin', 'officer', 'operator', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

export interface UserView {
  id: string;
  name: string;
  roles: Role[];
  createdAt: number;
}

function userView(row: typeof users.$inferSelect): UserView {
  return { id: row.id, name: row.name, roles: row.roles as Role[], createdAt: row.createdAt };
}

/**
 * Creates the first organization and its first user (roles admin + officer), atomically, only while
 * no user exists at all: a second bootstrap is 409 `already_bootstrapped`.
 */
export async function bootstrapOrganization(options: {
  db: Database;
  orgId: string;
  orgName: string;
  userId: string;
  userName: string;
  passwordHash: string;
  now: number;
}): Promise<{ org: { id: string; name: string }; user: UserView }> {
  const { db, now } = options;
  return db.transaction(async (tx) => {
    const existing = await tx.select({ n: sql<number>`count(*)` }).from(users).get();
    if ((existing?.n ?? 0) > 0) throw httpError({ status: 409, code: 'already_bootstrapped', message: 'the server already has users' });
    await tx.insert(organizations).values({ id: options.orgId, name: options.orgName, createdAt: now }).run();
    const row = { id: options.userId, orgId: options.orgId, name: options.userName, passwordHash: options.passwordHash, roles: ['admin', 'officer'], createdAt: now };
    await tx.insert(users).values(row).run();
    const actor = { type: 'user' as const, id: options.userId };
    await appendAudit({ db: tx, orgId: options.orgId, actor, action: 'org.bootstrap', target: options.orgId, details: { orgName: options.orgName, userName: options.userName }, now });
    return { org: { id: options.orgId, name: options.orgName }, user: userView({ ...row, disabledAt: null }) };
  });
}

export async function createUser(options: {
  db: Database;
  orgId: string;
  actorId: string;
  userId: string;
  name: string;
  passwordHash: string;
  roles: Role[];
  now: number;
}): Promise<UserView> {
  const { db, now } = options;
  const row = { id: options.userId, orgId: options.orgId, name: options.name, passwordHash: options.passwordHash, roles: [...new Set(options.roles)], createdAt: now };
  try {
    await db.transaction(async (tx) => {
      await tx.insert(users).values(row).run();
      await appendAudit({ db: tx, orgId: options.orgId, actor: { type: 'user', id: options.actorId }, action: 'user.create', target: row.id, details: { name: row.name, roles: row.roles }, now });
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw httpError({ status: 409, code: 'user_exists', message: `user name ${JSON.stringify(options.name)} is taken` });
    throw error;
  }
  return userView({ ...row, disabledAt: null });
}

export async function hasAnyUser(options: { db: Executor }): Promise<boolean> {
  return (await options.db.select({ id: users.id }).from(users).limit(1).get()) !== undefined;
}

/** Login lookup by name (names are unique across the server). */
export async function findUserByName(options: { db: Executor; name: string }) {
  return (await options.db.select().from(users).where(eq(users.name, options.name)).get()) ?? null;
}

/** A user as the admin's list shows it: the view plus whether (and since when) it is disabled. */
export interface UserListEntry extends UserView {
  disabled: boolean;
  disabledAt: number | null;
}

export async function listUsers(options: { db: Executor; orgId: string }): Promise<UserListEntry[]> {
  const rows = await options.db.select().from(users).where(eq(users.orgId, options.orgId)).orderBy(asc(users.createdAt), asc(users.id)).all();
  return rows.map((row) => ({ ...userView(row), disabled: row.disabledAt !== null, disabledAt: row.disabledAt }));
}

export async function getOrganization(options: { db: Executor; orgId: string }) {
  const row = await options.db.select().from(organizations).where(eq(organizations.id, options.orgId)).get();
  return row ? { id: row.id, name: row.name } : null;
}

export async function createSession(options: {
  db: Database;
  id: string;
  orgId: string;
  userId: string;
  secretHash: Uint8Array;
  now: number;
  expiresAt: number;
  /** Why the session exists (audited): a sign-in, the bootstrap, or the new session of a password change. */
  reason: 'signin' | 'bootstrap' | 'password_change';
}): Promise<void> {
  const { db, now } = options;
  await db.transaction(async (tx) => {
    await tx
      .insert(sessions)
      .values({ id: options.id, orgId: options.orgId, userId: options.userId, secretHash: toBuffer(options.secretHash), createdAt: now, expiresAt: options.expiresAt })
      .run();
    // Used now, and the password was proved now (the sign-in itself): sensitive actions need no re-auth yet.
    await tx.insert(sessionActivity).values({ sessionId: options.id, lastUsedAt: now, reauthAt: now }).run();
    await appendAudit({
      db: tx,
      orgId: options.orgId,
      actor: { type: 'user', id: options.userId },
      action: 'session.create',
      target: options.id,
      details: { userId: options.userId, reason: options.reason, expiresAt: options.expiresAt },
      now,
    });
  });
}

/** The session and its user, or null when either is gone or the user is disabled. */
export async function getSessionWithUser(options: { db: Executor; id: string }) {
  const row = await options.db
    .select({ session: sessions, user: users })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(eq(sessions.id, options.id))
    .get();
  if (!row || row.user.disabledAt !== null) return null;
  return { session: { ...row.session, secretHash: toBytes(row.session.secretHash) }, user: userView(row.user), orgId: row.user.orgId };
}

export async function extendSession(options: { db: Database; id: string; expiresAt: number }): Promise<void> {
  await options.db.transaction(async (tx) => {
    await tx.update(sessions).set({ expiresAt: options.expiresAt }).where(eq(sessions.id, options.id)).run();
  });
}

/** Sign-out: the session and its activity row go, audited `session.delete`. */
export async function endSession(options: { db: Database; id: string; orgId: string; userId: string; now: number }): Promise<void> {
  await options.db.transaction(async (tx) => {
    const gone = await tx
      .delete(sessions)
      .where(and(eq(sessions.id, options.id), eq(sessions.orgId, options.orgId), eq(sessions.userId, options.userId)))
      .returning({ id: sessions.id })
      .all();
    if (gone.length === 0) return; // ended meanwhile (revoked by a concurrent change): nothing to record
    await tx.delete(sessionActivity).where(eq(sessionActivity.sessionId, options.id)).run();
    await appendAudit({
      db: tx,
      orgId: options.orgId,
      actor: { type: 'user', id: options.userId },
      action: 'session.delete',
      target: options.id,
      details: { userId: options.userId, reason: 'signout' },
      now: options.now,
    });
  });
}
