// Enrollment tokens, robots and robot request nonces: repository functions.
import { and, asc, eq, isNull, lt } from 'drizzle-orm';
import { enrollmentTokens, robotNonces, robots } from './schema.ts';
import { isUniqueViolation, toBuffer, toBytes, type Executor } from './common.ts';
import type { Database } from './client.ts';
import { appendAudit, type AuditActor } from './audit.ts';
import { httpError } from '../http/errors.ts';
import { AuthenticationError } from '../../core/errors.ts';

export interface RobotView {
  id: string;
  orgId: string;
  fleetId: string;
  name: string;
  enrollmentId: string;
  dsaPublicKey: Uint8Array;
  kemPublicKey: Uint8Array;
  attestation: Uint8Array;
  enrolledAt: number;
  revokedAt: number | null;
}

function robotView(r: typeof robots.$inferSelect): RobotView {
  return {
    id: r.id,
    orgId: r.orgId,
    fleetId: r.fleetId,
    name: r.name,
    enrollmentId: r.enrollmentId,
    dsaPublicKey: toBytes(r.dsaPublicKey),
    kemPublicKey: toBytes(r.kemPublicKey),
    attestation: toBytes(r.attestation),
    enrolledAt: r.enrolledAt,
    revokedAt: r.revokedAt,
  };
}

export async function createEnrollmentToken(options: {
  db: Database;
  orgId: string;
  fleetId: string;
  actor: AuditActor;
  id: string;
  secretHash: Uint8Array;
  now: number;
  expiresAt: number;
}): Promise<void> {
  const { db, now } = options;
  await db.transaction(async (tx) => {
    await tx
      .insert(enrollmentTokens)
      .values({ id: options.id, orgId: options.orgId, fleetId: options.fleetId, secretHash: toBuffer(options.secretHash), createdBy: options.actor.id, createdAt: now, expiresAt: options.expiresAt })
      .run();
    await appendAudit({ db: tx, orgId: options.orgId, actor: options.actor, action: 'enrollment_token.create', target: options.id, details: { fleetId: options.fleetId, expiresAt: options.expiresAt }, now });
  });
}

/**
 * Consumes an enrollment token and registers the robot in one transaction. `checkSecret` verifies the
 * token secret against the stored hash (constant time) before anything changes; a missing, expired,
 * used or wrong token is 401, and only one of two racing enrollments can win the token.
 */
export async function enrollRobot(options: {
  db: Database;
  tokenId: string;
  checkSecret: (secretHash: Uint8Array) => boolean;
  robotId: string;
  name: string;
  dsaPublicKey: Uint8Array;
  kemPublicKey: Uint8Array;
  attestation: Uint8Array;
  now: number;
}): Promise<RobotView> {
  const { db, now } = options;
  try {
    return await db.transaction(async (tx) => {
      const token = await tx.select().from(enrollmentTokens).where(eq(enrollmentTokens.id, options.tokenId)).get();
      if (!token || !options.checkSecret(toBytes(token.secretHash)) || token.usedAt !== null || token.expiresAt <= now)
        throw new AuthenticationError('enrollment token is invalid, expired or already used');
      const consumed = await tx
        .update(enrollmentTokens)
        .set({ usedAt: now })
        .where(and(eq(enrollmentTokens.id, token.id), isNull(enrollmentTokens.usedAt)))
        .run();
      if (consumed.rowsAffected !== 1) throw new AuthenticationError('enrollment token is invalid, expired or already used');
      const row = {
        id: options.robotId,
        orgId: token.orgId,
        fleetId: token.fleetId,
        name: options.name,
        enrollmentId: token.id,
        dsaPublicKey: toBuffer(options.dsaPublicKey),
        kemPublicKey: toBuffer(options.kemPublicKey),
        attestation: toBuffer(options.attestation),
        enrolledAt: now,
        revokedAt: null,
      };
      await tx.insert(robots).values(row).run();
      await appendAudit({
        db: tx,
        orgId: token.orgId,
        actor: { type: 'robot', id: row.id },
        action: 'robot.enroll',
        target: row.id,
        details: { fleetId: token.fleetId, name: row.name, enrollmentId: token.id },
        now,
      });
      return robotView(row);
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw new AuthenticationError('enrollment token is invalid, expired or already used');
    throw error;
  }
}

/** Robot ids are unique server-wide: request authentication looks a robot up by id alone. */
export async function getRobotById(options: { db: Executor; robotId: string }): Promise<RobotView | null> {
  const row = await options.db.select().from(robots).where(eq(robots.id, options.robotId)).get();
  return row ? robotView(row) : null;
}

export async function getRobot(options: { db: Executor; orgId: string; robotId: string }): Promise<RobotView | null> {
  const row = await options.db
    .select()
    .from(robots)
    .where(and(eq(robots.orgId, options.orgId), eq(robots.id, options.robotId)))
    .get();
  return row ? robotView(row) : null;
}

export async function listRobots(options: { db: Executor; orgId: string; fleetId?: string }): Promise<RobotView[]> {
  const where = options.fleetId ? and(eq(robots.orgId, options.orgId), eq(robots.fleetId, options.fleetId)) : eq(robots.orgId, options.orgId);
  const rows = await options.db.select().from(robots).where(where).orderBy(asc(robots.enrolledAt)).all();
  return rows.map(robotView);
}

export async function revokeRobot(options: { db: Database; orgId: string; robotId: string; actor: AuditActor; now: number }): Promise<boolean> {
  const { db, now } = options;
  return db.transaction(async (tx) => {
    const res = await tx
      .update(robots)
      .set({ revokedAt: now })
      .where(and(eq(robots.orgId, options.orgId), eq(robots.id, options.robotId), isNull(robots.revokedAt)))
      .run();
    if (res.rowsAffected !== 1) return false;
    await appendAudit({ db: tx, orgId: options.orgId, actor: options.actor, action: 'robot.revoke', target: options.robotId, now });
    return true;
  });
}

/**
 * Records a request nonce for a robot; throws 401 `replay` when it was seen before. Expired nonces of
 * the robot are pruned on the way (a nonce past its window can no longer pass the timestamp check).
 */
export async function recordRobotNonce(options: { db: Database; robotId: string; nonce: string; expiresAt: number; now: number }): Promise<void> {
  try {
    await options.db.transaction(async (tx) => {
      await tx.delete(robotNonces).where(and(eq(robotNonces.robotId, options.robotId), lt(robotNonces.expiresAt, options.now))).run();
      await tx.insert(robotNonces).values({ robotId: options.robotId, nonce: options.nonce, expiresAt: options.expiresAt }).run();
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw httpError({ status: 401, code: 'replay', message: 'request nonce was already used' });
    throw error;
  }
}
