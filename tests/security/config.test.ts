// TG_ENV=production refuses to start with a development-only setting, plain HTTP without a declared
// TLS-terminating proxy, or a missing or weak secret — and the message says what to change.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkServerConfig, ConfigurationError } from '../../server/config.ts';
import { startServer } from '../../server/main.ts';
import { silentLogger } from '../../server/logger.ts';

const OK = { TG_ENV: 'production', TG_PUBLIC_URL: 'https://tg.example.com' };

describe('production configuration checks', () => {
  it('accepts a production setup behind a declared TLS proxy, with Secure cookies', () => {
    expect(checkServerConfig(OK)).toMatchObject({ production: true, secureCookies: true, problems: [] });
    expect(checkServerConfig({ TG_ENV: 'production', TG_TRUST_PROXY_TLS: '1' }).problems).toEqual([]);
    expect(checkServerConfig({}).problems).toEqual([]); // development: anything goes
  });

  it.each([
    [{ TG_ENV: 'production' }, /plain HTTP.*TG_PUBLIC_URL=https/],
    [{ TG_ENV: 'production', TG_PUBLIC_URL: 'http://tg.example.com' }, /TG_PUBLIC_URL=http:\/\/tg.example.com is plain HTTP/],
    [{ ...OK, TG_BENCH_NULL_SINK: '1' }, /TG_BENCH_NULL_SINK is set.*unset it in production/],
    [{ ...OK, TG_FAILPOINTS: 'contribution.after_commit=0.1' }, /TG_FAILPOINTS is set/],
    [{ ...OK, DATABASE_URL: 'libsql://db.example.com' }, /DATABASE_AUTH_TOKEN is missing/],
    [{ ...OK, DATABASE_URL: 'libsql://db.example.com', DATABASE_AUTH_TOKEN: 'changeme' }, /DATABASE_AUTH_TOKEN is 8 characters; use at least 32/],
    [{ ...OK, DATABASE_URL: 'http://db.example.com', DATABASE_AUTH_TOKEN: 'x'.repeat(40) }, /unencrypted/],
    [{ ...OK, DATABASE_URL: 'libsql://db.example.com?tls=0', DATABASE_AUTH_TOKEN: 'x'.repeat(40) }, /unencrypted/],
    [{ ...OK, TG_RATE_USER_PER_MIN: '10000000' }, /disables rate limiting/],
    [{ TG_ENV: 'prod' }, /TG_ENV=prod is unknown/],
  ])('refuses %j', (env, message) => {
    const { problems } = checkServerConfig(env as Record<string, string>);
    expect(problems.join('\n')).toMatch(message);
  });

  it('refuses to start the server and lists every problem', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tg-config-'));
    try {
      const start = startServer({ port: 0, dataDir: dir, logger: silentLogger, env: { TG_ENV: 'production', TG_FAILPOINTS: 'x=0.1' } });
      await expect(start).rejects.toBeInstanceOf(ConfigurationError);
      await expect(start).rejects.toThrow(/refusing to start \(TG_ENV=production\):\n  - TG_FAILPOINTS is set[\s\S]*TG_PUBLIC_URL=https/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
