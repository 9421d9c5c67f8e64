// Start-up configuration checks. With TG_ENV=production the server refuses to start when a secret is
// missing or weak, a development-only setting is on, or it would be reached over plain HTTP without a
// declared TLS-terminating proxy; every problem says what to change (OWASP ASVS 13.x configuration).

/** Settings that exist for tests and benchmarks only. */
const DEVELOPMENT_ONLY: Array<{ name: string; why: string }> = [
  { name: 'TG_BENCH_NULL_SINK', why: 'mounts an unauthenticated upload sink for the ingest benchmark' },
  { name: 'TG_FAILPOINTS', why: 'injects crashes for the crash tests' },
  { name: 'TG_DEBUG', why: 'prints debugging output' },
  { name: 'TG_REAUTH_WINDOW_MS', why: 'changes how long a password proof unlocks sensitive actions (the browser tests shorten it)' },
];

/** Bounds of TG_REAUTH_WINDOW_MS: at least a second, at most the 5-minute default (never longer). */
const REAUTH_WINDOW_BOUNDS = { min: 1000, max: 5 * 60 * 1000 };

const WEAK = /^(changeme|change-me|password|secret|test|dev|development|example|token|admin|default|0+|x+)$/i;

function weakSecret(value: string): string | null {
  if (value.length < 32) return `is ${value.length} characters; use at least 32 random characters`;
  if (WEAK.test(value) || new Set(value).size < 8) return 'looks like a placeholder; use a random value';
  return null;
}

export interface ServerConfigCheck {
  production: boolean;
  /** Cookies always Secure: production, or a declared https public URL / TLS proxy. */
  secureCookies: boolean;
  trustProxy: boolean;
  /** TG_REAUTH_WINDOW_MS (development and test only): the re-authentication window; undefined = default. */
  reauthWindowMs: number | undefined;
  problems: string[];
}

export function checkServerConfig(env: Record<string, string | undefined>): ServerConfigCheck {
  const tgEnv = env.TG_ENV ?? 'development';
  const problems: string[] = [];
  if (!['production', 'development', 'test'].includes(tgEnv)) problems.push(`TG_ENV=${tgEnv} is unknown; set production, development or test`);
  const production = tgEnv === 'production';
  const publicUrl = env.TG_PUBLIC_URL;
  const proxyTls = env.TG_TRUST_PROXY_TLS === '1';
  const trustProxy = env.TG_TRUST_PROXY === '1' || proxyTls;
  if (publicUrl !== undefined && !/^https?:\/\/[^\s/]+/.test(publicUrl)) problems.push(`TG_PUBLIC_URL=${publicUrl} is not an http(s) URL`);
  const httpsDeclared = proxyTls || (publicUrl?.startsWith('https://') ?? false);
  let reauthWindowMs: number | undefined;
  const reauthText = env.TG_REAUTH_WINDOW_MS;
  if (reauthText !== undefined && reauthText !== '' && reauthText !== '0') {
    const value = Number(reauthText);
    if (!/^[0-9]{1,9}$/.test(reauthText) || value < REAUTH_WINDOW_BOUNDS.min || value > REAUTH_WINDOW_BOUNDS.max)
      problems.push(`TG_REAUTH_WINDOW_MS=${reauthText} is not a whole number of milliseconds from ${REAUTH_WINDOW_BOUNDS.min} to ${REAUTH_WINDOW_BOUNDS.max}`);
    else reauthWindowMs = value;
  }
  if (production) {
    for (const d of DEVELOPMENT_ONLY) {
      const v = env[d.name];
      if (v !== undefined && v !== '' && v !== '0') problems.push(`${d.name} is set, which ${d.why}; unset it in production`);
    }
    if (!httpsDeclared)
      problems.push(
        'the server speaks plain HTTP and no TLS-terminating proxy is declared; put it behind one and set TG_PUBLIC_URL=https://<your host> (or TG_TRUST_PROXY_TLS=1)',
      );
    if (publicUrl?.startsWith('http://')) problems.push(`TG_PUBLIC_URL=${publicUrl} is plain HTTP; use the https:// address clients reach`);
    const dbUrl = env.DATABASE_URL;
    if (dbUrl && !dbUrl.startsWith('file:')) {
      const token = env.DATABASE_AUTH_TOKEN;
      if (!token) problems.push(`DATABASE_URL points at a libsql server but DATABASE_AUTH_TOKEN is missing; set the server's auth token`);
      else if (weakSecret(token) && !token.includes('.')) problems.push(`DATABASE_AUTH_TOKEN ${weakSecret(token)}`);
      // libsql://host?tls=0 is @libsql/client's spelling of plain HTTP too.
      const plain = dbUrl.startsWith('http://') || dbUrl.startsWith('ws://') || /[?&]tls=0(&|$)/.test(dbUrl);
      if (plain) problems.push(`DATABASE_URL=${dbUrl.replace(/\/\/[^@]*@/, '//***@')} is unencrypted; use libsql:// or https://`);
    }
    for (const name of ['TG_S3_SECRET_ACCESS_KEY', 'AWS_SECRET_ACCESS_KEY']) {
      const v = env[name];
      if (v !== undefined) {
        const weak = weakSecret(v);
        if (weak && v.length < 32) problems.push(`${name} ${weak}`);
        else if (v && WEAK.test(v)) problems.push(`${name} looks like a placeholder; use the real key`);
      }
    }
    for (const name of ['TG_RATE_USER_PER_MIN', 'TG_RATE_ROBOT_PER_MIN', 'TG_RATE_SIGNIN_FAILURES']) {
      if (env[name] !== undefined && Number(env[name]) > 100_000) problems.push(`${name}=${env[name]} effectively disables rate limiting; unset it`);
    }
  }
  return { production, secureCookies: production || httpsDeclared, trustProxy, reauthWindowMs: production ? undefined : reauthWindowMs, problems };
}

export class ConfigurationError extends Error {
  constructor(readonly problems: string[]) {
    super(`refusing to start (TG_ENV=production):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigurationError';
  }
}

/** Throws ConfigurationError listing every problem. */
export function assertServerConfig(env: Record<string, string | undefined>): ServerConfigCheck {
  const check = checkServerConfig(env);
  if (check.problems.length > 0) throw new ConfigurationError(check.problems);
  return check;
}
