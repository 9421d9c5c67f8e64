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

describe('database contention', () => {
  it('a real SQLITE_BUSY from a second connection, wrapped as drizzle wraps it, is a retryable 503 and logged', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { createClient } = await import('@libsql/client');
    const dir = await mkdtemp(join(tmpdir(), 'tg-busy-'));
    const url = `file:${join(dir, 'db.sqlite')}`;
    const holder = createClient({ url });
    const other = createClient({ url });
    try {
      await holder.execute('CREATE TABLE t (x INTEGER)');
      await other.execute('PRAGMA busy_timeout = 1');
      const tx = await holder.transaction('write');
      await tx.execute('INSERT INTO t VALUES (1)');
      const busy = await other.execute('INSERT INTO t VALUES (2)').then(
        () => null,
        (e: unknown) => e,
      );
      await tx.rollback();
      expect(busy).toBeInstanceOf(Error);
      const warned: unknown[] = [];
      const logger = { info() {}, warn: (m: string, f?: Record<string, unknown>) => warned.push({ m, ...f }), error() {} };
      const res = errorToResponse({ error: new Error('Failed query: INSERT INTO t', { cause: busy }), logger });
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('database_busy');
      expect(res.body.error.details).toEqual({ retryAfterSeconds: 1 });
      expect(warned).toHaveLength(1);
    } finally {
      holder.close();
      other.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a libsql server taking the lock back (TRANSACTION_TIMEOUT) is a 503; other database errors stay 500 internal', () => {
    const logger = capture();
    const timeout = Object.assign(new Error('transaction timed out'), { code: 'TRANSACTION_TIMEOUT' });
    expect(errorToResponse({ error: timeout, logger }).status).toBe(503);
    const constraint = Object.assign(new Error('SQLITE_CONSTRAINT: NOT NULL constraint failed'), { code: 'SQLITE_CONSTRAINT' });
    const res = errorToResponse({ error: new Error('Failed query', { cause: constraint }), logger });
    expect(res.status).toBe(500);
    expect(res.body.error.code).toBe('internal');
  });

  it('the handler sends Retry-After with the 503', async () => {
    const app = new Hono();
    app.onError(createErrorHandler({ logger: capture() }));
    app.get('/x', () => {
      throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
    });
    const res = await app.request('/x');
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
  });
});
