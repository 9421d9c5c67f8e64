// `tensorguard officer promote|rollback|canary`: the deployment half of a release. The officer re-opens
// a release it signed (content key derived from its attestation root, core/registry/rollout.ts), and
// signs the next version with the same adapter wrapped for every attested robot — a promotion of a
// canary, or a rollback (kind rollback, rollbackOf = N) restoring version N's adapter.
import { randomUUID } from 'node:crypto';
import type { CommandContext } from '../context.ts';
import { CliError } from '../context.ts';
import { sessionClient } from '../session-client.ts';
import { fromBase64, toBase64, bytesToHex } from '../../core/bytes.ts';
import { nextReleaseVersion, type ReleaseRobot } from '../../core/round/release.ts';
import { buildStagedRelease, recoverReleaseFiles, rollbackSource } from '../../core/registry/rollout.ts';
import { loadOfficerSecrets } from './officer.ts';

interface RobotListItem {
  id: string;
  enrollmentId: string;
  dsaPublicKey: string;
  kemPublicKey: string;
  attestation: string;
  revokedAt?: number | null;
}

interface ReleaseListItem {
  releaseId: string;
  releaseVersion: number;
  kind: string;
}

function decodeRobots(robots: RobotListItem[]): ReleaseRobot[] {
  return robots.map((r) => ({ id: r.id, enrollmentId: r.enrollmentId, dsaPublicKey: fromBase64(r.dsaPublicKey), kemPublicKey: fromBase64(r.kemPublicKey), attestation: fromBase64(r.attestation), revokedAt: r.revokedAt }));
}

async function signStaged(ctx: CommandContext, opts: { kind: 'promotion' | 'rollback'; sourceReleaseId: string; fleetId?: string }) {
  const { api } = await sessionClient(ctx);
  const secrets = await loadOfficerSecrets(ctx);
  const source = await api.json<{ fleetId: string; manifest: string; payload: string }>('GET', `/v1/releases/${encodeURIComponent(opts.sourceReleaseId)}`);
  const fleetId = opts.fleetId ?? source.fleetId;
  const recovered = recoverReleaseFiles({ manifest: fromBase64(source.manifest), payload: fromBase64(source.payload), attestRoot: secrets.attestRoot, trustedKeys: [secrets.dsa.publicKey] });
  const robots = await api.json<RobotListItem[]>('GET', `/v1/robots?fleet=${encodeURIComponent(fleetId)}`);
  const releases = await api.json<ReleaseListItem[]>('GET', `/v1/releases?fleet=${encodeURIComponent(fleetId)}`);
  const staged = buildStagedRelease({
    kind: opts.kind,
    source: recovered,
    releaseId: randomUUID(),
    releaseVersion: nextReleaseVersion({ releases }),
    createdAt: Date.now(),
    robots: decodeRobots(robots),
    attestRoot: secrets.attestRoot,
    signer: secrets.dsa,
  });
  const path = opts.kind === 'promotion' ? `/v1/releases/${encodeURIComponent(opts.sourceReleaseId)}/promote` : `/v1/fleets/${encodeURIComponent(fleetId)}/rollback`;
  await api.json('POST', path, { manifest: toBase64(staged.manifest), payload: toBase64(staged.payload) });
  return {
    releaseId: staged.record.releaseId,
    releaseVersion: staged.record.releaseVersion,
    kind: staged.record.kind,
    rollbackOf: staged.record.rollbackOf,
    adapterSha256: bytesToHex(staged.record.adapterSha256),
    robots: staged.wrapped.length,
    skipped: staged.skipped,
  };
}

/** Promotes a canary release: the next version, same adapter, wrapped for every attested robot. */
export async function officerPromote(ctx: CommandContext, opts: { release: string }) {
  return { promoted: opts.release, ...(await signStaged(ctx, { kind: 'promotion', sourceReleaseId: opts.release })) };
}

/** Signs a rollback of a fleet to release version N: the next version restores N's adapter. */
export async function officerRollback(ctx: CommandContext, opts: { fleet: string; toVersion: number }) {
  const { api } = await sessionClient(ctx);
  const releases = await api.json<ReleaseListItem[]>('GET', `/v1/releases?fleet=${encodeURIComponent(opts.fleet)}`);
  let source: ReleaseListItem;
  try {
    source = rollbackSource({ releases, toVersion: opts.toVersion });
  } catch (e) {
    throw new CliError((e as Error).message, 'bad_version');
  }
  return signStaged(ctx, { kind: 'rollback', sourceReleaseId: source.releaseId, fleetId: opts.fleet });
}

/** The canary status of a release: robots, telemetry totals and the rollback triggers the server flags. */
export async function officerCanary(ctx: CommandContext, opts: { release: string }) {
  const { api } = await sessionClient(ctx);
  return api.json<unknown>('GET', `/v1/releases/${encodeURIComponent(opts.release)}/canary`);
}
