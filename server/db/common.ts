// Shared helpers for the repository modules in server/db/: executor type, byte conversion,
// constraint-violation detection.
import type { Database } from './client.ts';

/** A database handle or an open transaction: repository functions accept either. */
export type Executor = Database | Parameters<Parameters<Database['transaction']>[0]>[0];

/** drizzle's blob columns in buffer mode take Buffers; this wraps a Uint8Array without copying. */
export function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A plain Uint8Array view of a stored blob (Buffer is a subclass, but keeps callers uniform). */
export function toBytes(buffer: Uint8Array): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** True when the error (or one of its causes) is a SQLite UNIQUE / PRIMARY KEY violation. */
export function isUniqueViolation(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const message = String((e as { message?: unknown }).message ?? '');
    const code = String((e as { code?: unknown }).code ?? '');
    if (/UNIQUE constraint failed|PRIMARY KEY constraint failed/.test(message) || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY')
      return true;
  }
  return false;
}
