// The worker boundary's transfer rules (STYLE.md principle 6), registered on both sides of every
// Comlink channel: byte buffers are moved, not copied, and errors cross with their name, stable code,
// HTTP status and details (TensorGuardError) instead of Comlink's bare { message, name, stack }.
import * as Comlink from 'comlink';

/** An error thrown in a worker, as the UI thread receives it. */
export class WorkerError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details?: Record<string, unknown>;
  constructor(options: { name: string; message: string; code?: string; status?: number; details?: Record<string, unknown> }) {
    super(options.message);
    this.name = options.name;
    this.code = options.code ?? 'worker_error';
    this.status = options.status ?? 500;
    this.details = options.details;
  }
}

interface SerializedError {
  isError: boolean;
  value: unknown;
}

/** Only plain JSON values of details cross the boundary (no objects that might carry secrets). */
function plainDetails(details: unknown): Record<string, unknown> | undefined {
  if (!details || typeof details !== 'object') return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(details)) if (v === null || ['string', 'number', 'boolean'].includes(typeof v)) out[k] = v;
  return out;
}

function serializeError(value: unknown): SerializedError {
  if (value instanceof Error) {
    const e = value as Error & { code?: unknown; status?: unknown; details?: unknown };
    return {
      isError: true,
      value: {
        name: e.name,
        message: e.message,
        code: typeof e.code === 'string' ? e.code : e instanceof TypeError || e instanceof RangeError ? 'invalid_argument' : 'worker_error',
        status: typeof e.status === 'number' ? e.status : 500,
        details: plainDetails(e.details),
      },
    };
  }
  // Embind (node-seal) throws numbers and arrays; make them readable.
  return { isError: true, value: { name: 'Error', message: Array.isArray(value) ? value.join(', ') : String(value), code: 'worker_error', status: 500 } };
}

let registered = false;

/** Installs the error handler on this side of the channel (idempotent; call before wrap/expose). */
export function registerTransferHandlers(): void {
  if (registered) return;
  registered = true;
  const builtin = Comlink.transferHandlers.get('throw')!;
  Comlink.transferHandlers.set('throw', {
    canHandle: builtin.canHandle,
    serialize: (thrown: unknown) => [serializeError((thrown as { value: unknown }).value), []],
    deserialize: (serialized: unknown) => {
      const s = serialized as SerializedError;
      throw new WorkerError(s.value as ConstructorParameters<typeof WorkerError>[0]);
    },
  } as Comlink.TransferHandler<unknown, SerializedError>);
}

/** The buffers under these byte arrays, each once (a buffer may back several views). */
function buffersOf(views: ReadonlyArray<Uint8Array | null | undefined>): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const v of views) if (v && v.buffer instanceof ArrayBuffer && v.buffer.byteLength > 0) out.add(v.buffer);
  return [...out];
}

/**
 * Marks `value` so Comlink moves (transfers) the buffers of `views` instead of copying them. The sender
 * must not use those views afterwards: they are detached.
 */
export function moving<T>(value: T, views: ReadonlyArray<Uint8Array | null | undefined>): T {
  return Comlink.transfer(value, buffersOf(views));
}

/** A copy of `bytes` in a buffer of its own, safe to transfer while the original stays usable. */
export function ownedCopy(bytes: Uint8Array): Uint8Array {
  return bytes.slice();
}

/** Reports progress at most every `intervalMs` (and always the last step), so a loop of thousands of
 *  ciphertexts does not post thousands of messages. */
export function throttledProgress(report: ((done: number, total: number) => void) | undefined, intervalMs = 50): (done: number, total: number) => void {
  let last = 0;
  return (done, total) => {
    if (!report) return;
    const now = Date.now();
    if (done === total || now - last >= intervalMs) {
      last = now;
      void Promise.resolve(report(done, total)).catch(() => undefined);
    }
  };
}

export type ProgressCallback = (done: number, total: number, stage?: string) => void;

/**
 * Bytes that cross the boundary either as a Uint8Array (moved) or as a Blob: a Blob read from
 * IndexedDB is a handle to data on disk, cloned by reference, so the receiver reads it once instead of
 * the sender deserializing it first.
 */
export type BytesLike = Uint8Array | Blob;

export async function bytesOf(value: BytesLike): Promise<Uint8Array> {
  return value instanceof Uint8Array ? value : new Uint8Array(await value.arrayBuffer());
}
