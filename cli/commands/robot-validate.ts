// `tensorguard robot validate`: asks the server whether motion commands are safe to execute
// (POST /v1/safety/validate, or /batch for several). By default through a safety session
// (cli/lib/safety-client.ts: one ML-DSA-signed open, then HMAC-authenticated requests); `--signed`
// signs each request with ML-DSA-44 instead. `--heartbeat armed|engaged|...` reports the e-stop state
// first. The file holds one safety request, an array of them, or `{requests: [...]}`.
import { readFile } from 'node:fs/promises';
import type { CommandContext } from '../context.ts';
import { CliError } from '../context.ts';
import { robotClient } from './robot.ts';
import { SafetyClient } from '../lib/safety-client.ts';
import { ESTOP_STATES, type EstopState } from '../../core/safety/validate.ts';

const MAX_BATCH = 64;

export async function robotValidate(ctx: CommandContext, opts: { request: string; signed?: boolean; heartbeat?: string }) {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(opts.request, 'utf8'));
  } catch (err) {
    throw new CliError(`--request ${opts.request}: ${(err as Error).message}`, 'bad_argument');
  }
  const requests = Array.isArray(parsed) ? parsed : parsed && typeof parsed === 'object' && Array.isArray((parsed as { requests?: unknown }).requests) ? (parsed as { requests: unknown[] }).requests : null;
  if (requests && (requests.length < 1 || requests.length > MAX_BATCH)) throw new CliError(`--request holds ${requests.length} requests; 1..${MAX_BATCH} per call`, 'bad_argument');
  if (opts.heartbeat !== undefined && !(ESTOP_STATES as readonly string[]).includes(opts.heartbeat))
    throw new CliError(`--heartbeat expects one of ${ESTOP_STATES.join(', ')}, got ${opts.heartbeat}`, 'bad_argument');
  const { api, identity, secrets } = await robotClient(ctx);
  const heartbeat = opts.heartbeat as EstopState | undefined;

  if (opts.signed) {
    if (heartbeat) await api.json('POST', '/v1/robots/me/heartbeat', { estop: heartbeat, robotTime: Date.now() });
    const result = requests ? await api.json('POST', '/v1/safety/validate/batch', { requests }) : await api.json('POST', '/v1/safety/validate', parsed);
    return { robotId: identity.robotId, auth: 'signed', result };
  }
  const client = new SafetyClient({ serverUrl: identity.serverUrl, robotId: identity.robotId, dsaSecretKey: secrets.dsaSecretKey, kemSecretKey: secrets.kemSecretKey });
  if (heartbeat) await client.heartbeat({ estop: heartbeat, robotTime: Date.now() });
  const result = requests ? await client.validateBatch(requests) : await client.validate(parsed);
  return { robotId: identity.robotId, auth: 'session', sessionExpiresAt: client.session?.expiresAt ?? null, result };
}
