// The officer's secret key set as one versioned JSON document (sealed at rest by core/crypto/secretbox.ts).
// The officer CLI and the PWA's key backup use this same document, so a backup from either opens in the other.
import { z } from 'zod';
import { FormatError } from '../errors.ts';
import { fromBase64, toBase64 } from '../bytes.ts';

export const OFFICER_SECRETS_FORMAT = 'tensorguard-officer-secrets/v1';

export interface OfficerHeKey {
  keyVersion: number;
  paramSetId: string;
  parmsId: Uint8Array;
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

export interface OfficerSecrets {
  dsa: { publicKey: Uint8Array; secretKey: Uint8Array };
  attestRoot: Uint8Array;
  he: OfficerHeKey[];
}

const b64 = z.string().max(8 * 1024 * 1024);
const Doc = z
  .object({
    format: z.literal(OFFICER_SECRETS_FORMAT),
    dsa: z.object({ publicKey: b64, secretKey: b64 }).strict(),
    attestRoot: b64,
    he: z.array(z.object({ keyVersion: z.number().int().min(1), paramSetId: z.string().max(64), parmsId: b64, publicKey: b64, secretKey: b64 }).strict()).max(1000),
  })
  .strict();

export function encodeOfficerSecrets(options: { secrets: OfficerSecrets }): Uint8Array {
  const s = options.secrets;
  const doc = {
    format: OFFICER_SECRETS_FORMAT,
    dsa: { publicKey: toBase64(s.dsa.publicKey), secretKey: toBase64(s.dsa.secretKey) },
    attestRoot: toBase64(s.attestRoot),
    he: s.he.map((k) => ({ keyVersion: k.keyVersion, paramSetId: k.paramSetId, parmsId: toBase64(k.parmsId), publicKey: toBase64(k.publicKey), secretKey: toBase64(k.secretKey) })),
  };
  return new TextEncoder().encode(JSON.stringify(doc));
}

export function decodeOfficerSecrets(options: { bytes: Uint8Array }): OfficerSecrets {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(options.bytes));
  } catch {
    throw new FormatError('officer secrets: not a JSON document');
  }
  const parsed = Doc.safeParse(json);
  if (!parsed.success) throw new FormatError(`officer secrets: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const d = parsed.data;
  const secrets: OfficerSecrets = {
    dsa: { publicKey: fromBase64(d.dsa.publicKey), secretKey: fromBase64(d.dsa.secretKey) },
    attestRoot: fromBase64(d.attestRoot),
    he: d.he.map((k) => ({ keyVersion: k.keyVersion, paramSetId: k.paramSetId, parmsId: fromBase64(k.parmsId), publicKey: fromBase64(k.publicKey), secretKey: fromBase64(k.secretKey) })),
  };
  if (secrets.dsa.publicKey.length !== 1952 || secrets.dsa.secretKey.length !== 4032) throw new FormatError('officer secrets: ML-DSA-65 key sizes are wrong');
  if (secrets.attestRoot.length !== 32) throw new FormatError('officer secrets: attestRoot must be 32 bytes');
  return secrets;
}
