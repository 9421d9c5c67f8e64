// Customer evaluation models of a fleet (OpenAPI routes, @hono/zod-openapi):
//   POST /evaluation-models                    officer: register {record, model, scenarios} (base64)
//   GET  /evaluation-models?fleet=             officer/admin/auditor: a fleet's models, newest first, `active` marked
//   GET  /evaluation-models/:id                officer/admin/auditor: one model with its signed record
//   GET  /evaluation-models/:id/model          officer: the ONNX bytes
//   GET  /evaluation-models/:id/scenarios      officer: the scenario set ciphertext (AES-256-GCM; the server has no key)
//   POST /evaluation-models/:id/retire         officer: {reason}; the model stops being the fleet's active one
// Registration checks what the server can check without any secret: the record's ML-DSA-65 signature by a
// registered officer key of the organization, its org and fleet, and that both blobs are the ones the
// record names (SHA-256 and size). The officer re-checks all of it at review against the key it pinned
// (core/records/eval-model.ts), so a server that swaps a blob or a record is caught there too. Robots
// have no access; every change appends an audit leaf (server/db/evaluation-models.ts).
import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { IntegrityError, NotFoundError } from '../../core/errors.ts';
import { bytesToHex, toBase64 } from '../../core/bytes.ts';
import { sha256 } from '../../core/codec/fingerprint.ts';
import { openEvalModelRecord, verifyEvalModelBlobs } from '../../core/records/eval-model.ts';
import { MAX_EVAL_MODEL_BYTES } from '../../core/eval/customer-contract.ts';
import { MAX_SCENARIO_SET_BYTES } from '../../core/eval/customer-scenarios.ts';
import { createEvaluationModel, getEvaluationModel, listEvaluationModels, retireEvaluationModel, type EvaluationModelView } from '../db/evaluation-models.ts';
import { getFleet } from '../db/fleets.ts';
import { newId } from '../auth/tokens.ts';
import { actorOf, requireAuth } from '../http/auth.ts';
import { KiB, SMALL_JSON_LIMIT, base64Field, idParam, limitBody } from '../http/body.ts';
import { httpError } from '../http/errors.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';
import { trustedOfficerKeys } from './he-keys.ts';

const READERS = ['officer', 'admin', 'auditor'] as const;
const MAX_RECORD_BYTES = 256 * KiB;
const MAX_SEALED_BYTES = MAX_SCENARIO_SET_BYTES + 28;
/** The three base64 fields of a registration, plus JSON framing. */
const REGISTER_BODY_LIMIT = Math.ceil(((MAX_RECORD_BYTES + MAX_EVAL_MODEL_BYTES + MAX_SEALED_BYTES) * 4) / 3) + 4 * KiB;

const ErrorBody = z.object({ error: z.object({ code: z.string(), message: z.string() }) }).openapi('Error');
const errors = {
  400: { description: 'malformed request', content: { 'application/json': { schema: ErrorBody } } },
  401: { description: 'not authenticated', content: { 'application/json': { schema: ErrorBody } } },
  403: { description: 'role missing', content: { 'application/json': { schema: ErrorBody } } },
  404: { description: 'not found', content: { 'application/json': { schema: ErrorBody } } },
} as const;

const Hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const EvaluationModel = z
  .object({
    id: z.string(),
    fleetId: z.string(),
    name: z.string(),
    fingerprint: Hex64.openapi({ description: 'fingerprint of the officer-signed record (domain eval-model/v1)' }),
    signerKeySha256: Hex64,
    modelSha256: Hex64,
    modelBytes: z.number().int(),
    scenariosSha256: Hex64.openapi({ description: 'SHA-256 of the scenario set ciphertext' }),
    scenariosBytes: z.number().int(),
    state: z.enum(['active', 'registered', 'retired']).openapi({ description: "active: the fleet's newest model not retired (reviews use it by default)" }),
    createdBy: z.string(),
    createdAt: z.number(),
    retiredBy: z.string().nullable(),
    retiredAt: z.number().nullable(),
    retireReason: z.string().nullable(),
  })
  .openapi('EvaluationModel');
const EvaluationModelWithRecord = EvaluationModel.extend({ record: z.string().openapi({ description: 'the signed record, base64' }) }).openapi('EvaluationModelWithRecord');
const RegisterBody = z
  .strictObject({
    record: base64Field({ name: 'record', maxLength: MAX_RECORD_BYTES }).openapi({ type: 'string', description: 'signed evaluation model record (core/records/eval-model.ts), base64' }),
    model: base64Field({ name: 'model', maxLength: MAX_EVAL_MODEL_BYTES }).openapi({ type: 'string', description: 'the ONNX model, base64' }),
    scenarios: base64Field({ name: 'scenarios', maxLength: MAX_SEALED_BYTES }).openapi({ type: 'string', description: 'the scenario set ciphertext, base64' }),
  })
  .openapi('EvaluationModelRegistration');
const RetireBody = z.strictObject({ reason: z.string().trim().min(1).max(2000) }).openapi('EvaluationModelRetirement');
const IdParams = z.object({ id: idParam });
const FleetQuery = z.object({ fleet: idParam });
const Binary = { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } };

type State = 'active' | 'registered' | 'retired';
function summary(m: EvaluationModelView, state: State) {
  const { record: _r, ...rest } = m;
  return { ...rest, state };
}

async function stateOf(options: { deps: AppDeps; orgId: string; model: EvaluationModelView }): Promise<State> {
  const { model } = options;
  if (model.retiredAt !== null) return 'retired';
  const active = (await listEvaluationModels({ db: options.deps.db, orgId: options.orgId, fleetId: model.fleetId })).find((m) => m.retiredAt === null);
  return active?.id === model.id ? 'active' : 'registered';
}

export function createEvaluationModelRoutes(options: { deps: AppDeps }): OpenAPIHono<AppEnv> {
  const { deps } = options;
  const routes = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw result.error; // ZodError: a 400 `malformed` naming the field (server/http/errors.ts)
    },
  });

  async function found(orgId: string, modelId: string): Promise<EvaluationModelView> {
    const m = await getEvaluationModel({ db: deps.db, orgId, modelId });
    if (!m) throw new NotFoundError('evaluation model not found');
    return m;
  }

  async function blob(sha: string, what: string): Promise<Uint8Array> {
    const bytes = await deps.blobs.get(sha);
    if (!bytes) throw new Error(`evaluation model ${what} blob ${sha} is missing`);
    return bytes;
  }

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/evaluation-models',
      tags: ['evaluation-models'],
      summary: "Register a customer evaluation model and encrypted scenario set for a fleet (officer-signed record)",
      middleware: [limitBody({ maxSize: REGISTER_BODY_LIMIT }), requireAuth({ deps, person: { roles: ['officer'] } })] as const,
      request: { body: { required: true, content: { 'application/json': { schema: RegisterBody } } } },
      responses: {
        201: { description: 'registered', content: { 'application/json': { schema: EvaluationModel } } },
        409: { description: 'id or record already registered', content: { 'application/json': { schema: ErrorBody } } },
        413: { description: 'body over the limit', content: { 'application/json': { schema: ErrorBody } } },
        ...errors,
      },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const body = c.req.valid('json');
      const opened = openEvalModelRecord({ bytes: body.record, trustedKeys: await trustedOfficerKeys({ deps, orgId }) });
      const r = opened.record;
      if (r.orgId !== orgId) throw new IntegrityError('the evaluation model record names another organization', { orgId: r.orgId });
      if (!idParam.safeParse(r.modelId).success) throw httpError({ status: 400, code: 'malformed', message: 'the record modelId must be 1-64 of letters, digits and . _ : -' });
      if (!(await getFleet({ db: deps.db, orgId, fleetId: r.fleetId }))) throw new NotFoundError(`fleet ${JSON.stringify(r.fleetId)} not found`);
      verifyEvalModelBlobs({ record: r, model: body.model, sealed: body.scenarios });
      // Blobs first (content-addressed, idempotent): a row never names a blob that is not on disk.
      const modelSha256 = await deps.blobs.put(body.model);
      const scenariosSha256 = await deps.blobs.put(body.scenarios);
      const model = await createEvaluationModel({
        db: deps.db,
        orgId,
        actor: actorOf(c),
        pk: newId({ prefix: 'evm' }),
        model: {
          id: r.modelId,
          fleetId: r.fleetId,
          name: r.name,
          fingerprint: bytesToHex(opened.fingerprint),
          signerKeySha256: bytesToHex(sha256(opened.signerPublicKey)),
          modelSha256,
          modelBytes: body.model.length,
          scenariosSha256,
          scenariosBytes: body.scenarios.length,
          record: body.record,
        },
        now: deps.now(),
      });
      return c.json(summary(model, await stateOf({ deps, orgId, model })), 201);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/evaluation-models',
      tags: ['evaluation-models'],
      summary: "A fleet's evaluation models, newest first",
      middleware: [requireAuth({ deps, person: { roles: READERS } })] as const,
      request: { query: FleetQuery },
      responses: { 200: { description: 'models', content: { 'application/json': { schema: z.array(EvaluationModel) } } }, ...errors },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const { fleet } = c.req.valid('query');
      if (!(await getFleet({ db: deps.db, orgId, fleetId: fleet }))) throw new NotFoundError('fleet not found');
      const models = await listEvaluationModels({ db: deps.db, orgId, fleetId: fleet });
      const activeId = models.find((m) => m.retiredAt === null)?.id;
      return c.json(
        models.map((m) => summary(m, m.retiredAt !== null ? 'retired' : m.id === activeId ? 'active' : 'registered')),
        200,
      );
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/evaluation-models/{id}',
      tags: ['evaluation-models'],
      summary: 'One evaluation model with its signed record',
      middleware: [requireAuth({ deps, person: { roles: READERS } })] as const,
      request: { params: IdParams },
      responses: { 200: { description: 'the model', content: { 'application/json': { schema: EvaluationModelWithRecord } } }, ...errors },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const model = await found(orgId, c.req.valid('param').id);
      return c.json({ ...summary(model, await stateOf({ deps, orgId, model })), record: toBase64(model.record) }, 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/evaluation-models/{id}/model',
      tags: ['evaluation-models'],
      summary: 'The ONNX model bytes',
      middleware: [requireAuth({ deps, person: { roles: ['officer'] } })] as const,
      request: { params: IdParams },
      responses: { 200: { description: 'ONNX model', content: Binary }, ...errors },
    }),
    async (c) => {
      const model = await found(c.get('principal').orgId, c.req.valid('param').id);
      const bytes = await blob(model.modelSha256, 'model');
      return c.body(bytes as Uint8Array<ArrayBuffer>, 200, { 'content-type': 'application/octet-stream' }) as never;
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/evaluation-models/{id}/scenarios',
      tags: ['evaluation-models'],
      summary: 'The scenario set ciphertext (decrypted only by an officer)',
      middleware: [requireAuth({ deps, person: { roles: ['officer'] } })] as const,
      request: { params: IdParams },
      responses: { 200: { description: 'AES-256-GCM ciphertext', content: Binary }, ...errors },
    }),
    async (c) => {
      const model = await found(c.get('principal').orgId, c.req.valid('param').id);
      const bytes = await blob(model.scenariosSha256, 'scenario set');
      return c.body(bytes as Uint8Array<ArrayBuffer>, 200, { 'content-type': 'application/octet-stream' }) as never;
    },
  );

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/evaluation-models/{id}/retire',
      tags: ['evaluation-models'],
      summary: 'Retire an evaluation model (it stops being the fleet\'s active model)',
      middleware: [limitBody({ maxSize: SMALL_JSON_LIMIT }), requireAuth({ deps, person: { roles: ['officer'] } })] as const,
      request: { params: IdParams, body: { required: true, content: { 'application/json': { schema: RetireBody } } } },
      responses: {
        200: { description: 'retired', content: { 'application/json': { schema: EvaluationModel } } },
        409: { description: 'already retired', content: { 'application/json': { schema: ErrorBody } } },
        ...errors,
      },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const { id } = c.req.valid('param');
      const { reason } = c.req.valid('json');
      await found(orgId, id);
      const retired = await retireEvaluationModel({ db: deps.db, orgId, actor: actorOf(c), modelId: id, reason, now: deps.now() });
      if (!retired) throw httpError({ status: 409, code: 'eval_model_retired', message: `evaluation model ${id} is already retired` });
      return c.json(summary(retired, 'retired'), 200);
    },
  );

  return routes;
}
