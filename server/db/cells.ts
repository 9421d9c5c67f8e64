// Safety cells and robot heartbeats: repository functions (every query scoped by organization).
import { and, asc, eq } from 'drizzle-orm';
import { robotHeartbeats, safetyCells } from './schema.ts';
import type { Database } from './client.ts';
import type { Executor } from './common.ts';
import { appendAudit, type AuditActor } from './audit.ts';
import { parseSafetyCell, type SafetyCell } from '../../core/safety/cell.ts';
import type { EstopState } from '../../core/safety/validate.ts';

export interface CellView {
  fleetId: string;
  cellId: string;
  version: number;
  cell: SafetyCell;
  updatedBy: string;
  createdAt: number;
  updatedAt: number;
}

function cellView(row: typeof safetyCells.$inferSelect): CellView {
  return {
    fleetId: row.fleetId,
    cellId: row.cellId,
    version: row.version,
    cell: parseSafetyCell({ value: row.config }),
    updatedBy: row.updatedBy,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/** Creates or replaces a cell (version + 1), with its audit row, in one transaction. */
export async function putCell(options: { db: Database; orgId: string; fleetId: string; cellId: string; cell: SafetyCell; actor: AuditActor; id: string; now: number }): Promise<{ view: CellView; created: boolean }> {
  const { db, orgId, fleetId, cellId, cell, actor, now } = options;
  return db.transaction(async (tx) => {
    const existing = await tx
      .select()
      .from(safetyCells)
      .where(and(eq(safetyCells.orgId, orgId), eq(safetyCells.fleetId, fleetId), eq(safetyCells.cellId, cellId)))
      .get();
    const version = existing ? existing.version + 1 : 1;
    if (existing)
      await tx.update(safetyCells).set({ version, config: cell, updatedBy: actor.id, updatedAt: now }).where(eq(safetyCells.id, existing.id)).run();
    else await tx.insert(safetyCells).values({ id: options.id, orgId, fleetId, cellId, version, config: cell, updatedBy: actor.id, createdAt: now, updatedAt: now }).run();
    await appendAudit({ db: tx, orgId, actor, action: 'safety_cell.put', target: `${fleetId}/${cellId}`, details: { version, cell }, now });
    return {
      view: { fleetId, cellId, version, cell, updatedBy: actor.id, createdAt: existing?.createdAt ?? now, updatedAt: now },
      created: !existing,
    };
  });
}

export async function getCell(options: { db: Executor; orgId: string; fleetId: string; cellId: string }): Promise<CellView | null> {
  const row = await options.db
    .select()
    .from(safetyCells)
    .where(and(eq(safetyCells.orgId, options.orgId), eq(safetyCells.fleetId, options.fleetId), eq(safetyCells.cellId, options.cellId)))
    .get();
  return row ? cellView(row) : null;
}

export async function listCells(options: { db: Executor; orgId: string; fleetId: string }): Promise<CellView[]> {
  const rows = await options.db
    .select()
    .from(safetyCells)
    .where(and(eq(safetyCells.orgId, options.orgId), eq(safetyCells.fleetId, options.fleetId)))
    .orderBy(asc(safetyCells.cellId))
    .all();
  return rows.map(cellView);
}

export async function deleteCell(options: { db: Database; orgId: string; fleetId: string; cellId: string; actor: AuditActor; now: number }): Promise<boolean> {
  const { db, orgId, fleetId, cellId, actor, now } = options;
  return db.transaction(async (tx) => {
    const existing = await tx
      .select()
      .from(safetyCells)
      .where(and(eq(safetyCells.orgId, orgId), eq(safetyCells.fleetId, fleetId), eq(safetyCells.cellId, cellId)))
      .get();
    if (!existing) return false;
    await tx.delete(safetyCells).where(eq(safetyCells.id, existing.id)).run();
    await appendAudit({ db: tx, orgId, actor, action: 'safety_cell.delete', target: `${fleetId}/${cellId}`, details: { version: existing.version }, now });
    return true;
  });
}

export interface HeartbeatRow {
  robotId: string;
  fleetId: string;
  estop: EstopState;
  robotTime: number | null;
  receivedAt: number;
}

/** Persists a heartbeat; an e-stop state change also appends an audit row. */
export async function saveHeartbeat(options: { db: Database; orgId: string; heartbeat: HeartbeatRow; previous: EstopState | null }): Promise<void> {
  const { db, orgId, heartbeat, previous } = options;
  await db.transaction(async (tx) => {
    await tx
      .insert(robotHeartbeats)
      .values({ ...heartbeat, orgId })
      .onConflictDoUpdate({ target: robotHeartbeats.robotId, set: { estop: heartbeat.estop, robotTime: heartbeat.robotTime, receivedAt: heartbeat.receivedAt } })
      .run();
    if (previous !== heartbeat.estop)
      await appendAudit({ db: tx, orgId, actor: { type: 'robot', id: heartbeat.robotId }, action: 'robot.estop', target: heartbeat.robotId, details: { from: previous, to: heartbeat.estop }, now: heartbeat.receivedAt });
  });
}

export async function getHeartbeat(options: { db: Executor; orgId: string; robotId: string }): Promise<HeartbeatRow | null> {
  const row = await options.db
    .select()
    .from(robotHeartbeats)
    .where(and(eq(robotHeartbeats.orgId, options.orgId), eq(robotHeartbeats.robotId, options.robotId)))
    .get();
  return row ? { robotId: row.robotId, fleetId: row.fleetId, estop: row.estop as EstopState, robotTime: row.robotTime, receivedAt: row.receivedAt } : null;
}

export async function listHeartbeats(options: { db: Executor; orgId: string; fleetId: string }): Promise<HeartbeatRow[]> {
  const rows = await options.db
    .select()
    .from(robotHeartbeats)
    .where(and(eq(robotHeartbeats.orgId, options.orgId), eq(robotHeartbeats.fleetId, options.fleetId)))
    .orderBy(asc(robotHeartbeats.robotId))
    .all();
  return rows.map((r) => ({ robotId: r.robotId, fleetId: r.fleetId, estop: r.estop as EstopState, robotTime: r.robotTime, receivedAt: r.receivedAt }));
}

/** Appends the audit rows of denied safety decisions (one transaction for a batch). */
export async function auditSafetyDenials(options: { db: Database; orgId: string; robotId: string; denials: Array<{ target: string; details: Record<string, unknown> }>; now: number }): Promise<void> {
  const { db, orgId, robotId, denials, now } = options;
  if (denials.length === 0) return;
  await db.transaction(async (tx) => {
    for (const d of denials) await appendAudit({ db: tx, orgId, actor: { type: 'robot', id: robotId }, action: 'safety.deny', target: d.target, details: d.details, now });
  });
}
