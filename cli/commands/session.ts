// `tensorguard admin bootstrap`, `login`, `user add`, `fleet create`: people-side account management.
import { join } from 'node:path';
import type { CommandContext } from '../context.ts';
import { ApiClient } from '../api.ts';
import { sessionClient } from '../session-client.ts';
import { writeJson, type SessionConfig } from '../home.ts';
import { DEFAULT_ENVELOPE } from '../../core/envelope.ts';

function normalizeServer(url: string): string {
  return url.replace(/\/+$/, '');
}

export async function adminBootstrap(ctx: CommandContext, opts: { server: string; org: string; user: string }): Promise<{ orgId: string; user: string }> {
  const server = normalizeServer(opts.server);
  const api = new ApiClient(server, { kind: 'none' });
  const res = await api.json<{ token: string; org: { id: string }; user: { name: string } }>('POST', '/v1/bootstrap', {
    org: opts.org,
    user: opts.user,
    password: await ctx.password(`new admin ${opts.user}`),
  });
  const session: SessionConfig = { server, token: res.token, user: opts.user, orgId: res.org.id };
  await writeJson(join(ctx.home, 'config.json'), session);
  return { orgId: res.org.id, user: opts.user };
}

export async function login(ctx: CommandContext, opts: { server: string; user: string }): Promise<{ user: string; orgId: string; expiresAt: unknown }> {
  const server = normalizeServer(opts.server);
  const api = new ApiClient(server, { kind: 'none' });
  const res = await api.json<{ token: string; expiresAt: unknown }>('POST', '/v1/sessions', { user: opts.user, password: await ctx.password(opts.user) });
  const me = await new ApiClient(server, { kind: 'session', token: res.token }).json<{ org: { id: string } }>('GET', '/v1/me');
  await writeJson(join(ctx.home, 'config.json'), { server, token: res.token, user: opts.user, orgId: me.org.id } satisfies SessionConfig);
  return { user: opts.user, orgId: me.org.id, expiresAt: res.expiresAt };
}

export async function userAdd(ctx: CommandContext, opts: { user: string; role: string[] }): Promise<{ user: string; roles: string[] }> {
  const { api } = await sessionClient(ctx);
  await api.json('POST', '/v1/users', { user: opts.user, password: await ctx.password(`new user ${opts.user}`), roles: opts.role });
  return { user: opts.user, roles: opts.role };
}

export async function fleetCreate(ctx: CommandContext, opts: { name: string; maxUpdateBytes?: number; maxParams?: number; dpEpsilonBudget?: number }): Promise<{ id: string; name: string }> {
  const { api } = await sessionClient(ctx);
  const envelope: Record<string, unknown> = {};
  if (opts.maxUpdateBytes) {
    const max = opts.maxUpdateBytes;
    envelope.updateBytes = { max, target: Math.min(DEFAULT_ENVELOPE.updateBytes.target, max), min: Math.min(DEFAULT_ENVELOPE.updateBytes.min, max) };
  }
  if (opts.maxParams) envelope.maxTrainableParams = opts.maxParams;
  const body: Record<string, unknown> = { name: opts.name };
  if (Object.keys(envelope).length > 0) body.envelope = envelope;
  if (opts.dpEpsilonBudget !== undefined) body.dpEpsilonBudget = opts.dpEpsilonBudget;
  const res = await api.json<{ id: string; name: string }>('POST', '/v1/fleets', body);
  return { id: res.id, name: res.name };
}
