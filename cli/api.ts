// HTTP client for the sync server: people authenticate with a bearer session token, robots sign every
// request (core/records/request-signature.ts). Server errors arrive as { error: { code, message } }
// and become ApiError with the same code and status.
import { signRobotRequest, ROBOT_HEADERS } from '../core/records/request-signature.ts';
import { toBase64 } from '../core/bytes.ts';

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    /** The server's Retry-After, in milliseconds, when it sent one (503, 429). */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Retry-After as delay-seconds or an HTTP date (RFC 9110 section 10.2.3), in ms from now. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * How requests authenticate. A person's session may carry `reauth`: asked for the password when a
 * sensitive route answers 403 `reauth_required` (the server wants a fresh password proof); the client
 * then proves it (POST /v1/sessions/reauth) and repeats the request once.
 */
/** The ApiError for a non-2xx response: the server's `{ error: { code, message } }` when it sent one. */
export async function apiErrorOf(res: Response, what: string): Promise<ApiError> {
  let code = 'http_error';
  let message = `${what} failed with ${res.status}`;
  try {
    const j = (await res.json()) as { error?: { code?: string; message?: string } };
    if (j.error?.code) code = j.error.code;
    if (j.error?.message) message = `${j.error.message} (${res.status} ${code})`;
  } catch {
    /* non-JSON error body */
  }
  return new ApiError(message, res.status, code, parseRetryAfter(res.headers.get('retry-after')));
}

export type Auth =
  | { kind: 'none' }
  | { kind: 'session'; token: string; reauth?: () => Promise<string> }
  | { kind: 'robot'; robotId: string; secretKey: Uint8Array };

export class ApiClient {
  constructor(readonly baseUrl: string, private readonly auth: Auth) {
    if (!/^https?:\/\//.test(baseUrl)) throw new TypeError(`"server" expected http(s) URL, got ${baseUrl}`);
  }

  private async send(method: string, path: string, body?: Uint8Array, contentType?: string, extraHeaders?: Record<string, string>): Promise<Response> {
    try {
      return await this.sendOnce(method, path, body, contentType, extraHeaders);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 403 && err.code === 'reauth_required' && this.auth.kind === 'session' && this.auth.reauth)) throw err;
      const password = await this.auth.reauth();
      await this.sendOnce('POST', '/v1/sessions/reauth', new TextEncoder().encode(JSON.stringify({ password })), 'application/json');
      return this.sendOnce(method, path, body, contentType, extraHeaders);
    }
  }

  private async sendOnce(method: string, path: string, body?: Uint8Array, contentType?: string, extraHeaders?: Record<string, string>): Promise<Response> {
    const headers: Record<string, string> = { ...extraHeaders };
    if (contentType) headers['content-type'] = contentType;
    const raw = body ?? new Uint8Array(0);
    if (this.auth.kind === 'session') headers.authorization = `Bearer ${this.auth.token}`;
    if (this.auth.kind === 'robot') {
      const url = new URL(path, this.baseUrl);
      const signed = signRobotRequest({ method, path: url.pathname + url.search, body: raw, secretKey: this.auth.secretKey });
      headers[ROBOT_HEADERS.robot] = this.auth.robotId;
      headers[ROBOT_HEADERS.timestamp] = String(signed.timestamp);
      headers[ROBOT_HEADERS.nonce] = signed.nonce;
      headers[ROBOT_HEADERS.signature] = toBase64(signed.signature);
    }
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), { method, headers, body: body === undefined ? undefined : (raw as unknown as BodyInit) });
    } catch (err) {
      throw new ApiError(`cannot reach ${this.baseUrl}: ${(err as Error).message}`, 0, 'unreachable');
    }
    // 304 answers a conditional GET (If-None-Match): not an error, the caller asked for it.
    if (!res.ok && !(res.status === 304 && extraHeaders?.['if-none-match'] !== undefined)) throw await apiErrorOf(res, `${method} ${path}`);
    return res;
  }

  /** A conditional GET: null when the server answers 304 for `etag`, else the JSON and the ETag it sent. */
  async jsonIfChanged<T>(path: string, etag?: string): Promise<{ body: T; etag: string | null } | null> {
    const res = await this.send('GET', path, undefined, undefined, etag === undefined ? undefined : { 'if-none-match': etag });
    if (res.status === 304) return null;
    return { body: (await res.json()) as T, etag: res.headers.get('etag') };
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.send(method, path, body === undefined ? undefined : new TextEncoder().encode(JSON.stringify(body)), body === undefined ? undefined : 'application/json');
    return (await res.json()) as T;
  }

  async binary(method: string, path: string, body?: Uint8Array): Promise<Uint8Array> {
    const res = await this.send(method, path, body, body ? 'application/octet-stream' : undefined);
    return new Uint8Array(await res.arrayBuffer());
  }

  /** POSTs bytes; `headers` adds request headers (e.g. Idempotency-Key), signed requests are re-signed per call. */
  async postBinary<T>(path: string, body: Uint8Array, options: { headers?: Record<string, string> } = {}): Promise<T> {
    const res = await this.send('POST', path, body, 'application/octet-stream', options.headers);
    try {
      return (await res.json()) as T;
    } catch (err) {
      // The answer was cut off (connection lost mid-body): the request may or may not have taken effect.
      throw new ApiError(`lost the answer from ${this.baseUrl}: ${(err as Error).message}`, 0, 'unreachable');
    }
  }
}
