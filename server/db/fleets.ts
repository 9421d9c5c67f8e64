// Fleets and officer keys: repository functions (every query scoped by organization).
import { and, asc, eq } from 'drizzle-orm';
import { fleets, officerKeys } from './schema.ts';
import { isUniqueViolation, toBuffer, toBytes, type Executor } from './common.ts';
import type { Database } from './client.ts';
import { appendAudit, type AuditActor } from './audit.ts';
import { httpError } from '../http/errors.ts';
import { validateEnvelope, type Envelope } from '../../core/envelope.ts';

export interface FleetView {
  id: string;
  name: string;
  envelope: Envelope;
  dpEpsilonBudget: number | null;
  createdAt: number;
}

function fleetView(row: typeof fleets.$inferSelect): FleetView {
  return {
    id: row.id,
    name: row.name,
    envelope: validateEnvelope({ envelope: row.envelope }),
    dpEpsilonBudget: row.dpEpsilonBudget,
    createdAt: row.createdAt,
  };
}

export async function createFleet(options: {
  db: Database;
  orgId: string;
  actor: AuditActor;
  id: string;
  name: string;
  envelope: Envelope;
  dpEpsilonBudget: number | null;
  now: number;
}): Promise<FleetView> {
  const { db, now } = options;
  const row = { id: options.id, orgId: options.orgId, name: options.name, envelope: options.envelope, dpEpsilonBudget: options.dpEpsilonBudget, createdAt: now };
  try {
    await db.transaction(async (tx) => {
      await tx.insert(fleets).values(row).run();
      await appendAudit({
        db: tx,
        orgId: options.orgId,
        actor: options.actor,
        action: 'fleet.create',
        target: row.id,
        details: { name: row.name, envelope: row.envelope, dpEpsilonBudget: row.dpEpsilonBudget },
        now,
      });
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw httpError({ status: 409, code: 'fleet_exists', message: `fleet name ${JSON.stringify(options.name)} is taken` });
    throw error;
  }
  return fleetView(row);
}

export async function getFleet(options: { db: Executor; orgId: string; fleetId: string }): Promise<FleetView | null> {
  const row = await options.db
    .select()
    .from(fleets)
    .where(and(eq(fleets.orgId, options.orgId), eq(fleets.id, options.fleetId)))
    .get();
  return row ? fleetView(row) : null;
}

export async function listFleets(options: { db: Executor; orgId: string }): Promise<FleetView[]> {
  const rows = await options.db.select().from(fleets).where(eq(fleets.orgId, options.orgId)).orderBy(asc(fleets.createdAt)).all();
  return rows.map(fleetView);
}

export async function addOfficerKey(options: { db: Database; orgId: string; actor: AuditActor; id: string; publicKey: Uint8Array; now: number }) {
  const { db, now } = options;
  try {
    await db.transaction(async (tx) => {
      await tx
        .insert(officerKeys)
        .values({ id: options.id, orgId: options.orgId, publicKey: toBuffer(options.publicKey), createdBy: options.actor.id, createdAt: now })
        .run();
      await appendAudit({ db: tx, orgId: options.orgId, actor: options.actor, action: 'officer_key.add', target: options.id, details: { publicKeyBytes: options.publicKey.length }, now });
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw httpError({ status: 409, code: 'officer_key_exists', message: 'this officer key is already registered' });
    throw error;
  }
  return { id: options.id };
}

export async function listOfficerKeys(options: { db: Executor; orgId: string }) {
  const rows = await options.db.select().from(officerKeys).where(eq(officerKeys.orgId, options.orgId)).orderBy(asc(officerKeys.createdAt)).all();
  return rows.map((r) => ({ id: r.id, publicKey: toBytes(r.publicKey), createdBy: r.createdBy, createdAt: r.createdAt }));
}
