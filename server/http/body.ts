// Request body helpers: per-route size limits (413 `oversize`), JSON parsing with zod, base64 fields.
import type { IncomingMessage } from 'node:http';
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

/**
 * Reads a request body of declared length straight from Node's socket stream into one buffer, for the
 * routes that take tens of MB (contribution uploads): the adapter's web Request + ReadableStream + a
 * concatenation cost ~4 ms of CPU per MB there. Returns null (the caller reads the body the usual way)
 * without a Node request (tests call app.fetch), a Content-Length, or when something has started
 * reading it. Node's HTTP parser holds the body to Content-Length; a connection that ends early rejects
 * with a 400 `malformed`.
 */
export async function readBodyFromSocket(c: Context): Promise<Uint8Array | null> {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  const lengthText = c.req.header('content-length');
  if (!incoming || lengthText === undefined || !/^[0-9]{1,15}$/.test(lengthText) || c.req.header('transfer-encoding') !== undefined) return null;
  if (incoming.readableDidRead || incoming.readableFlowing !== null || incoming.readableEnded) return null;
  const body = new Uint8Array(Number(lengthText));
  let at = 0;
  // 'data' callbacks, not `for await`: a promise per 16-64 KB chunk cost more than the copying.
  await new Promise<void>((resolve, reject) => {
    incoming.on('data', (chunk: Uint8Array) => {
      if (at + chunk.length > body.length) {
        incoming.pause();
        reject(new FormatError('request body is longer than its Content-Length'));
        return;
      }
      body.set(chunk, at);
      at += chunk.length;
    });
    incoming.once('end', resolve);
    incoming.once('error', (error) => reject(new FormatError(`request body ended early: ${error.message}`)));
    incoming.once('close', () => (incoming.complete ? resolve() : reject(new FormatError(`request body ended after ${at} of ${body.length} bytes`))));
  });
  if (at !== body.length) throw new FormatError(`request body ended after ${at} of ${body.length} bytes`);
  return body;
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
