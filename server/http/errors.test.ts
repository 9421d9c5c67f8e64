// The error translation: domain errors keep their code/status, argument errors are 400, the rest 500 with an errorId only.
import { describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { z } from 'zod';
import { ConflictError, OversizeError } from '../../core/errors.ts';
import { createErrorHandler, errorToResponse } from './errors.ts';
import type { Logger } from '../logger.ts';

function capture(): Logger & { lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, info() {}, warn() {}, error: (message, fields) => lines.push({ message, ...fields }) };
}

describe('errorToResponse', () => {
  it('maps domain errors to their status and code', () => {
    const logger = capture();
    expect(errorToResponse({ error: new OversizeError('too big'), logger })).toEqual({ status: 413, body: { error: { code: 'oversize', message: 'too big' } } });
    expect(errorToResponse({ error: new ConflictError('dup'), logger }).status).toBe(409);
  });

  it('maps TypeError, RangeError and zod errors to 400 malformed', () => {
    const logger = capture();
    expect(errorToResponse({ error: new RangeError('"x" expected integer, got 1.5'), logger }).body.error.code).toBe('malformed');
    const zodError = z.object({ a: z.string() }).safeParse({ a: 1 }).error!;
    const res = errorToResponse({ error: zodError, logger });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain('a:');
  });

  it('hides anything else behind 500 internal with an errorId, logging the full error', async () => {
    const logger = capture();
    const app = new Hono();
    app.onError(createErrorHandler({ logger }));
    app.get('/boom', () => {
      throw new Error('secret database path /var/lib/x');
    });
    const res = await app.request('/boom');
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).not.toContain('secret');
    expect(text).not.toContain('at ');
    const body = JSON.parse(text);
    expect(body.error.code).toBe('internal');
    expect(body.error.errorId).toMatch(/^[0-9a-f-]{36}$/);
    expect(logger.lines[0]!.errorId).toBe(body.error.errorId);
    expect(String((logger.lines[0]!.error as Error).message)).toContain('secret');
  });
});
