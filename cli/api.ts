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

  private send(method: string, path: string, body?: Uint8Array, contentType?: string, extraHeaders?: Record<string, string>): Promise<Response> {
    return this.withReauth(() => this.sendOnce(method, path, body, contentType, extraHeaders));
  }

  /** Runs `attempt`; on 403 reauth_required with a password provider, proves the password and runs it once more. */
  private async withReauth<T>(attempt: () => Promise<T>): Promise<T> {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 403 && err.code === 'reauth_required' && this.auth.kind === 'session' && this.auth.reauth)) throw err;
      const password = await this.auth.reauth();
      await this.sendOnce('POST', '/v1/sessions/reauth', new TextEncoder().encode(JSON.stringify({ password })), 'application/json');
      return attempt();
    }
  }

  /** The request's authentication headers: the bearer token, or the robot's signature over method, path and body. */
  private authHeaders(method: string, path: string, raw: Uint8Array, headers: Record<string, string>): void {
    if (this.auth.kind === 'session') headers.authorization = `Bearer ${this.auth.token}`;
    if (this.auth.kind === 'robot') {
      const url = new URL(path, this.baseUrl);
      const signed = signRobotRequest({ method, path: url.pathname + url.search, body: raw, secretKey: this.auth.secretKey });
      headers[ROBOT_HEADERS.robot] = this.auth.robotId;
      headers[ROBOT_HEADERS.timestamp] = String(signed.timestamp);
      headers[ROBOT_HEADERS.nonce] = signed.nonce;
      headers[ROBOT_HEADERS.signature] = toBase64(signed.signature);
    }
  }

  private async sendOnce(method: string, path: string, body?: Uint8Array, contentType?: string, extraHeaders?: Record<string, string>): Promise<Response> {
    const headers: Record<string, string> = { ...extraHeaders };
    if (contentType) headers['content-type'] = contentType;
    const raw = body ?? new Uint8Array(0);
    this.authHeaders(method, path, raw, headers);
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
    if (method === 'GET' && body === undefined) return (await this.viaNodeHttp('GET', path)).bytes;
    const res = await this.send(method, path, body, body ? 'application/octet-stream' : undefined);
    return new Uint8Array(await res.arrayBuffer());
  }

  /**
   * Large binary bodies (contribution packages, aggregates: tens of MB) go through node:http with one
   * buffer sized from Content-Length each way: fetch's web-stream body handling (and its copy of the
   * upload) cost ~2.5x the CPU per byte here (a round of 100 robots x 1 M parameters moves 1.6 GB each
   * way). Same authentication, errors (ApiError from the server's JSON body, `unreachable`) and
   * re-authentication as every other call.
   */
  private viaNodeHttp(method: string, path: string, body?: Uint8Array, extraHeaders?: Record<string, string>): Promise<{ bytes: Uint8Array }> {
    return this.withReauth(() => this.viaNodeHttpOnce(method, path, body, extraHeaders));
  }

  private async viaNodeHttpOnce(method: string, path: string, body?: Uint8Array, extraHeaders?: Record<string, string>): Promise<{ bytes: Uint8Array }> {
    const url = new URL(path, this.baseUrl);
    const headers: Record<string, string> = { ...extraHeaders };
    if (body !== undefined) {
      headers['content-type'] = 'application/octet-stream';
      headers['content-length'] = String(body.length);
    }
    this.authHeaders(method, path, body ?? new Uint8Array(0), headers);
    const { request } = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
    let sent = false;
    const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      const req = request(url, { method, headers }, resolve);
      req.once('error', (err) =>
        reject(
          sent
            ? new ApiError(`lost the answer from ${this.baseUrl}: ${err.message}`, 0, 'unreachable')
            : new ApiError(`cannot reach ${this.baseUrl}: ${err.message}`, 0, 'unreachable'),
        ),
      );
      req.end(body, () => (sent = true));
    });
    const status = res.statusCode ?? 0;
    const lengthText = res.headers['content-length'];
    const length = lengthText !== undefined && /^[0-9]{1,15}$/.test(lengthText) ? Number(lengthText) : null;
    // One buffer when the length is announced (and sane); chunks otherwise or if it turns out wrong.
    let buffer = length !== null && length <= 1 << 30 ? new Uint8Array(length) : null;
    const chunks: Uint8Array[] = [];
    let received = 0;
    // 'data' callbacks, not `for await`: a promise per 16-64 KB chunk cost more than the copying.
    await new Promise<void>((resolve, reject) => {
      const lost = (why: string) => reject(new ApiError(`lost the answer from ${this.baseUrl}: ${why}`, 0, 'unreachable'));
      res.on('data', (chunk: Uint8Array) => {
        if (buffer && received + chunk.length <= buffer.length) buffer.set(chunk, received);
        else {
          if (buffer) chunks.push(buffer.subarray(0, received));
          buffer = null;
          chunks.push(chunk);
        }
        received += chunk.length;
      });
      res.once('end', resolve);
      res.once('error', (err) => lost(err.message));
      res.once('close', () => (res.complete ? resolve() : lost('the connection closed before the body was complete')));
    });
    const bytes = buffer && received === buffer.length ? buffer : concatChunks(buffer ? [buffer.subarray(0, received)] : chunks, received);
    if (status < 200 || status >= 300) {
      const responseHeaders = new Headers();
      for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') responseHeaders.set(k, v);
      throw await apiErrorOf(new Response(bytes as Uint8Array<ArrayBuffer>, { status, headers: responseHeaders }), `${method} ${path}`);
    }
    return { bytes };
  }

  /** POSTs bytes; `headers` adds request headers (e.g. Idempotency-Key), signed requests are re-signed per call. */
  async postBinary<T>(path: string, body: Uint8Array, options: { headers?: Record<string, string> } = {}): Promise<T> {
    const { bytes } = await this.viaNodeHttp('POST', path, body, options.headers);
    try {
      return JSON.parse(new TextDecoder().decode(bytes)) as T;
    } catch (err) {
      // The answer was cut off (connection lost mid-body): the request may or may not have taken effect.
      throw new ApiError(`lost the answer from ${this.baseUrl}: ${(err as Error).message}`, 0, 'unreachable');
    }
  }
}

function concatChunks(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
