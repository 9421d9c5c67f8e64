// The PWA's HTTP client for the sync server on the same origin: JSON and binary calls authenticated by
// the HttpOnly `tg_session` cookie (the browser sends it, and Sec-Fetch-Site: same-origin with it; no
// script holds the token), server errors as ApiError with the server's stable code, and "offline"
// (status 0) when the network is down. Large downloads report progress.
import { auth, sessionExpired } from './session.svelte.ts';
import { network } from './network.svelte.ts';

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function isOffline(error: unknown): boolean {
  return error instanceof ApiError && error.status === 0;
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  return { ...extra };
}

async function failure(res: Response, method: string, path: string): Promise<ApiError> {
  let code = 'http_error';
  let message = `${method} ${path} failed with ${res.status}`;
  let details: Record<string, unknown> | undefined;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string; details?: Record<string, unknown> } };
    if (body.error?.code) code = body.error.code;
    if (body.error?.message) message = body.error.message;
    details = body.error?.details;
  } catch {
    /* not JSON */
  }
  if (res.status === 401 && auth.session) sessionExpired();
  return new ApiError(message, res.status, code, details);
}

export async function send(method: string, path: string, init: { body?: BodyInit; headers?: Record<string, string> } = {}): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(path, { method, headers: headers(init.headers), body: init.body, cache: 'no-store', credentials: 'same-origin' });
  } catch (err) {
    network.online = false; // whatever navigator.onLine says, the server is out of reach
    throw new ApiError(`the server cannot be reached (${(err as Error).message})`, 0, 'offline');
  }
  network.online = true;
  if (!res.ok) throw await failure(res, method, path);
  return res;
}

export async function getJson<T>(path: string): Promise<T> {
  return (await (await send('GET', path)).json()) as T;
}

export async function postJson<T>(path: string, body: unknown, extraHeaders: Record<string, string> = {}): Promise<T> {
  const res = await send('POST', path, { body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...extraHeaders } });
  return res.status === 204 ? (undefined as T) : ((await res.json()) as T);
}

export async function del(path: string): Promise<void> {
  await send('DELETE', path);
}

/** Downloads bytes; onProgress(received, total) when the server sends Content-Length. */
export async function getBytes(path: string, onProgress?: (received: number, total: number) => void): Promise<Uint8Array> {
  const res = await send('GET', path);
  const total = Number(res.headers.get('content-length') ?? 0);
  if (!res.body || !onProgress) return new Uint8Array(await res.arrayBuffer());
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    onProgress(received, total || received);
  }
  const out = new Uint8Array(received);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
