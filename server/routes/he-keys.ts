// HE key records: POST /he-keys (officer-signed BFV public key, version N+1), GET /he-keys/current,
// GET /he-keys/:version. The server checks the signer against the organization's officer keys so it
// does not store junk, but robots verify the record against the officer keys they pinned themselves.
import { Hono } from 'hono';
import { z } from 'zod';
import { IntegrityError, NotFoundError } from '../../core/errors.ts';
import { openKeyRecord } from '../../core/records/key-record.ts';
import { getParamSet } from '../../core/he/params.ts';
import { listOfficerKeys } from '../db/fleets.ts';
import { addHeKey, getCurrentHeKey, getHeKey, type HeKeyView } from '../db/he-keys.ts';
import { newId } from '../auth/tokens.ts';
import { actorOf, requireAuth } from '../http/auth.ts';
import { MiB, b64, base64Field, hex, limitBody, readJson } from '../http/body.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';

/** A key record holds a BFV public key (~64 KiB at N = 4096; records allow up to 1 MiB) in base64. */
const HE_KEY_BODY_LIMIT = 2 * MiB;

const AddHeKeyBody = z.strictObject({ record: base64Field({ name: 'record', maxLength: HE_KEY_BODY_LIMIT }) });

function heKeyJson(k: HeKeyView) {
  return { version: k.version, record: b64(k.record), fingerprint: hex(k.fingerprint), paramSetId: k.paramSetId, createdAt: k.createdAt };
}

export async function trustedOfficerKeys(options: { deps: AppDeps; orgId: string }): Promise<Uint8Array[]> {
  return (await listOfficerKeys({ db: options.deps.db, orgId: options.orgId })).map((k) => k.publicKey);
}

export function createHeKeyRoutes(options: { deps: AppDeps }): Hono<AppEnv> {
  const { deps } = options;
  const routes = new Hono<AppEnv>();

  routes.post('/he-keys', limitBody({ maxSize: HE_KEY_BODY_LIMIT }), requireAuth({ deps, person: { roles: ['officer'] } }), async (c) => {
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

  routes.get('/he-keys/current', requireAuth({ deps, person: true, robot: true }), async (c) => {
    const key = await getCurrentHeKey({ db: deps.db, orgId: c.get('principal').orgId });
    if (!key) throw new NotFoundError('no HE key registered yet');
    return c.json(heKeyJson(key));
  });

  routes.get('/he-keys/:version', requireAuth({ deps, person: true, robot: true }), async (c) => {
    const version = z.coerce.number().int().min(1).max(0xffffffff).parse(c.req.param('version'));
    const key = await getHeKey({ db: deps.db, orgId: c.get('principal').orgId, version });
    if (!key) throw new NotFoundError(`HE key version ${version} not found`);
    return c.json(heKeyJson(key));
  });

  return routes;
}
