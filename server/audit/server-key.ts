// The server's own ML-DSA-65 key that signs audit checkpoints (core/audit/checkpoint.ts). Generated at
// first start and kept in a file readable only by the server's user (mode 0600): by default
// <DATA_DIR>/audit-signing-key.json, or the path in TG_SERVER_KEY_FILE (e.g. a mounted secret). The
// file holds the 32-byte ML-DSA key-generation seed and the public key it must produce; a file that
// others can read, that does not parse, or whose seed gives another public key refuses to load.
// A lost key is not silently replaced: clients pinned its public key and alarm on a new one.
import { open, readFile, stat, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { generateSigningKeyPair } from '../../core/crypto/sign.ts';
import { randomBytes } from '../../core/random.ts';
import { equalBytes, fromBase64, toBase64 } from '../../core/bytes.ts';

export const SERVER_KEY_FORMAT = 'tensorguard-server-audit-key/v1';
export const DEFAULT_SERVER_KEY_FILE = 'audit-signing-key.json';

export interface ServerAuditKey {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

const KeyFile = z.strictObject({ format: z.literal(SERVER_KEY_FORMAT), algorithm: z.literal('ml-dsa-65'), seed: z.string().max(64), publicKey: z.string().max(4096) });

export class ServerKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServerKeyError';
  }
}

export function serverAuditKeyFromSeed(options: { seed: Uint8Array }): ServerAuditKey {
  const { publicKey, secretKey } = generateSigningKeyPair({ algorithm: 'ml-dsa-65', seed: options.seed });
  return { publicKey, secretKey };
}

/** Loads the key file, or creates it (exclusively, mode 0600) when it does not exist yet. */
export async function loadOrCreateServerAuditKey(options: { dataDir: string; keyFile?: string }): Promise<{ key: ServerAuditKey; path: string; created: boolean }> {
  const path = options.keyFile ?? join(options.dataDir, DEFAULT_SERVER_KEY_FILE);
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    try {
      return { key: await createKeyFile(path), path, created: true };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      return loadOrCreateServerAuditKey(options); // another process created it first: use theirs
    }
  }
  if (!info.isFile()) throw new ServerKeyError(`${path} is not a file`);
  if ((info.mode & 0o077) !== 0)
    throw new ServerKeyError(`${path} is readable by other users (mode ${(info.mode & 0o777).toString(8)}); run chmod 600 ${path}`);
  let parsed: z.infer<typeof KeyFile>;
  try {
    parsed = KeyFile.parse(JSON.parse(await readFile(path, 'utf8')));
  } catch (cause) {
    throw new ServerKeyError(`${path} is not a ${SERVER_KEY_FORMAT} key file: ${(cause as Error).message}`);
  }
  const seed = fromBase64(parsed.seed, 'seed');
  if (seed.length !== 32) throw new ServerKeyError(`${path}: seed must be 32 bytes`);
  const key = serverAuditKeyFromSeed({ seed });
  if (!equalBytes(key.publicKey, fromBase64(parsed.publicKey, 'publicKey'))) throw new ServerKeyError(`${path}: the seed does not produce the recorded public key`);
  return { key, path, created: false };
}

async function createKeyFile(path: string): Promise<ServerAuditKey> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const seed = randomBytes(32);
  const key = serverAuditKeyFromSeed({ seed });
  const text = JSON.stringify({ format: SERVER_KEY_FORMAT, algorithm: 'ml-dsa-65', seed: toBase64(seed), publicKey: toBase64(key.publicKey) }, null, 2) + '\n';
  // 'wx': fail if another process created it meanwhile, so two first starts never hold different keys.
  const fh = await open(path, 'wx', 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  seed.fill(0);
  return key;
}
