// Domain-separated SHA-256 fingerprints: the value every TensorGuard signature covers.
// fingerprint = SHA-256( "tensorguard/" + domain + 0x00 + bytes ). The domain names the record type and
// version, so bytes of one record type can never be replayed as another.
import { sha256 } from '@noble/hashes/sha2.js';

const encoder = new TextEncoder();

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

export { sha256 };
