// Officer keys: POST /officer-keys (an officer registers its ML-DSA-65 public key), GET /officer-keys.
// These are the keys the server checks officer-signed records against; robots pin theirs out of band.
import { Hono } from 'hono';
import { z } from 'zod';
import { SIGNATURE_SIZES } from '../../core/crypto/sign.ts';
import { addOfficerKey, listOfficerKeys } from '../db/fleets.ts';
import { newId } from '../auth/tokens.ts';
import { actorOf, requireAuth } from '../http/auth.ts';
import { SMALL_JSON_LIMIT, b64, base64Field, limitBody, readJson } from '../http/body.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';

export const AddKeyBody = z.strictObject({ publicKey: base64Field({ name: 'publicKey', length: SIGNATURE_SIZES['ml-dsa-65'].publicKey }) });

export function createOfficerKeyRoutes(options: { deps: AppDeps }): Hono<AppEnv> {
  const { deps } = options;
  const routes = new Hono<AppEnv>();

  routes.post('/officer-keys', limitBody({ maxSize: SMALL_JSON_LIMIT }), requireAuth({ deps, person: { roles: ['officer'] } }), async (c) => {
    const body = await readJson(c, AddKeyBody);
    const result = await addOfficerKey({
      db: deps.db,
      orgId: c.get('principal').orgId,
      actor: actorOf(c),
      id: newId({ prefix: 'ofk' }),
      publicKey: body.publicKey,
      now: deps.now(),
    });
    return c.json(result, 201);
  });

  routes.get('/officer-keys', requireAuth({ deps, person: true, robot: true }), async (c) => {
    const keys = await listOfficerKeys({ db: deps.db, orgId: c.get('principal').orgId });
    return c.json(keys.map((k) => ({ id: k.id, publicKey: b64(k.publicKey), createdBy: k.createdBy, createdAt: k.createdAt })));
  });

  return routes;
}
