// Shared pieces of the route files written with OpenAPIHono + createRoute (@hono/zod-openapi), where
// the zod schemas a route validates its params, query, headers and body with are also its entry in
// GET /openapi.json (server/app.ts collects each file's openAPIRegistry under /v1).
//
// Data flow of one request through such a route:
//   route middleware, in the order the route lists it (body limit, authentication and rate budget,
//   idempotency) -> the validators @hono/zod-openapi builds from `request` (query, path, headers, then
//   the JSON body; a JSON body needs a JSON Content-Type, 415 otherwise) -> `validationHook` turns a
//   zod failure into the typed 400 `malformed` error (message as before, `details.field` naming the
//   first offending field) that the one error handler renders (server/http/errors.ts) -> the handler,
//   whose `c.json(body, status)` is type-checked against the route's response schemas.
// Besides the hook: the error body schema and the error responses routes declare, the security
// requirements (people: bearer token or session cookie; robots: the four signature headers, or on the
// safety routes the four safety session headers), a JSON body that is only described (the route parses
// it itself), and an idempotency middleware for routes taking an `Idempotency-Key` (server/http/idempotency.ts).
import { OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import type { ZodError } from 'zod';
import { TensorGuardError } from '../../core/errors.ts';
import { ROBOT_HEADERS } from '../../core/records/request-signature.ts';
import { SAFETY_SESSION_HEADERS } from '../../core/records/safety-session.ts';
import { SESSION_COOKIE } from './auth.ts';
import { runIdempotent, type IdempotencyContext } from './idempotency.ts';
import type { AppDeps, AppEnv } from './context.ts';

/** A zod issue path as one field name: `requests[1].trajectory`, `fleet`; '' for the whole value. */
export function fieldOf(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

/** The same message the error handler gives a ZodError (server/http/errors.ts), plus details.field. */
export function malformedFromZod(error: ZodError): TensorGuardError {
  const message = error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`)
    .join('; ');
  const first = error.issues[0];
  return new TensorGuardError({ status: 400, code: 'malformed', message, details: { field: fieldOf(first?.path ?? []) }, cause: error });
}

/** The defaultHook of every OpenAPIHono route file: a validation failure is a typed 400, never a bare zod answer. */
export function validationHook(result: { success: true } | { success: false; error: ZodError }): void {
  if (!result.success) throw malformedFromZod(result.error);
}

/** Security scheme names used in the document. */
export const SECURITY_SCHEMES = {
  bearer: { type: 'http', scheme: 'bearer', description: 'A session token from POST /v1/sessions (CLI).' },
  sessionCookie: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE, description: 'The HttpOnly session cookie (PWA); unsafe methods need Sec-Fetch-Site: same-origin or a matching Origin.' },
  robotId: { type: 'apiKey', in: 'header', name: ROBOT_HEADERS.robot, description: 'The robot id. Robot requests carry all four x-tg-* headers.' },
  robotTimestamp: { type: 'apiKey', in: 'header', name: ROBOT_HEADERS.timestamp, description: 'Milliseconds since the epoch, within 5 minutes of the server clock.' },
  robotNonce: { type: 'apiKey', in: 'header', name: ROBOT_HEADERS.nonce, description: '16 random bytes, lowercase hex, never reused.' },
  robotSignature: {
    type: 'apiKey',
    in: 'header',
    name: ROBOT_HEADERS.signature,
    description: 'base64 ML-DSA-44 signature over the fingerprint of method, path+query, timestamp, nonce and SHA-256(body) (core/records/request-signature.ts).',
  },
  robotSession: {
    type: 'apiKey',
    in: 'header',
    name: SAFETY_SESSION_HEADERS.session,
    description: 'A robot safety session id from POST /v1/safety/sessions (server/http/robot-session.ts). Session requests carry x-tg-robot, x-tg-session, x-tg-counter and x-tg-mac together.',
  },
  robotCounter: { type: 'apiKey', in: 'header', name: SAFETY_SESSION_HEADERS.counter, description: 'The session request counter: 1, 2, 3, ..., each accepted once (anti-replay window).' },
  robotMac: {
    type: 'apiKey',
    in: 'header',
    name: SAFETY_SESSION_HEADERS.mac,
    description: '64 lowercase hex: HMAC-SHA256 with the session key over method, path+query, counter and SHA-256(body) (core/records/safety-session.ts).',
  },
} as const;

/** A new OpenAPIHono route file: the shared validation hook and the security schemes it refers to. */
export function createOpenApiRoutes(): OpenAPIHono<AppEnv> {
  const routes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  for (const [name, scheme] of Object.entries(SECURITY_SCHEMES)) routes.openAPIRegistry.registerComponent('securitySchemes', name, scheme);
  return routes;
}

/**
 * Who may call a route, as OpenAPI security requirements (alternatives; the robot headers of one form
 * all together). `robotSession`: the robot safety session form, accepted besides the signed one.
 */
export function security(options: { person?: boolean; robot?: boolean; robotSession?: boolean }): Array<Record<string, string[]>> {
  return [
    ...(options.person ? [{ bearer: [] }, { sessionCookie: [] }] : []),
    ...(options.robot ? [{ robotId: [], robotTimestamp: [], robotNonce: [], robotSignature: [] }] : []),
    ...(options.robotSession ? [{ robotId: [], robotSession: [], robotCounter: [], robotMac: [] }] : []),
  ];
}

/** `{ error: { code, message, errorId?, details? } }` (server/http/errors.ts). */
export const ApiErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ description: 'stable snake_case code', example: 'malformed' }),
      message: z.string(),
      errorId: z.string().optional().openapi({ description: 'present on 500 answers; the log line carries the same id' }),
      details: z.record(z.string(), z.unknown()).optional().openapi({ description: 'e.g. `field` for `malformed`, `retryAfterSeconds` for `throttled`' }),
    }),
  })
  .openapi('ApiError');

const STANDARD_ERRORS = {
  400: '`malformed` (details.field names the first bad field), or `integrity` for a record that does not match',
  401: 'not authenticated: `unauthenticated`, `replay`, `bad_signature`, `untrusted_signer`',
  403: 'authenticated but not allowed: `forbidden` (role, robot on a people route), `reauth_required`',
  404: '`not_found`, also for ids of another organization',
  409: 'a state conflict',
  413: '`oversize`: the body exceeds the route limit',
  415: '`unsupported_media_type`: a body that is not of the declared media type',
  422: 'well-formed but refused',
  429: '`throttled`: over the rate budget; Retry-After says when to retry',
  503: 'retryable: `overloaded`, `shutting_down` (Retry-After)',
} as const;
type ErrorStatus = keyof typeof STANDARD_ERRORS;

/** Errors of an authenticated route. */
export const AUTH_ERRORS = { 401: true, 403: true, 429: true } as const;
/** Errors of a route that takes a JSON body. */
export const BODY_ERRORS = { 400: true, 413: true, 415: true } as const;

const errorContent = { 'application/json': { schema: ApiErrorSchema } } as const;

/**
 * Error responses of a route: `true` takes the standard description, a string says what this route
 * means by the status. `default` (500 `internal` with an errorId, 503 retryable) is always added.
 */
export function errorResponses(statuses: Partial<Record<ErrorStatus, string | true>>) {
  const out: Record<string, { description: string; content: typeof errorContent }> = {};
  for (const [status, text] of Object.entries(statuses) as Array<[`${ErrorStatus}`, string | true]>) {
    out[status] = { description: text === true ? STANDARD_ERRORS[Number(status) as ErrorStatus] : text, content: errorContent };
  }
  out.default = { description: '500 `internal` (with an errorId) or a retryable 503 (`overloaded`, `shutting_down`; Retry-After)', content: errorContent };
  return out as Record<ErrorStatus | 'default', { description: string; content: typeof errorContent }>;
}

/** A JSON response. */
export function jsonResponse<T extends z.ZodType>(description: string, schema: T) {
  return { description, content: { 'application/json': { schema } } };
}

/** A required JSON request body. */
export function jsonBody<T extends z.ZodType>(schema: T, description?: string) {
  return { required: true, ...(description ? { description } : {}), content: { 'application/json': { schema } } };
}

/**
 * A required JSON request body that the document describes but zod does not validate: the route parses
 * the bytes itself (the safety routes: core/safety/parse.ts names the bad field, and what is valid
 * depends on the cell the body names). The schema becomes the component `name` and the route refers to
 * it by $ref, so @hono/zod-openapi adds no validator and no Content-Type gate for this body.
 */
export function describedJsonBody(options: { routes: OpenAPIHono<AppEnv>; name: string; schema: z.ZodType; description?: string }) {
  const { routes, name, schema, description } = options;
  routes.openAPIRegistry.register(name, schema);
  return { required: true, ...(description ? { description } : {}), content: { 'application/json': { schema: { $ref: `#/components/schemas/${name}` } } } };
}

/** Raw bytes (request or response); the route handles the bytes itself. */
export const binaryContent = {
  'application/octet-stream': { schema: z.string().openapi({ format: 'binary', description: 'raw bytes' }) },
} as const;

/** An optional `Idempotency-Key` request header (validated first by the `idempotent` middleware). */
export const IdempotencyHeaders = z.object({
  'idempotency-key': z
    .string()
    .regex(/^[\x21-\x7e]{1,255}$/)
    .optional()
    .openapi({ description: 'A resend under the same key gets the first 201 (Idempotent-Replayed: true); the same key with another request is 422 `idempotency_key_reused`.' }),
});

const idempotencyOfRequest = new WeakMap<Context, IdempotencyContext | undefined>();

/**
 * Route middleware (after authentication, before the validators): runs the rest of the route at most
 * once per (organization, Idempotency-Key), as server/http/idempotency.ts describes. A stored answer is
 * replayed before the body is validated, as it was when the routes called runIdempotent themselves.
 */
export function idempotent(options: { deps: AppDeps }): MiddlewareHandler<AppEnv> {
  const { deps } = options;
  return async (c, next) =>
    runIdempotent({
      deps,
      c,
      orgId: c.get('principal').orgId,
      handle: async (idempotency) => {
        idempotencyOfRequest.set(c, idempotency);
        await next();
        return c.res;
      },
    });
}

/** The idempotency key and request hash of this request, when it carried an Idempotency-Key. */
export function idempotencyOf(c: Context): IdempotencyContext | undefined {
  return idempotencyOfRequest.get(c);
}
