// The API client of a signed-in person (the session stored by `tensorguard login` in <home>/config.json).
// Sensitive routes (user changes, HE key rotation and revocation) want a password proof from the last
// few minutes; the client answers their 403 `reauth_required` by asking for the password the way login
// does (TG_PASSWORD or a prompt on the terminal), proving it, and repeating the request once.
import type { CommandContext } from './context.ts';
import { ApiClient } from './api.ts';
import { readSession, type SessionConfig } from './home.ts';

export async function sessionClient(ctx: CommandContext): Promise<{ session: SessionConfig; api: ApiClient }> {
  const session = await readSession(ctx.home);
  const api = new ApiClient(session.server, { kind: 'session', token: session.token, reauth: () => ctx.password(`${session.user} (re-authentication)`) });
  return { session, api };
}
