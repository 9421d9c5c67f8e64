// The one place where errors become HTTP responses: `{ error: { code, message, errorId? } }`.
//
// TensorGuardError -> its own status and stable code. Argument errors (TypeError, RangeError), zod
// validation errors and unparsable JSON -> 400 `malformed`. A transaction the database refused to commit
// (busy, lock timeout) -> 503 `database_busy` with Retry-After: nothing changed, repeat it. Anything else
// -> 500 `internal` with an errorId; the full error (stack, cause) goes only to the log, never to the client.
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ZodError } from 'zod';
import { TensorGuardError } from '../../core/errors.ts';
import type { Logger } from '../logger.ts';

export interface ErrorBody {
  error: { code: string; message: string; errorId?: string; details?: Record<string, unknown> };
}

/** A domain error with a route-specific code (e.g. 409 `duplicate_contribution`). */
export function httpError(options: { status: number; code: string; message: string; details?: Record<string, unknown> }): TensorGuardError {
  return new TensorGuardError(options);
}

function zodMessage(error: ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`)
    .join('; ');
}

const HTTP_CODES: Record<number, string> = {
  400: 'malformed',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'oversize',
  415: 'unsupported_media_type',
  429: 'throttled',
};

/** Maps any thrown value to a status and body; logs what the client does not see. */
export function errorToResponse(options: { error: unknown; logger: Logger; requestId?: string }): { status: number; body: ErrorBody } {
  const { error, logger, requestId } = options;
  if (error instanceof TensorGuardError) {
    // 503s are retryable answers (backpressure, an open circuit, shutting down: server/operations/),
    // not internal errors; any other 5xx stays opaque.
    if (error.status >= 500 && error.status !== 503) return internal({ error, logger, requestId });
    return { status: error.status, body: { error: { code: error.code, message: error.message, ...(error.details ? { details: safeDetails(error.details) } : {}) } } };
  }
  if (isDatabaseContention(error)) {
    // The transaction did not commit (busy, lock timed out or taken back by a libsql server): nothing
    // changed, so the client may repeat the request. Logged, since sustained contention needs an operator.
    const errorId = crypto.randomUUID();
    logger.warn('database contention', { errorId, requestId, error });
    return { status: 503, body: { error: { code: 'database_busy', message: 'the database is busy; retry shortly', errorId, details: { retryAfterSeconds: 1 } } } };
  }
  if (error instanceof ZodError) return { status: 400, body: { error: { code: 'malformed', message: zodMessage(error) } } };
  if (error instanceof TypeError || error instanceof RangeError || error instanceof SyntaxError)
    return { status: 400, body: { error: { code: 'malformed', message: error.message } } };
  if (error instanceof HTTPException && error.status < 500) {
    const code = HTTP_CODES[error.status] ?? 'malformed';
    return { status: error.status, body: { error: { code, message: error.message || code.replace(/_/g, ' ') } } };
  }
  return internal({ error, logger, requestId });
}

const CONTENTION_CODES = new Set(['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_BUSY_TIMEOUT', 'SQLITE_LOCKED', 'TRANSACTION_TIMEOUT']);
const CONTENTION_MESSAGES = /database is locked|cannot commit - no transaction is active|cannot commit – no transaction is active/i;

/**
 * Whether an error (or one of its causes: drizzle wraps the driver's LibsqlError) says the database was
 * busy or the transaction was rolled back underneath us — a failure to commit, never a half-commit.
 */
export function isDatabaseContention(error: unknown): boolean {
  let e: unknown = error;
  for (let depth = 0; depth < 5 && e instanceof Error; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && CONTENTION_CODES.has(code)) return true;
    if (CONTENTION_MESSAGES.test(e.message)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** Only plain JSON values of details travel to the client (no objects that might carry internals). */
function safeDetails(details: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(details)) {
    if (v === null || ['string', 'number', 'boolean'].includes(typeof v)) out[k] = v;
  }
  return out;
}

function internal(options: { error: unknown; logger: Logger; requestId?: string }): { status: number; body: ErrorBody } {
  const errorId = crypto.randomUUID();
  options.logger.error('request failed', { errorId, requestId: options.requestId, error: options.error });
  return { status: 500, body: { error: { code: 'internal', message: 'internal error', errorId } } };
}

/** `app.onError` handler. */
export function createErrorHandler(options: { logger: Logger }) {
  return (error: unknown, c: Context) => {
    const { status, body } = errorToResponse({ error, logger: options.logger, requestId: c.get('requestId' as never) as string | undefined });
    const retryAfter = body.error.details?.retryAfterSeconds;
    if ((status === 503 || status === 429) && typeof retryAfter === 'number') c.header('retry-after', String(retryAfter));
    return c.json(body, status as ContentfulStatusCode);
  };
}

/** `app.notFound` handler. */
export function notFoundHandler(c: Context) {
  return c.json({ error: { code: 'not_found', message: `no route for ${c.req.method} ${c.req.path}` } } satisfies ErrorBody, 404);
}
