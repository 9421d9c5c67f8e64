// Fuzzing every parser with fast-check: random bytes and valid inputs mutated (bit flips, truncation,
// splices, length fields set to extremes). A parser may accept the input or refuse it with a typed
// error (a TensorGuardError subclass, TypeError or RangeError); anything else — a plain Error, a
// SyntaxError, an out-of-memory, a hang — is a bug. Bounded: the suite runs in well under a minute.
import { readFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { randomBytes } from '../../core/random.ts';
import { generateSigningKeyPair } from '../../core/crypto/sign.ts';
import { openSecret, sealSecret, type ScryptFn } from '../../core/crypto/secretbox.ts';
import { readSafetensors, writeSafetensors } from '../../core/safetensors/safetensors.ts';
import { loadPeftAdapter } from '../../core/peft/adapter.ts';
import { decodeKeyRecord, encodeKeyRecord, openKeyRecord, signKeyRecord, type HeKeyRecord } from '../../core/records/key-record.ts';
import { decodeRoundConfig, encodeRoundConfig, openRoundConfig, signRoundConfig } from '../../core/records/round-config.ts';
import { buildUpdatePackage, decodeUpdatePackageMeta, encodeUpdatePackageMeta, openUpdatePackage } from '../../core/records/update-package.ts';
import { decodeContributionManifest, encodeContributionManifest } from '../../core/records/contribution-manifest.ts';
import {
  decodeReleaseManifest,
  decodeReleasePayload,
  encodeReleaseManifest,
  encodeReleasePayload,
  openReleaseManifest,
  signReleaseManifest,
  type ReleaseManifest,
} from '../../core/records/release-manifest.ts';
import { BUNDLE_FORMAT, decodeEnrollmentBundle, encodeEnrollmentBundle } from '../../core/records/enrollment.ts';
import { decodeOfficerSecrets, encodeOfficerSecrets } from '../../core/records/officer-secrets.ts';
import { expectedHeader } from '../../core/he/aggregate.ts';
import { PARAM_SET_ID } from '../../core/he/params.ts';
import { makeRoundConfig } from '../../server/testing/harness.ts';
import { expectTypedOutcome, fuzzBytes, fuzzJsonText, fuzzJsonValue, isTypedError } from './mutate.ts';

const VECTORS = resolve(import.meta.dirname, '../vectors/peft');
const RUNS = Number(process.env.TG_FUZZ_RUNS ?? 1500);
const officer = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
const robot = generateSigningKeyPair({ algorithm: 'ml-dsa-44' });

/** Checks a synchronous or async parser against the arbitrary's inputs. */
async function fuzz<T>(name: string, arbitrary: fc.Arbitrary<T>, parse: (input: T) => unknown, numRuns = RUNS): Promise<void> {
  await fc.assert(
    fc.asyncProperty(arbitrary, async (input) => {
      await expectTypedOutcome(() => parse(input), name);
    }),
    { numRuns, seed: process.env.TG_FUZZ_SEED ? Number(process.env.TG_FUZZ_SEED) : undefined },
  );
}

// Valid seeds for each format.
const keyRecord: HeKeyRecord = { orgId: 'org_1', keyVersion: 3, paramSetId: PARAM_SET_ID, parmsId: randomBytes(32), publicKey: randomBytes(300), createdAt: 1_800_000_000_000 };
const round = makeRoundConfig({ officer, orgId: 'org_1', fleetId: 'flt_1', keyFingerprint: randomBytes(32), now: 1_800_000_000_000, roundId: 'round-fuzz' });
const packageMeta = {
  roundId: 'round-fuzz',
  robotId: 'rbt_1',
  fleetId: 'flt_1',
  keyVersion: 1,
  roundConfigFingerprint: randomBytes(32),
  valueCount: 1000,
  ciphertextCount: 1,
  createdAt: 1_800_000_000_000,
};
const ciphertextLike = (() => {
  const out = new Uint8Array(400);
  out.set(expectedHeader({ parmsId: keyRecord.parmsId }).subarray(0, 113));
  return out;
})();
const pkg = buildUpdatePackage({ meta: packageMeta, ciphertexts: ciphertextLike, secretKey: robot.secretKey, publicKey: robot.publicKey });
const manifest: ReleaseManifest = {
  releaseId: 'rel-1',
  orgId: 'org_1',
  fleetId: 'flt_1',
  roundId: 'round-fuzz',
  releaseVersion: 2,
  kind: 'release',
  rollbackOf: 0,
  adapterSha256: randomBytes(32),
  payloadSha256: randomBytes(32),
  canaryFraction: 0.25,
  createdAt: 1_800_000_000_000,
  wraps: [{ robotId: 'rbt_1', kemCiphertext: randomBytes(1088), wrappedKey: randomBytes(48) }],
};

describe('binary record parsers refuse bad input with typed errors only', () => {
  it('key records (decode and open)', async () => {
    const body = encodeKeyRecord({ record: keyRecord });
    const signed = signKeyRecord({ record: keyRecord, secretKey: officer.secretKey, publicKey: officer.publicKey });
    await fuzz('decodeKeyRecord', fuzzBytes([body]), (bytes) => decodeKeyRecord({ bytes }));
    await fuzz('openKeyRecord', fuzzBytes([signed]), (bytes) => openKeyRecord({ bytes, trustedKeys: [officer.publicKey] }), RUNS / 2);
  });

  it('round configs (decode and open)', async () => {
    const body = encodeRoundConfig({ config: round.config });
    await fuzz('decodeRoundConfig', fuzzBytes([body]), (bytes) => decodeRoundConfig({ bytes }));
    await fuzz('openRoundConfig', fuzzBytes([round.bytes]), (bytes) => openRoundConfig({ bytes, trustedKeys: [officer.publicKey] }), RUNS / 2);
  });

  it('update packages (meta decode and full open with signature and ciphertext hash)', async () => {
    await fuzz('decodeUpdatePackageMeta', fuzzBytes([encodeUpdatePackageMeta({ meta: { ...packageMeta, ciphertextSha256: randomBytes(32), nonce: randomBytes(16) } })]), (bytes) =>
      decodeUpdatePackageMeta({ bytes }),
    );
    await fuzz('openUpdatePackage', fuzzBytes([pkg.bytes]), (bytes) => openUpdatePackage({ bytes, robotPublicKey: robot.publicKey }), RUNS / 2);
  });

  it('contribution manifests', async () => {
    const entry = {
      robotId: 'rbt_1',
      enrollmentId: 'enr_1',
      dsaPublicKey: robot.publicKey,
      attestation: randomBytes(32),
      packageFingerprint: randomBytes(32),
      packageSignature: randomBytes(2420),
      ciphertextSha256: randomBytes(32),
    };
    const bytes = encodeContributionManifest({ manifest: { roundId: 'round-fuzz', roundConfigFingerprint: randomBytes(32), aggregateSha256: randomBytes(32), entries: [entry, { ...entry, robotId: 'rbt_2' }] } });
    await fuzz('decodeContributionManifest', fuzzBytes([bytes]), (b) => decodeContributionManifest({ bytes: b }));
  });

  it('release manifests and payloads', async () => {
    await fuzz('decodeReleaseManifest', fuzzBytes([encodeReleaseManifest({ manifest })]), (bytes) => decodeReleaseManifest({ bytes }));
    const signed = signReleaseManifest({ manifest, secretKey: officer.secretKey, publicKey: officer.publicKey });
    await fuzz('openReleaseManifest', fuzzBytes([signed]), (bytes) => openReleaseManifest({ bytes, trustedKeys: [officer.publicKey] }), RUNS / 2);
    const payload = encodeReleasePayload({ adapterConfigJson: new TextEncoder().encode('{"peft_type":"LORA"}'), adapterSafetensors: randomBytes(64) });
    await fuzz('decodeReleasePayload', fuzzBytes([payload]), (bytes) => decodeReleasePayload({ bytes }));
  });

  it('every decode*/open* export of core/records accepts random bytes or refuses them typed', async () => {
    // Catches parsers added later: each is called with a generic options object.
    const dir = resolve(import.meta.dirname, '../../core/records');
    const files = (await readdir(dir)).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    let parsers = 0;
    for (const file of files) {
      const mod = (await import(join(dir, file))) as Record<string, unknown>;
      for (const [name, fn] of Object.entries(mod)) {
        if (typeof fn !== 'function' || !/^(decode|open)[A-Z]/.test(name)) continue;
        parsers++;
        await fuzz(`${file}:${name}`, fc.uint8Array({ maxLength: 512 }), (bytes) =>
          (fn as (o: unknown) => unknown)({ bytes, text: new TextDecoder().decode(bytes), trustedKeys: [officer.publicKey], robotPublicKey: robot.publicKey }),
        100);
      }
    }
    expect(parsers).toBeGreaterThanOrEqual(10);
  });
});

describe('document parsers refuse bad input with typed errors only', () => {
  it('enrollment bundles', async () => {
    const text = encodeEnrollmentBundle({
      bundle: {
        format: BUNDLE_FORMAT,
        serverUrl: 'https://sync.example.com',
        orgId: 'org_1',
        fleetId: 'flt_1',
        bundleId: 'enr_1',
        token: 'tok_0123456789abcdef0123',
        attestKey: randomBytes(32),
        officerPublicKeys: [officer.publicKey],
        expiresAt: 1_800_000_000_000,
      },
    });
    await fuzz('decodeEnrollmentBundle', fuzzJsonText([JSON.parse(text)]), (t) => decodeEnrollmentBundle({ text: t }));
  });

  it('officer secrets', async () => {
    const bytes = encodeOfficerSecrets({
      secrets: {
        dsa: { publicKey: officer.publicKey, secretKey: officer.secretKey },
        attestRoot: randomBytes(32),
        he: [{ keyVersion: 1, paramSetId: PARAM_SET_ID, parmsId: randomBytes(32), publicKey: randomBytes(64), secretKey: randomBytes(64) }],
      },
    });
    await fuzz('decodeOfficerSecrets', fuzzBytes([bytes], 512), (b) => decodeOfficerSecrets({ bytes: b }));
    const doc = JSON.parse(new TextDecoder().decode(bytes));
    await fuzz('decodeOfficerSecrets(json)', fuzzJsonText([doc]), (t) => decodeOfficerSecrets({ bytes: new TextEncoder().encode(t) }));
  });

  it('sealed secrets: header, KDF bounds and AEAD (with a stand-in KDF, so each case is fast)', async () => {
    let kdfCalls = 0;
    // Stands in for scrypt: records what it was asked for. Real scrypt at the accepted bounds is slow by design.
    const fakeScrypt: ScryptFn = async ({ params }) => {
      kdfCalls++;
      if (2 ** params.log2N * params.r * 128 > 1024 * 1024 * 1024) throw new Error(`KDF asked for more than 1 GiB (log2N ${params.log2N}, r ${params.r})`);
      if (2 ** params.log2N * params.r * params.p > 2 ** 17 * 8 * 16) throw new Error(`KDF asked for more than 16x the default work`);
      return new Uint8Array(32).fill(7);
    };
    const sealed = await sealSecret({ plaintext: randomBytes(100), passphrase: 'correct horse', scrypt: fakeScrypt });
    await fuzz('openSecret', fuzzBytes([sealed], 256), (bytes) => openSecret({ sealed: bytes, passphrase: 'correct horse', scrypt: fakeScrypt }));
    expect(kdfCalls).toBeGreaterThan(10);
    // The KDF parameters come from the (untrusted) file: any u8 values must be refused before scrypt
    // runs unless they stay within its memory and work bounds (a crafted file must not hang the CLI).
    await fuzz(
      'openSecret(kdf params)',
      fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 })),
      ([log2N, r, p]) => {
        const bytes = sealed.slice();
        bytes.set([log2N, r, p], 4);
        return openSecret({ sealed: bytes, passphrase: 'correct horse', scrypt: fakeScrypt });
      },
      RUNS * 2,
    );
  });

  it('safetensors files', async () => {
    const written = writeSafetensors({
      tensors: [
        { name: 'a', shape: [2, 3], data: new Float32Array(6).fill(1.5) },
        { name: 'b', shape: [4], data: new Float32Array(4) },
      ],
      metadata: { format: 'pt' },
    });
    const vectors = await Promise.all(['tiny-lora', 'tiny-lora-f16'].map(async (d) => new Uint8Array(await readFile(join(VECTORS, d, 'adapter_model.safetensors')))));
    await fuzz('readSafetensors', fuzzBytes([written, ...vectors]), (bytes) => readSafetensors({ bytes }), RUNS * 2);
    // Structure-aware: edit the JSON header (shapes, dtypes, offsets, metadata) and frame it correctly,
    // so the checks behind the JSON parse are what gets exercised.
    const frame = (header: string, data: Uint8Array) => {
      const text = new TextEncoder().encode(header);
      const out = new Uint8Array(8 + text.length + data.length);
      new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
      out.set(text, 8);
      out.set(data, 8 + text.length);
      return out;
    };
    const split = (file: Uint8Array) => {
      const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
      return { header: JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))), data: file.subarray(8 + n) };
    };
    const parts = [written, ...vectors].map(split);
    await fuzz(
      'readSafetensors(header)',
      fc.tuple(fc.nat(parts.length - 1), fuzzJsonValue(parts.map((p) => p.header))),
      ([i, header]) => readSafetensors({ bytes: frame(JSON.stringify(header) ?? 'null', parts[i]!.data) }),
      RUNS * 2,
    );
  });

  it('PEFT adapters (config JSON and weights)', async () => {
    const config = new Uint8Array(await readFile(join(VECTORS, 'tiny-lora', 'adapter_config.json')));
    const weights = new Uint8Array(await readFile(join(VECTORS, 'tiny-lora', 'adapter_model.safetensors')));
    const configs = fuzzJsonText([JSON.parse(new TextDecoder().decode(config))]).map((t) => new TextEncoder().encode(t));
    await fuzz('loadPeftAdapter(config)', configs, (c) => loadPeftAdapter({ files: { 'adapter_config.json': c, 'adapter_model.safetensors': weights } }));
    await fuzz('loadPeftAdapter(weights)', fuzzBytes([weights]), (w) => loadPeftAdapter({ files: { 'adapter_config.json': config, 'adapter_model.safetensors': w } }));
  });

  it('the typed-error check itself rejects what it must', () => {
    expect(isTypedError(new SyntaxError('x'))).toBe(false);
    expect(isTypedError(new Error('x'))).toBe(false);
    expect(isTypedError(new RangeError('x'))).toBe(true);
  });
});
