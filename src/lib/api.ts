// The PWA's HTTP client for the sync server on the same origin: JSON and binary calls authenticated by
// the HttpOnly `tg_session` cookie (the browser sends it, and Sec-Fetch-Site: same-origin with it; no
// script holds the token), server errors as ApiError with the server's stable code, and "offline"
// (status 0) when the network is down. Large downloads report progress.
// Re-authentication: a sensitive call answered 403 `reauth_required` waits for the password prompt
// (ReauthDialog.svelte, mounted once by the layout, registers it with setReauthPrompt), which proves the
// password (POST /v1/sessions/reauth); then the call is sent again exactly once. A cancelled prompt or a
// wrong password fails the call with a ReauthError the page shows. Concurrent calls share one prompt.
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

/** A sensitive call that could not be re-authenticated: `reauth_cancelled` or `reauth_failed` (cause kept). */
export class ReauthError extends ApiError {
  constructor(message: string, status: number, code: 'reauth_cancelled' | 'reauth_failed', options?: { cause?: unknown }) {
    super(message, status, code);
    this.name = 'ReauthError';
    if (options?.cause !== undefined) (this as { cause?: unknown }).cause = options.cause;
  }
}

/** Asks for the password and proves it; resolves once proved, rejects with ReauthError otherwise. */
export type ReauthPrompt = (request: { method: string; path: string }) => Promise<void>;
let reauthPrompt: ReauthPrompt | null = null;
let pendingReauth: Promise<void> | null = null;

export function setReauthPrompt(prompt: ReauthPrompt | null): void {
  reauthPrompt = prompt;
}

function reauthenticate(request: { method: string; path: string }): Promise<void> {
  if (!reauthPrompt) return Promise.reject(new ReauthError('this action needs your password again, and no password prompt is available', 403, 'reauth_failed'));
  pendingReauth ??= reauthPrompt(request).finally(() => (pendingReauth = null));
  return pendingReauth;
}

/** POST /v1/sessions/reauth. A wrong password is ApiError 401 `wrong_password` (the session stays valid). */
export async function provePassword(password: string): Promise<void> {
  await postJson('/v1/sessions/reauth', { password });
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
  if (res.status === 401 && code !== 'wrong_password' && auth.session) sessionExpired();
  return new ApiError(message, res.status, code, details);
}

/** One call; after a password prompt it is sent again, so `body` must be re-readable (not a stream). */
export async function send(method: string, path: string, init: { body?: BodyInit; headers?: Record<string, string> } = {}): Promise<Response> {
  const res = await sendOnce(method, path, init);
  if (res.ok) return res;
  const error = await failure(res, method, path);
  if (res.status !== 403 || error.code !== 'reauth_required') throw error;
  await reauthenticate({ method, path });
  const retry = await sendOnce(method, path, init); // exactly once: a second refusal is the caller's error
  if (!retry.ok) throw await failure(retry, method, path);
  return retry;
}

async function sendOnce(method: string, path: string, init: { body?: BodyInit; headers?: Record<string, string> }): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(path, { method, headers: headers(init.headers), body: init.body, cache: 'no-store', credentials: 'same-origin' });
  } catch (err) {
    network.online = false; // whatever navigator.onLine says, the server is out of reach
    throw new ApiError(`the server cannot be reached (${(err as Error).message})`, 0, 'offline');
  }
  network.online = true;
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
