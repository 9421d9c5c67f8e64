// HE key records: POST /he-keys (officer-signed BFV public key, version N+1), GET /he-keys (every
// version with its revocation and the rounds pinned to it), GET /he-keys/current, GET /he-keys/:version,
// POST /he-keys/:version/revoke (officer-signed revocation), GET /he-keys/revocations. The server checks
// signers against the organization's officer keys so it does not store junk, but robots verify key
// records and revocations against the officer keys they pinned themselves.
import { Hono } from 'hono';
import { z } from 'zod';
import { IntegrityError, NotFoundError } from '../../core/errors.ts';
import { equalBytes } from '../../core/bytes.ts';
import { openKeyRevocation } from '../../core/records/revocation.ts';
import { openKeyRecord } from '../../core/records/key-record.ts';
import { getParamSet } from '../../core/he/params.ts';
import { listOfficerKeys } from '../db/fleets.ts';
import { addHeKey, addKeyRevocation, getCurrentHeKey, getHeKey, getKeyRevocation, listHeKeyVersions, listKeyRevocations, type HeKeyView } from '../db/he-keys.ts';
import { newId } from '../auth/tokens.ts';
import { actorOf, requireAuth } from '../http/auth.ts';
import { MiB, SMALL_JSON_LIMIT, b64, base64Field, hex, limitBody, readJson } from '../http/body.ts';
import { httpError } from '../http/errors.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';

/** A key record holds a BFV public key (~64 KiB at N = 4096; records allow up to 1 MiB) in base64. */
const HE_KEY_BODY_LIMIT = 2 * MiB;

export const AddHeKeyBody = z.strictObject({ record: base64Field({ name: 'record', maxLength: HE_KEY_BODY_LIMIT }) });
export const RevokeBody = z.strictObject({ record: base64Field({ name: 'record', maxLength: 8 * 1024 }) });
const versionParam = z.coerce.number().int().min(1).max(0xffffffff);

function heKeyJson(k: HeKeyView, revokedAt: number | null) {
  return { version: k.version, record: b64(k.record), fingerprint: hex(k.fingerprint), paramSetId: k.paramSetId, createdAt: k.createdAt, revokedAt };
}

/** 409 `key_revoked` when the organization's key version carries an officer-signed revocation. */
export async function refuseRevokedKey(options: { deps: AppDeps; orgId: string; version: number }): Promise<void> {
  const revocation = await getKeyRevocation({ db: options.deps.db, orgId: options.orgId, version: options.version });
  if (revocation)
    throw httpError({ status: 409, code: 'key_revoked', message: `HE key version ${options.version} was revoked by an officer`, details: { version: options.version, revokedAt: revocation.revokedAt } });
}

export async function trustedOfficerKeys(options: { deps: AppDeps; orgId: string }): Promise<Uint8Array[]> {
  return (await listOfficerKeys({ db: options.deps.db, orgId: options.orgId })).map((k) => k.publicKey);
}

export function createHeKeyRoutes(options: { deps: AppDeps }): Hono<AppEnv> {
  const { deps } = options;
  const routes = new Hono<AppEnv>();

  routes.post('/he-keys', limitBody({ maxSize: HE_KEY_BODY_LIMIT }), requireAuth({ deps, person: { roles: ['officer'] }, reauth: true }), async (c) => {
    const orgId = c.get('principal').orgId;
    const body = await readJson(c, AddHeKeyBody);
    const opened = openKeyRecord({ bytes: body.record, trustedKeys: await trustedOfficerKeys({ deps, orgId }) });
    if (opened.record.orgId !== orgId) throw new IntegrityError('key record names another organization', { orgId: opened.record.orgId });
    getParamSet({ id: opened.record.paramSetId }); // IntegrityError for an unknown parameter set
    await addHeKey({
      db: deps.db,
      orgId,
      actor: actorOf(c),
      id: newId({ prefix: 'hek' }),
      version: opened.record.keyVersion,
      record: body.record,
      fingerprint: opened.fingerprint,
      paramSetId: opened.record.paramSetId,
      parmsId: opened.record.parmsId,
      now: deps.now(),
    });
    return c.json({ version: opened.record.keyVersion, fingerprint: hex(opened.fingerprint) }, 201);
  });

  routes.get('/he-keys', requireAuth({ deps, person: true }), async (c) => {
    const versions = await listHeKeyVersions({ db: deps.db, orgId: c.get('principal').orgId });
    return c.json(
      versions.map((v) => ({
        version: v.version,
        fingerprint: hex(v.fingerprint),
        paramSetId: v.paramSetId,
        createdAt: v.createdAt,
        revoked: v.revocation ? { revokedAt: v.revocation.revokedAt, reason: v.revocation.reason, fingerprint: hex(v.revocation.fingerprint) } : null,
        rounds: v.rounds,
      })),
    );
  });

  routes.get('/he-keys/revocations', requireAuth({ deps, person: true, robot: true }), async (c) => {
    const revocations = await listKeyRevocations({ db: deps.db, orgId: c.get('principal').orgId });
    return c.json(revocations.map((r) => ({ version: r.version, record: b64(r.record), fingerprint: hex(r.fingerprint), reason: r.reason, revokedAt: r.revokedAt })));
  });

  routes.get('/he-keys/current', requireAuth({ deps, person: true, robot: true }), async (c) => {
    const orgId = c.get('principal').orgId;
    const key = await getCurrentHeKey({ db: deps.db, orgId });
    if (!key) throw new NotFoundError('no HE key registered yet');
    return c.json(heKeyJson(key, (await getKeyRevocation({ db: deps.db, orgId, version: key.version }))?.revokedAt ?? null));
  });

  routes.get('/he-keys/:version', requireAuth({ deps, person: true, robot: true }), async (c) => {
    const orgId = c.get('principal').orgId;
    const version = versionParam.parse(c.req.param('version'));
    const key = await getHeKey({ db: deps.db, orgId, version });
    if (!key) throw new NotFoundError(`HE key version ${version} not found`);
    return c.json(heKeyJson(key, (await getKeyRevocation({ db: deps.db, orgId, version }))?.revokedAt ?? null));
  });

  // Checked in order: signature by a registered officer key (401), organization and version match the
  // request and the stored record's fingerprint (400 `integrity`), the key exists (404), not yet
  // revoked (409 `key_already_revoked`).
  routes.post('/he-keys/:version/revoke', limitBody({ maxSize: SMALL_JSON_LIMIT }), requireAuth({ deps, person: { roles: ['officer'] }, reauth: true }), async (c) => {
    const orgId = c.get('principal').orgId;
    const version = versionParam.parse(c.req.param('version'));
    const body = await readJson(c, RevokeBody);
    const opened = openKeyRevocation({ bytes: body.record, trustedKeys: await trustedOfficerKeys({ deps, orgId }) });
    const r = opened.record;
    if (r.orgId !== orgId) throw new IntegrityError('revocation names another organization', { orgId: r.orgId });
    if (r.keyVersion !== version) throw new IntegrityError(`revocation names key version ${r.keyVersion}, not ${version}`);
    const key = await getHeKey({ db: deps.db, orgId, version });
    if (!key) throw new NotFoundError(`HE key version ${version} not found`);
    if (!equalBytes(key.fingerprint, r.heKeyFingerprint)) throw new IntegrityError('revocation names another key record than the one stored for this version');
    const stored = await addKeyRevocation({
      db: deps.db,
      orgId,
      actor: actorOf(c),
      id: newId({ prefix: 'hkr' }),
      version,
      record: body.record,
      fingerprint: opened.fingerprint,
      reason: r.reason,
      revokedAt: r.revokedAt,
      now: deps.now(),
    });
    return c.json({ version, fingerprint: hex(stored.fingerprint), revokedAt: stored.revokedAt }, 201);
  });

  return routes;
}
