// The robot side of command safety validation: a safety session opened once with an ML-DSA-signed
// request, then HMAC-authenticated validate / batch / heartbeat calls (server/http/robot-session.ts).
//
//   open():    signed POST /v1/safety/sessions -> { sessionId, expiresAt, kemCiphertext, wrappedKey }
//              key = unwrapContentKey(kem secret key, context = safetySessionContext(sessionId, robotId,
//              expiresAt)); an altered id or expiry fails the unwrap (the context is the AES-GCM AAD).
//   request(): counter += 1; x-tg-mac = HMAC-SHA256(key, method, path, counter, SHA-256(body))
//              (core/records/safety-session.ts). A session the server no longer knows (another
//              instance, a restart, eviction) or that expired answers 401 `session_unknown` /
//              `session_expired`: the client opens a new session and sends the request once more.
//              Sessions are renewed RENEW_BEFORE_MS before they expire.
// The key lives only in this object's memory; nothing is written to disk.
import { ApiClient, ApiError, apiErrorOf } from '../api.ts';
import { unwrapContentKey } from '../../core/crypto/kem.ts';
import { fromBase64 } from '../../core/bytes.ts';
import { SAFETY_SESSION_HEADERS, macSessionRequest, safetySessionContext } from '../../core/records/safety-session.ts';

/** Open a new session this long before the current one expires. */
const RENEW_BEFORE_MS = 30_000;
const REOPEN_CODES = new Set(['session_unknown', 'session_expired']);

export interface SafetySession {
  sessionId: string;
  robotId: string;
  expiresAt: number;
  counterWindow: number;
  key: Uint8Array;
  /** The last counter used; the next request sends counter + 1. */
  counter: number;
}

interface OpenResponse {
  sessionId: string;
  robotId: string;
  expiresAt: number;
  counterWindow: number;
  kemCiphertext: string;
  wrappedKey: string;
}

/** Opens a session with one signed request and unwraps its key with the robot's ML-KEM secret key. */
export async function openSafetySession(options: { api: ApiClient; robotId: string; kemSecretKey: Uint8Array }): Promise<SafetySession> {
  const res = await options.api.json<OpenResponse>('POST', '/v1/safety/sessions');
  if (res.robotId !== options.robotId) throw new ApiError(`the server opened a session for ${res.robotId}, not ${options.robotId}`, 0, 'integrity');
  const key = unwrapContentKey({
    kemCiphertext: fromBase64(res.kemCiphertext, 'kemCiphertext'),
    wrappedKey: fromBase64(res.wrappedKey, 'wrappedKey'),
    secretKey: options.kemSecretKey,
    context: safetySessionContext({ sessionId: res.sessionId, robotId: options.robotId, expiresAt: res.expiresAt }),
  });
  return { sessionId: res.sessionId, robotId: options.robotId, expiresAt: res.expiresAt, counterWindow: res.counterWindow, key, counter: 0 };
}

/** The headers of one session request; advances the session's counter. */
export function sessionRequestHeaders(options: { session: SafetySession; method: string; path: string; body: Uint8Array }): Record<string, string> {
  const { session } = options;
  const counter = ++session.counter;
  const mac = macSessionRequest({ key: session.key, sessionId: session.sessionId, method: options.method, path: options.path, counter, body: options.body });
  return {
    [SAFETY_SESSION_HEADERS.robot]: session.robotId,
    [SAFETY_SESSION_HEADERS.session]: session.sessionId,
    [SAFETY_SESSION_HEADERS.counter]: String(counter),
    [SAFETY_SESSION_HEADERS.mac]: mac,
  };
}

export class SafetyClient {
  readonly #api: ApiClient;
  readonly #robotId: string;
  readonly #kemSecretKey: Uint8Array;
  readonly #now: () => number;
  #session: SafetySession | null = null;
  #opening: Promise<SafetySession> | null = null;
  /** Sessions opened so far (tests, the CLI's output). */
  opened = 0;

  constructor(options: { serverUrl: string; robotId: string; dsaSecretKey: Uint8Array; kemSecretKey: Uint8Array; now?: () => number }) {
    this.#api = new ApiClient(options.serverUrl, { kind: 'robot', robotId: options.robotId, secretKey: options.dsaSecretKey });
    this.#robotId = options.robotId;
    this.#kemSecretKey = options.kemSecretKey;
    this.#now = options.now ?? Date.now;
  }

  get session(): SafetySession | null {
    return this.#session;
  }

  /** The current session, opened (or renewed) when needed; concurrent callers share one opening. */
  async ensureSession(): Promise<SafetySession> {
    const s = this.#session;
    if (s && s.expiresAt - this.#now() > RENEW_BEFORE_MS) return s;
    this.#opening ??= openSafetySession({ api: this.#api, robotId: this.#robotId, kemSecretKey: this.#kemSecretKey }).then(
      (opened) => {
        this.#session = opened;
        this.#opening = null;
        this.opened++;
        return opened;
      },
      (error) => {
        this.#opening = null;
        throw error;
      },
    );
    return this.#opening;
  }

  /** One session-authenticated JSON request; re-opens the session once when the server lost it. */
  async request<T>(method: string, path: string, body: unknown): Promise<T> {
    const bytes = new TextEncoder().encode(JSON.stringify(body));
    for (let attempt = 0; ; attempt++) {
      const session = await this.ensureSession();
      const url = new URL(path, this.#api.baseUrl);
      let res: Response;
      try {
        res = await fetch(url, { method, headers: { 'content-type': 'application/json', ...sessionRequestHeaders({ session, method, path: url.pathname + url.search, body: bytes }) }, body: bytes });
      } catch (err) {
        throw new ApiError(`cannot reach ${this.#api.baseUrl}: ${(err as Error).message}`, 0, 'unreachable');
      }
      if (res.ok) return (await res.json()) as T;
      const error = await apiErrorOf(res, `${method} ${path}`);
      if (res.status === 401 && REOPEN_CODES.has(error.code) && attempt === 0) {
        if (this.#session === session) this.#session = null;
        continue;
      }
      throw error;
    }
  }

  validate<T = unknown>(request: unknown): Promise<T> {
    return this.request<T>('POST', '/v1/safety/validate', request);
  }

  validateBatch<T = unknown>(requests: unknown[]): Promise<T> {
    return this.request<T>('POST', '/v1/safety/validate/batch', { requests });
  }

  heartbeat<T = unknown>(options: { estop: 'armed' | 'engaged' | 'fault' | 'unavailable'; robotTime?: number }): Promise<T> {
    return this.request<T>('POST', '/v1/robots/me/heartbeat', options);
  }
}
