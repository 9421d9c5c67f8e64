// Who is signed in: the user and organization (from POST /v1/bootstrap or /v1/sessions) kept in the UI's
// IndexedDB, shared as rune state. The session token itself travels only in the HttpOnly `tg_session`
// cookie the server sets: no script here ever sees it, so an injected script cannot steal it. Signing
// out ends the session on the server, which clears the cookie; the officer's keys stay in the workers'
// key store (Settings can remove them).
import { db, type SessionRow } from './db.ts';
import type { OrgJson, UserJson } from './types.ts';

export const auth = $state<{ ready: boolean; session: SessionRow | null; expired: boolean }>({ ready: false, session: null, expired: false });

export async function loadSession(): Promise<void> {
  const row = (await db.session.get('current')) ?? null;
  // Rows from before the cookie switch carried the token: drop it.
  if (row && 'token' in row) {
    delete (row as Partial<{ token: string }>).token;
    await db.session.put(row);
  }
  auth.session = row && row.expiresAt > Date.now() ? row : null;
  auth.ready = true;
}

async function remember(body: { expiresAt: number; user: UserJson; org?: OrgJson }): Promise<void> {
  let org = body.org;
  if (!org) {
    const me = await fetch('/v1/me', { cache: 'no-store' });
    if (!me.ok) throw new Error(`signed in, but /v1/me answered ${me.status}`);
    org = ((await me.json()) as { org: OrgJson }).org;
  }
  const row: SessionRow = { id: 'current', expiresAt: body.expiresAt, user: body.user, org };
  await db.session.put(row);
  auth.session = row;
  auth.expired = false;
}

async function post(path: string, body: unknown): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  } catch {
    throw new Error('the server cannot be reached');
  }
  const json = (await res.json().catch(() => ({}))) as Record<string, unknown> & { error?: { code: string; message: string } };
  if (!res.ok) {
    const e = new Error(json.error?.message ?? `failed with ${res.status}`) as Error & { code?: string };
    e.code = json.error?.code;
    throw e;
  }
  return json;
}

export async function signIn(options: { user: string; password: string }): Promise<void> {
  await remember((await post('/v1/sessions', options)) as never);
}

export async function bootstrapOrganization(options: { org: string; user: string; password: string }): Promise<void> {
  await remember((await post('/v1/bootstrap', options)) as never);
}

export async function signOut(): Promise<void> {
  if (auth.session) await fetch('/v1/sessions/current', { method: 'DELETE' }).catch(() => undefined);
  await db.session.delete('current');
  auth.session = null;
}

/** A 401 from the server: the session is no longer valid (expired, idle too long, or revoked). */
export function sessionExpired(): void {
  auth.expired = true;
}

export function hasRole(role: string): boolean {
  return auth.session?.user.roles.includes(role) ?? false;
}
