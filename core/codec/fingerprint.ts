// Domain-separated SHA-256 fingerprints: the value every TensorGuard signature covers.
// fingerprint = SHA-256( "tensorguard/" + domain + 0x00 + bytes ). The domain names the record type and
// version, so bytes of one record type can never be replayed as another.
//
// SHA-256 itself: Node's native implementation where the runtime has one (process.getBuiltinModule, so
// core/ imports nothing Node-specific and bundles unchanged for the browser), @noble/hashes elsewhere. The
// two give the same digests (tested); the native one is ~10x faster on the 16 MB update packages that a
// round hashes several times on the robot, the server and the officer's CLI. Browsers keep noble because
// WebCrypto's digest is asynchronous and the records are verified synchronously.
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';

const encoder = new TextEncoder();

/** An incremental SHA-256. */
export interface Sha256Hasher {
  update(data: Uint8Array): Sha256Hasher;
  digest(): Uint8Array;
}

interface NodeHash {
  update(data: Uint8Array): unknown;
  digest(): Uint8Array;
}
type NodeCrypto = { createHash(algorithm: 'sha256'): NodeHash };
const nodeCrypto = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined;

function createNative(crypto: NodeCrypto): Sha256Hasher {
  const h = crypto.createHash('sha256');
  const hasher: Sha256Hasher = {
    update(data) {
      h.update(data);
      return hasher;
    },
    digest: () => new Uint8Array(h.digest()),
  };
  return hasher;
}

/** Which implementation `sha256` uses in this runtime (reported by benchmarks). */
export const SHA256_IMPLEMENTATION: 'node:crypto' | '@noble/hashes' = nodeCrypto ? 'node:crypto' : '@noble/hashes';

/** SHA-256 of `bytes`; `sha256.create()` for incremental hashing. */
export const sha256: ((bytes: Uint8Array) => Uint8Array) & { create(): Sha256Hasher } = Object.assign(
  (bytes: Uint8Array): Uint8Array => (nodeCrypto ? createNative(nodeCrypto).update(bytes).digest() : nobleSha256(bytes)),
  { create: (): Sha256Hasher => (nodeCrypto ? createNative(nodeCrypto) : nobleSha256.create()) },
);

export function fingerprint(options: { domain: string; bytes: Uint8Array }): Uint8Array {
  const { domain, bytes } = options;
  if (typeof domain !== 'string' || !/^[a-z0-9/_-]{1,64}$/.test(domain))
    throw new TypeError(`"domain" expected lowercase identifier, got ${String(domain)}`);
  const h = sha256.create();
  h.update(encoder.encode(`tensorguard/${domain}`));
  h.update(new Uint8Array([0]));
  h.update(bytes);
  return h.digest();
}

