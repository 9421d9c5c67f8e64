// The HE worker's API: BFV key generation and the manifest-checked review of a round (verify, then
// decrypt only the verified sum, unpack, dequantize, build the candidate). The HE secret key and the
// attestation root are read from the key store (workers/keystore/) inside this worker and never
// returned; the UI gets public keys, reports, statistics and a handle to the candidate, which is kept
// encrypted in the key store for the signing worker.
//
//   generateKey ──▶ SEAL keygen ──▶ key store (secret encrypted, public in clear) ──▶ public key + parms id
//   verifyRound ──▶ open the signed config against the officer's own key ──▶ verifyRoundContributions
//               ──▶ keeps the verified sum in this worker under a verification id
//   decryptVerified(verification id) ──▶ decrypt ──▶ candidate ──▶ key store "candidate/<round>" ──▶ report
// There is deliberately no call that decrypts arbitrary ciphertexts (DESIGN.md trust model 4).
import { bytesToHex } from '../../core/bytes.ts';
import { generateKeyPair, loadSealContext } from '../../core/he/seal.ts';
import { PARAM_SET_ID } from '../../core/he/params.ts';
import { openRoundConfig, type RoundConfig } from '../../core/records/round-config.ts';
import { decodeContributionManifest } from '../../core/records/contribution-manifest.ts';
import { loadPeftAdapter } from '../../core/peft/adapter.ts';
import { IntegrityError } from '../../core/errors.ts';
import {
  buildCandidate,
  decryptAggregate,
  histogram,
  reviewReport,
  tensorHistograms,
  verifyRoundContributionsAsync,
  type Histogram,
  type ManifestEntryCheck,
  type ReviewReport,
  type RoundVerification,
} from '../../core/round/review.ts';
import { openVault } from '../keystore/vault.ts';
import { attestRoot, heKey, storeHeKey, PUBLIC_IDS } from '../keystore/officer-keys.ts';
import { encodeCandidate } from '../keystore/candidates.ts';
import { bytesOf, throttledProgress, type BytesLike, type ProgressCallback } from '../transfer.ts';

export interface GeneratedHeKey {
  keyVersion: number;
  paramSetId: string;
  parmsId: Uint8Array;
  publicKey: Uint8Array;
  createdAt: number;
}

export interface VerifyRoundInput {
  /** The signed round config (bytes of GET /v1/rounds/:id `config`). */
  config: Uint8Array;
  /** The contribution manifest (GET /v1/rounds/:id/aggregate `manifest`). */
  manifest: Uint8Array;
  packages: Array<{ robotId: string; bytes: BytesLike }>;
  robots: Array<{ id: string; kemPublicKey: Uint8Array }>;
  /** The server's aggregate ciphertext; it must equal the officer's own sum. */
  serverAggregate: BytesLike;
}

export interface VerificationSummary {
  verificationId: string;
  roundId: string;
  fleetId: string;
  keyVersion: number;
  configFingerprint: string;
  contributors: number;
  quorum: number;
  robotIds: string[];
  aggregateSha256: string;
  entries: ManifestEntryCheck[];
  timingsMs: { verify: number };
}

export interface ReviewOutcome {
  /** Key-store handle of the encrypted candidate (for the signing worker). */
  candidateHandle: string;
  report: ReviewReport;
  histograms: Array<{ name: string } & Histogram>;
  overall: Histogram;
  candidateBytes: number;
  timingsMs: { decrypt: number; unpack: number; store: number };
}

export interface HeWorkerApi {
  /** Loads SEAL (WASM) and the parameter set's context. */
  warmUp(): Promise<{ paramSetId: string }>;
  /** A BFV key pair for `keyVersion`; the secret key stays in the key store. */
  generateKey(options: { keyVersion: number }, onProgress?: ProgressCallback): Promise<GeneratedHeKey>;
  /** Everything trust model 4 requires, before any decryption. */
  verifyRound(input: VerifyRoundInput, onProgress?: ProgressCallback): Promise<VerificationSummary>;
  /** Decrypts the sum a verifyRound call proved (and nothing else) and builds the candidate. */
  decryptVerified(options: { verificationId: string; base: { adapterConfigJson: BytesLike; adapterSafetensors: BytesLike } }, onProgress?: ProgressCallback): Promise<ReviewOutcome>;
  discard(options: { verificationId: string }): Promise<void>;
}

/** WebCrypto's SHA-256: native, several times faster than the pure-JS digest on 80 MB ciphertext blocks. */
async function webCryptoSha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
}

export function createHeWorkerApi(): HeWorkerApi {
  const vault = openVault();
  const verifications = new Map<string, { config: RoundConfig; verified: RoundVerification }>();

  async function trustedOfficerKey(): Promise<Uint8Array> {
    const key = await vault.getPublic<Uint8Array>(PUBLIC_IDS.dsa);
    if (!key) throw new IntegrityError('no officer key on this device to check the round config against');
    return key;
  }

  return {
    async warmUp() {
      await loadSealContext({ paramSetId: PARAM_SET_ID });
      return { paramSetId: PARAM_SET_ID };
    },

    async generateKey({ keyVersion }, onProgress) {
      onProgress?.(0, 3, 'loading SEAL');
      await loadSealContext({ paramSetId: PARAM_SET_ID });
      onProgress?.(1, 3, 'generating the BFV key pair');
      const pair = await generateKeyPair({ paramSetId: PARAM_SET_ID });
      onProgress?.(2, 3, 'sealing the secret key in the key store');
      const createdAt = Date.now();
      await storeHeKey(vault, { keyVersion, paramSetId: pair.paramSetId, parmsId: pair.parmsId, publicKey: pair.publicKey, secretKey: pair.secretKey, createdAt });
      pair.secretKey.fill(0);
      onProgress?.(3, 3, 'done');
      return { keyVersion, paramSetId: pair.paramSetId, parmsId: pair.parmsId, publicKey: pair.publicKey, createdAt };
    },

    async verifyRound(input, onProgress) {
      const t0 = performance.now();
      const total = input.packages.length;
      onProgress?.(0, total, 'checking the signed round config');
      const { record: config, fingerprint } = openRoundConfig({ bytes: input.config, trustedKeys: [await trustedOfficerKey()] });
      const manifest = decodeContributionManifest({ bytes: input.manifest });
      const key = await vault.getPublic<{ parmsId: Uint8Array }>(PUBLIC_IDS.he(config.keyVersion));
      if (!key) throw new IntegrityError(`this device holds no HE key version ${config.keyVersion} (the round's key)`);
      onProgress?.(0, total, `verifying ${total} contributions and re-adding them`);
      const packages = new Map<string, Uint8Array>();
      for (const p of input.packages) packages.set(p.robotId, await bytesOf(p.bytes));
      const serverAggregate = await bytesOf(input.serverAggregate);
      const root = await attestRoot(vault);
      let verified: RoundVerification;
      try {
        verified = await verifyRoundContributionsAsync({
          config,
          configFingerprint: fingerprint,
          manifest,
          packages,
          robots: input.robots,
          attestRoot: root,
          parmsId: key.parmsId,
          serverAggregate,
          digest: webCryptoSha256,
          onProgress: (done, all) => onProgress?.(done, all, 'verified contribution'),
        });
      } finally {
        root.fill(0);
      }
      onProgress?.(total, total, 'verified');
      const verificationId = crypto.randomUUID();
      verifications.set(verificationId, { config, verified });
      return {
        verificationId,
        roundId: config.roundId,
        fleetId: config.fleetId,
        keyVersion: config.keyVersion,
        configFingerprint: bytesToHex(fingerprint),
        contributors: verified.contributors,
        quorum: config.quorum,
        robotIds: verified.robotIds,
        aggregateSha256: verified.aggregateSha256,
        entries: verified.entries,
        timingsMs: { verify: Math.round(performance.now() - t0) },
      };
    },

    async decryptVerified({ verificationId, base }, onProgress) {
      const entry = verifications.get(verificationId);
      if (!entry) throw new IntegrityError('this aggregate has not been verified in this session: verify the manifest first');
      const { config, verified } = entry;
      const t0 = performance.now();
      const key = await heKey(vault, config.keyVersion);
      const report = throttledProgress((done, total) => onProgress?.(done, total, 'decrypting'));
      let slots: BigUint64Array;
      try {
        slots = await decryptAggregate({ verified, secretKey: key.secretKey, paramSetId: key.paramSetId, onProgress: report });
      } finally {
        key.secretKey.fill(0);
      }
      const t1 = performance.now();
      onProgress?.(config.ciphertextCount, config.ciphertextCount, 'unpacking');
      const baseAdapter = loadPeftAdapter({ files: { 'adapter_config.json': await bytesOf(base.adapterConfigJson), 'adapter_model.safetensors': await bytesOf(base.adapterSafetensors) } });
      const candidate = buildCandidate({ config, slots, contributors: verified.contributors, base: baseAdapter, digest: false });
      // WebCrypto's SHA-256 is native: several times faster than the pure-JS digest on a 40 MB file.
      candidate.adapterSha256 = await webCryptoSha256(candidate.files['adapter_model.safetensors']);
      const t2 = performance.now();
      const candidateHandle = `candidate/${config.roundId}`;
      const files = { adapterConfigJson: candidate.files['adapter_config.json'], adapterSafetensors: candidate.files['adapter_model.safetensors'] };
      await vault.putSecret(candidateHandle, encodeCandidate({ roundId: config.roundId, ...files }));
      const t3 = performance.now();
      const outcome: ReviewOutcome = {
        candidateHandle,
        report: reviewReport({ config, verified, candidate }),
        histograms: tensorHistograms({ config, mean: candidate.mean, bins: 24 }),
        overall: histogram({ values: candidate.mean, bins: 40 }),
        candidateBytes: files.adapterSafetensors.length,
        timingsMs: { decrypt: Math.round(t1 - t0), unpack: Math.round(t2 - t1), store: Math.round(t3 - t2) },
      };
      verifications.delete(verificationId);
      return outcome;
    },

    async discard({ verificationId }) {
      verifications.delete(verificationId);
    },
  };
}
