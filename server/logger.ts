// The server's logger: JSON lines on stderr by default; tests pass a silent or capturing one.
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

function serialize(value: unknown): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, stack: value.stack, cause: value.cause === undefined ? undefined : serialize(value.cause) };
  }
  return value;
}

function line(level: string, message: string, fields?: Record<string, unknown>): string {
  const out: Record<string, unknown> = { level, time: new Date().toISOString(), message };
  for (const [k, v] of Object.entries(fields ?? {})) out[k] = serialize(v);
  return JSON.stringify(out);
}

export function createJsonLogger(options: { write?: (line: string) => void } = {}): Logger {
  const write = options.write ?? ((l: string) => process.stderr.write(`${l}\n`));
  return {
    info: (m, f) => write(line('info', m, f)),
    warn: (m, f) => write(line('warn', m, f)),
    error: (m, f) => write(line('error', m, f)),
  };
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
