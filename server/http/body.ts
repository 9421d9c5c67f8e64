// Request body helpers: per-route size limits (413 `oversize`), JSON parsing with zod, base64 fields.
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import { FormatError, OversizeError } from '../../core/errors.ts';
import { fromBase64, toBase64 } from '../../core/bytes.ts';

export const KiB = 1024;
export const MiB = 1024 * KiB;
/** Limit for the small JSON routes. */
export const SMALL_JSON_LIMIT = 64 * KiB;
/** Limit for unsafe routes that take no body (DELETE): anything beyond a stray newline is refused. */
export const NO_BODY_LIMIT = 1 * KiB;

export function limitBody(options: { maxSize: number }): MiddlewareHandler {
  const { maxSize } = options;
  return bodyLimit({
    maxSize,
    onError: () => {
      throw new OversizeError(`request body exceeds the limit of ${maxSize} bytes for this route`, { limit: maxSize });
    },
  });
}

/**
 * A body limit for hot routes (command safety validation), without the cost of hono's bodyLimit on the Node adapter:
 * that one reads `request.body`, which makes @hono/node-server build a full web Request and stream
 * around the socket (~15% of a validation's CPU here). With a Content-Length (which Node's HTTP parser
 * holds the body to), the length alone decides, and the body is later read straight from the socket;
 * a chunked body goes through the streaming limit (limitBody above). Same 413 `oversize`.
 */
export function limitBodyByLength(options: { maxSize: number }): MiddlewareHandler {
  const { maxSize } = options;
  const streaming = limitBody({ maxSize });
  return async (c, next) => {
    const length = c.req.header('content-length');
    if (length === undefined || c.req.header('transfer-encoding') !== undefined) return streaming(c, next);
    if (Number(length) > maxSize) throw new OversizeError(`request body exceeds the limit of ${maxSize} bytes for this route`, { limit: maxSize });
    return next();
  };
}

/** A body limit decided per request (e.g. from the fleet envelope of the round in the path). */
export function limitBodyDynamic(options: { maxSize: (c: Context) => Promise<number> }): MiddlewareHandler {
  return async (c, next) => limitBody({ maxSize: await options.maxSize(c) })(c, next);
}

export async function readJson<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  let json: unknown;
  try {
    json = await c.req.json();
  } catch {
    throw new FormatError('request body must be JSON');
  }
  return schema.parse(json);
}

/** A base64 string field decoded to bytes, optionally of an exact or maximum length. */
export function base64Field(options: { name: string; length?: number; maxLength?: number }) {
  const { name, length, maxLength } = options;
  const maxChars = Math.ceil((length ?? maxLength ?? 64 * MiB) / 3) * 4;
  return z
    .string()
    .max(maxChars)
    .transform((text, ctx) => {
      let bytes: Uint8Array;
      try {
        bytes = fromBase64(text, name);
      } catch {
        ctx.addIssue({ code: 'custom', message: `"${name}" expected base64` });
        return z.NEVER;
      }
      if (length !== undefined && bytes.length !== length) {
        ctx.addIssue({ code: 'custom', message: `"${name}" expected ${length} bytes, got ${bytes.length}` });
        return z.NEVER;
      }
      return bytes;
    });
}

export const b64 = (bytes: Uint8Array): string => toBase64(bytes);
export const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');

/** Query-string id/name parameters. */
export const idParam = z.string().min(1).max(64).regex(/^[A-Za-z0-9._:-]+$/);
