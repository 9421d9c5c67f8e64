// The server's logger: structured JSON lines (pino) on stderr by default; tests pass a silent or a
// capturing one. Fields whose names say they hold a secret (password, token, secret, authorization,
// cookie, signature, ...) are replaced by "[redacted]" at any depth, so a careless call site cannot
// put one in the log; errors keep name, message, stack and cause (the log is where they belong).
import { AsyncLocalStorage } from 'node:async_hooks';
import pino from 'pino';

/** Fields every line logged while handling a request carries (the request id; server/app.ts sets it). */
export const logContext = new AsyncLocalStorage<Record<string, unknown>>();

export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Field names never logged with their value. */
export const SECRET_FIELD = /pass(word)?|token|secret|authori[sz]ation|cookie|signature|credential|private|seed|bearer|session_?key/i;

function serialize(value: unknown, depth: number): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, stack: value.stack, cause: value.cause === undefined ? undefined : serialize(value.cause, depth + 1) };
  }
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  if (Array.isArray(value)) return value.map((v) => serialize(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_FIELD.test(k) ? '[redacted]' : serialize(v, depth + 1);
  return out;
}

function fieldsOf(fields?: Record<string, unknown>): Record<string, unknown> {
  const context = logContext.getStore();
  const own = fields ? (serialize(fields, 0) as Record<string, unknown>) : {};
  return context ? { ...context, ...own } : own;
}

export function createJsonLogger(options: { write?: (line: string) => void; level?: 'info' | 'warn' | 'error' } = {}): Logger {
  const destination = options.write ? { write: (s: string) => options.write!(s.replace(/\n$/, '')) } : pino.destination({ dest: 2, sync: true });
  const log = pino(
    {
      level: options.level ?? 'info',
      base: undefined,
      messageKey: 'message',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  return {
    info: (m, f) => log.info(fieldsOf(f), m),
    warn: (m, f) => log.warn(fieldsOf(f), m),
    error: (m, f) => log.error(fieldsOf(f), m),
  };
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
