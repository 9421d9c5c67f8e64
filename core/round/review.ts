// The officer's review of a finalized round, pure: prove the aggregate, decrypt only the proven sum,
// turn the slots into a candidate adapter, and describe it. The officer CLI (`officer review`) and the
// PWA's HE worker run these same functions; only where the bytes come from and where the secret key is
// kept differ.
//
//   manifest + packages + robots ──verifyRoundContributions──▶ VerifiedAggregate (the officer's own sum)
//                                   (verifyRoundContributionsAsync: the same checks, digests by WebCrypto)
//   VerifiedAggregate + HE secret key ──decryptAggregate──▶ slots            (never anything unverified)
//   slots + base adapter ──buildCandidate──▶ mean update, candidate adapter, its two PEFT files
//   everything above ──reviewReport──▶ the report (per-tensor statistics, DP cost, hashes)
import { bytesToHex, equalBytes } from '../bytes.ts';
import { fingerprint, sha256 } from '../codec/fingerprint.ts';
import { ByteReader } from '../codec/binary.ts';
import { IntegrityError, QuorumNotMetError, SignatureInvalidError, expectBytes, expectInteger } from '../errors.ts';
import { verifyFingerprint } from '../crypto/sign.ts';
import { RecordType, readSignedEnvelope } from '../records/signed.ts';
import { MAX_PACKAGE_CIPHERTEXT_BYTES, UPDATE_PACKAGE_DOMAIN, decodeUpdatePackageMeta } from '../records/update-package.ts';
import { sumCiphertextBlocks } from '../he/aggregate.ts';
import type { RoundConfig } from '../records/round-config.ts';
import type { ContributionManifest } from '../records/contribution-manifest.ts';
import { deriveAttestKey, verifyRobotAttestation } from '../records/enrollment.ts';
import { createDecryptor } from '../he/seal.ts';
import { quantizationBound } from '../he/packing.ts';
import { savePeftAdapter, type PeftAdapter, type PeftAdapterFiles } from '../peft/adapter.ts';
import { privacySpent } from '../dp/round-privacy.ts';
import { applyMeanUpdate, meanUpdateFromSlots, updateStatistics, verifyContributions, type VerifiedAggregate } from './officer.ts';
import { roundStartAdapter } from './robot.ts';
import { trainableLength, trainableTensorNames } from './mask.ts';
import { roundPrivacyParams } from './privacy.ts';

/** The public material the server lists per robot (GET /v1/robots), decoded. */
export interface ReviewRobot {
  id: string;
  kemPublicKey: Uint8Array;
}

/** One manifest entry as the officer judged it. */
export interface ManifestEntryCheck {
  robotId: string;
  enrollmentId: string;
  packageFingerprint: string;
  /** false for a repeated robot or key: the entry was skipped and counts nothing. */
  counted: boolean;
}

export interface RoundVerification extends VerifiedAggregate {
  aggregateSha256: string;
  entries: ManifestEntryCheck[];
}

/**
 * Checks everything DESIGN.md trust model 4 requires before decryption (core/round/officer.ts
 * verifyContributions: attestations under this officer's attestation root, package signatures,
 * distinct robots >= quorum, the officer's own sum equals the aggregate the manifest and the server name).
 * Throws SignatureInvalidError, IntegrityError or QuorumNotMetError; returns the verified sum.
 */
export function verifyRoundContributions(options: {
  config: RoundConfig;
  configFingerprint: Uint8Array;
  manifest: ContributionManifest;
  packages: ReadonlyMap<string, Uint8Array>;
  robots: readonly ReviewRobot[];
  attestRoot: Uint8Array;
  parmsId: Uint8Array;
  serverAggregate?: Uint8Array;
}): RoundVerification {
  const attestRoot = expectBytes('attestRoot', options.attestRoot, 32);
  const robots = new Map(options.robots.map((r) => [r.id, { kemPublicKey: r.kemPublicKey }]));
  const verified = verifyContributions({
    config: options.config,
    configFingerprint: options.configFingerprint,
    manifest: options.manifest,
    packages: options.packages,
    robots,
    attestKeyFor: (enrollmentId) => deriveAttestKey({ attestRoot, bundleId: enrollmentId }),
    parmsId: options.parmsId,
  });
  // The server's aggregate must be the officer's own sum: equal bytes (cheaper than a second SHA-256
  // of the whole aggregate, and the same statement).
  if (options.serverAggregate && !equalBytes(options.serverAggregate, verified.ciphertexts))
    throw new IntegrityError("the server's aggregate ciphertext is not the sum of the listed contributions");
  const counted = new Set<string>();
  const entries = options.manifest.entries.map((e) => {
    const first = verified.robotIds.includes(e.robotId) && !counted.has(e.robotId);
    if (first) counted.add(e.robotId);
    return { robotId: e.robotId, enrollmentId: e.enrollmentId, packageFingerprint: bytesToHex(e.packageFingerprint), counted: first };
  });
  return { ...verified, aggregateSha256: bytesToHex(sha256(verified.ciphertexts)), entries };
}

/** An asynchronous SHA-256 (WebCrypto's `crypto.subtle.digest` in a browser worker). */
export type AsyncSha256 = (bytes: Uint8Array) => Promise<Uint8Array>;

/** An update package's envelope, parsed and its signature verified; the ciphertext digest is left to the caller. */
function openPackageSignature(options: { bytes: Uint8Array; robotPublicKey: Uint8Array }) {
  const r = new ByteReader(options.bytes, 'update package');
  // 4096 = core/records/update-package.ts's bound on the metadata body.
  const envelope = readSignedEnvelope({ reader: r, type: RecordType.updatePackage, maxBody: 4096 });
  const ciphertexts = r.bytes(MAX_PACKAGE_CIPHERTEXT_BYTES, 'ciphertexts');
  r.end();
  if (envelope.algorithm !== 'ml-dsa-44') throw new SignatureInvalidError('update package: robots sign with ML-DSA-44');
  if (!equalBytes(envelope.signerPublicKey, options.robotPublicKey))
    throw new SignatureInvalidError("update package: signed by a key other than this robot's registered key");
  const fp = fingerprint({ domain: UPDATE_PACKAGE_DOMAIN, bytes: envelope.body });
  verifyFingerprint({ algorithm: 'ml-dsa-44', fingerprint: fp, signature: envelope.signature, publicKey: options.robotPublicKey, what: 'update package' });
  return { meta: decodeUpdatePackageMeta({ bytes: envelope.body }), ciphertexts, fingerprint: fp, signature: envelope.signature };
}

/**
 * verifyRoundContributions with the SHA-256 digests of ciphertexts (every package's and the sum's, the
 * bulk of the work on large aggregates) computed by `digest`, e.g. WebCrypto in the browser, which is
 * native and several times faster than the pure-JS digest. The checks, their order and their errors
 * are those of core/round/officer.ts verifyContributions + openUpdatePackage (officer-flow.test.ts runs
 * both on the same good and bad manifests).
 */
export async function verifyRoundContributionsAsync(options: {
  config: RoundConfig;
  configFingerprint: Uint8Array;
  manifest: ContributionManifest;
  packages: ReadonlyMap<string, Uint8Array>;
  robots: readonly ReviewRobot[];
  attestRoot: Uint8Array;
  parmsId: Uint8Array;
  serverAggregate?: Uint8Array;
  digest: AsyncSha256;
  onProgress?: (done: number, total: number) => void;
}): Promise<RoundVerification> {
  const { config, manifest } = options;
  const attestRoot = expectBytes('attestRoot', options.attestRoot, 32);
  const robots = new Map(options.robots.map((r) => [r.id, r]));
  if (manifest.roundId !== config.roundId || !equalBytes(manifest.roundConfigFingerprint, options.configFingerprint))
    throw new IntegrityError('contribution manifest is for another round or another round config');
  const seenKeys = new Set<string>();
  const seenIds = new Set<string>();
  const entries: ManifestEntryCheck[] = [];
  let sum: Uint8Array | null = null;
  for (const [i, entry] of manifest.entries.entries()) {
    const keyHex = bytesToHex(entry.dsaPublicKey);
    const check = { robotId: entry.robotId, enrollmentId: entry.enrollmentId, packageFingerprint: bytesToHex(entry.packageFingerprint), counted: false };
    entries.push(check);
    if (seenKeys.has(keyHex) || seenIds.has(entry.robotId)) continue; // duplicates never count twice
    const robot = robots.get(entry.robotId);
    if (!robot) throw new SignatureInvalidError(`robot ${entry.robotId} was not enrolled with a bundle of this officer`);
    verifyRobotAttestation({
      attestKey: deriveAttestKey({ attestRoot, bundleId: entry.enrollmentId }),
      fleetId: config.fleetId,
      bundleId: entry.enrollmentId,
      dsaPublicKey: entry.dsaPublicKey,
      kemPublicKey: robot.kemPublicKey,
      attestation: entry.attestation,
    });
    const bytes = options.packages.get(entry.robotId);
    if (!bytes) throw new IntegrityError(`package of robot ${entry.robotId} is missing`);
    const opened = openPackageSignature({ bytes, robotPublicKey: entry.dsaPublicKey });
    if (!equalBytes(await options.digest(opened.ciphertexts), opened.meta.ciphertextSha256))
      throw new IntegrityError('update package: ciphertext bytes do not match the signed SHA-256');
    const m = opened.meta;
    if (!equalBytes(opened.fingerprint, entry.packageFingerprint) || !equalBytes(opened.signature, entry.packageSignature))
      throw new IntegrityError(`package of robot ${entry.robotId} is not the one the manifest lists`);
    if (m.robotId !== entry.robotId || m.roundId !== config.roundId || !equalBytes(m.roundConfigFingerprint, options.configFingerprint))
      throw new IntegrityError(`package of robot ${entry.robotId} was made for another robot or round`);
    if (m.keyVersion !== config.keyVersion || m.valueCount !== config.valueCount || m.ciphertextCount !== config.ciphertextCount)
      throw new IntegrityError(`package of robot ${entry.robotId} does not follow the round's key version or layout`);
    sum = sumCiphertextBlocks({ accumulator: sum, addend: opened.ciphertexts, parmsId: options.parmsId });
    seenKeys.add(keyHex);
    seenIds.add(entry.robotId);
    check.counted = true;
    options.onProgress?.(i + 1, manifest.entries.length);
  }
  if (seenIds.size < config.quorum || sum === null)
    throw new QuorumNotMetError(`the manifest proves ${seenIds.size} distinct robot-signed contributions; the round's quorum is ${config.quorum}`);
  const digest = await options.digest(sum);
  if (!equalBytes(digest, manifest.aggregateSha256)) throw new IntegrityError('the aggregate the manifest names is not the sum of the listed contributions');
  if (options.serverAggregate && !equalBytes(options.serverAggregate, sum))
    throw new IntegrityError("the server's aggregate ciphertext is not the sum of the listed contributions");
  return { ciphertexts: sum, contributors: seenIds.size, robotIds: [...seenIds], aggregateSha256: bytesToHex(digest), entries };
}

/** Decrypts a verified sum (and nothing else) into slots. onProgress(done, total) per ciphertext. */
export async function decryptAggregate(options: {
  verified: VerifiedAggregate;
  secretKey: Uint8Array;
  paramSetId: string;
  onProgress?: (done: number, total: number) => void;
}): Promise<BigUint64Array> {
  const decryptor = await createDecryptor({ secretKey: options.secretKey, paramSetId: options.paramSetId });
  try {
    return decryptor.decryptSlots({ ciphertexts: options.verified.ciphertexts, onProgress: options.onProgress });
  } finally {
    decryptor.destroy();
  }
}

export interface Candidate {
  /** The mean update over the trainable vector (zeros where the mask sent nothing). */
  mean: Float32Array;
  adapter: PeftAdapter;
  files: PeftAdapterFiles;
  /** SHA-256 of adapter_model.safetensors: what a release manifest names. */
  adapterSha256: Uint8Array;
}

/**
 * Slots -> mean update -> candidate = round start adapter + mean, and its PEFT files. A caller with a
 * faster (asynchronous) digest, such as WebCrypto in a worker, passes `digest: false` and sets
 * `adapterSha256` itself.
 */
export function buildCandidate(options: { config: RoundConfig; slots: BigUint64Array; contributors: number; base: PeftAdapter; digest?: boolean }): Candidate {
  const { config } = options;
  const total = trainableLength({ tensors: config.tensors, freezeA: config.freezeA });
  const mean = meanUpdateFromSlots({ config, slots: options.slots, contributors: options.contributors, trainableLength: total });
  const start = roundStartAdapter({ config, base: options.base });
  const adapter = applyMeanUpdate({ config, start, mean });
  const files = savePeftAdapter({ adapter });
  return { mean, adapter, files, adapterSha256: options.digest === false ? new Uint8Array(32) : sha256(files['adapter_model.safetensors']) };
}

export interface Histogram {
  min: number;
  max: number;
  /** counts[i] = values in [min + i*w, min + (i+1)*w), the last bin closed; w = (max - min) / bins. */
  counts: number[];
}

/** A fixed-bin histogram of values (for the review's view of the mean update). */
export function histogram(options: { values: Float32Array; bins?: number; from?: number; count?: number }): Histogram {
  const bins = expectInteger('bins', options.bins ?? 32, 1, 4096);
  const from = options.from ?? 0;
  const end = from + (options.count ?? options.values.length - from);
  let min = Infinity;
  let max = -Infinity;
  for (let i = from; i < end; i++) {
    const v = options.values[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const counts = new Array<number>(bins).fill(0);
  if (end <= from) return { min: 0, max: 0, counts };
  const width = (max - min) / bins;
  for (let i = from; i < end; i++) {
    const v = options.values[i]!;
    const b = width === 0 ? 0 : Math.min(bins - 1, Math.floor((v - min) / width));
    counts[b]! += 1;
  }
  return { min, max, counts };
}

/** One histogram per trainable tensor of the mean update, in the order of updateStatistics. */
export function tensorHistograms(options: { config: RoundConfig; mean: Float32Array; bins?: number }): Array<{ name: string } & Histogram> {
  const names = trainableTensorNames({ tensors: options.config.tensors, freezeA: options.config.freezeA });
  const out: Array<{ name: string } & Histogram> = [];
  let off = 0;
  for (const name of names) {
    const n = options.config.tensors.find((t) => t.name === name)!.shape.reduce((a, b) => a * b, 1);
    out.push({ name, ...histogram({ values: options.mean, bins: options.bins, from: off, count: n }) });
    off += n;
  }
  return out;
}

export interface ReviewReport {
  roundId: string;
  fleetId: string;
  contributors: number;
  quorum: number;
  robotIds: string[];
  aggregateSha256: string;
  candidateAdapterSha256: string;
  quantizationBound: number;
  freezeA: boolean;
  sparsity: number;
  dp: { mode: 'off' } | { mode: string; perRound: { epsilon: number; order: number }; delta: number; budget: number };
  tensors: Array<{ name: string; count: number; l2: number; maxAbs: number; mean: number }>;
}

/** The review report the CLI writes as report.json and the PWA shows (without timings). */
export function reviewReport(options: { config: RoundConfig; verified: VerifiedAggregate & { aggregateSha256?: string }; candidate: Candidate }): ReviewReport {
  const { config, verified, candidate } = options;
  return {
    roundId: config.roundId,
    fleetId: config.fleetId,
    contributors: verified.contributors,
    quorum: config.quorum,
    robotIds: verified.robotIds,
    aggregateSha256: verified.aggregateSha256 ?? bytesToHex(sha256(verified.ciphertexts)),
    candidateAdapterSha256: bytesToHex(candidate.adapterSha256),
    quantizationBound: quantizationBound({ scale: config.quant.scale }),
    freezeA: config.freezeA,
    sparsity: config.sparsity,
    dp:
      config.dp.mode === 'off'
        ? { mode: 'off' }
        : {
            mode: config.dp.mode,
            perRound: privacySpent({ rounds: [roundPrivacyParams({ config })], delta: config.dp.delta }),
            delta: config.dp.delta,
            budget: config.dp.epsilonBudget,
          },
    tensors: updateStatistics({ config, mean: candidate.mean }),
  };
}
