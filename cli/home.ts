// The CLI's home directory: session config, officer and robot identities, per-round officer state.
// Public material is JSON; secret keys are sealed under a passphrase (core/crypto/secretbox.ts,
// scrypt N=2^17) and every file holding a secret is written with mode 0600 in a 0700 directory.
//
// <home>/config.json                 { server, token, user, orgId }
// <home>/officer/identity.json       officer public keys, HE key versions
// <home>/officer/secrets.sealed      ML-DSA-65 secret, HE secret keys, attestation root
// <home>/officer/rounds/<id>/        signed config, base adapter (never sent), reviewed candidate
// <home>/robot/identity.json         robot id, fleet, server, pinned officer keys
// <home>/robot/secrets.sealed        ML-DSA-44 and ML-KEM-768 secret keys
// <home>/robot/state.json            DP ledger, current release version
// <home>/robot/base/                 the adapter the robot runs (its next round's base)
// <home>/robot/residual.f32          error-feedback residual
import { mkdir, readFile, writeFile, rename, open, readdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { scrypt as nodeScrypt } from 'node:crypto';
import { openSecret, sealSecret, type ScryptFn } from '../core/crypto/secretbox.ts';
import { loadPeftAdapter, savePeftAdapter, type PeftAdapter } from '../core/peft/adapter.ts';
import { CliError } from './context.ts';

/** node:crypto's native scrypt: the same function as the pure one in core, at native speed. */
export const nativeScrypt: ScryptFn = ({ passphrase, salt, params }) =>
  new Promise((resolve, reject) =>
    nodeScrypt(passphrase, salt, 32, { N: 2 ** params.log2N, r: params.r, p: params.p, maxmem: 1024 * 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(new Uint8Array(key)),
    ),
  );

export async function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o600): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

export async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CliError(`cannot read ${path}: ${(err as Error).message}`, 'home_corrupt');
  }
}

export async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

export async function sealToFile(options: { path: string; plaintext: Uint8Array; passphrase: string }): Promise<void> {
  const sealed = await sealSecret({ plaintext: options.plaintext, passphrase: options.passphrase, scrypt: nativeScrypt });
  await writeFileAtomic(options.path, sealed);
}

export async function openFromFile(options: { path: string; passphrase: string }): Promise<Uint8Array> {
  let sealed: Uint8Array;
  try {
    sealed = new Uint8Array(await readFile(options.path));
  } catch {
    throw new CliError(`no sealed secrets at ${options.path}`, 'not_initialized');
  }
  return openSecret({ sealed, passphrase: options.passphrase, scrypt: nativeScrypt });
}

export interface SessionConfig {
  server: string;
  token: string;
  user: string;
  orgId: string;
}

export async function readSession(home: string): Promise<SessionConfig> {
  const cfg = await readJson<SessionConfig>(join(home, 'config.json'));
  if (!cfg?.token) throw new CliError(`not signed in (no session in ${home}); run tensorguard login`, 'not_signed_in');
  return cfg;
}

export async function loadAdapterDir(dir: string): Promise<PeftAdapter> {
  let config: Buffer;
  let model: Buffer;
  try {
    [config, model] = await Promise.all([readFile(join(dir, 'adapter_config.json')), readFile(join(dir, 'adapter_model.safetensors'))]);
  } catch {
    throw new CliError(`${dir} is not a PEFT adapter directory (needs adapter_config.json and adapter_model.safetensors)`, 'not_an_adapter');
  }
  return loadPeftAdapter({ files: { 'adapter_config.json': new Uint8Array(config), 'adapter_model.safetensors': new Uint8Array(model) } });
}

export async function saveAdapterDir(dir: string, adapter: PeftAdapter): Promise<{ safetensors: Uint8Array; config: Uint8Array }> {
  const files = savePeftAdapter({ adapter });
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(join(dir, 'adapter_config.json'), files['adapter_config.json'], 0o644);
  await writeFileAtomic(join(dir, 'adapter_model.safetensors'), files['adapter_model.safetensors'], 0o644);
  return { safetensors: files['adapter_model.safetensors'], config: files['adapter_config.json'] };
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export { readdir, readFile, join };
