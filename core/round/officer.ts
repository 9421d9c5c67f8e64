// The officer's side of a round, pure: prove the aggregate, then turn decrypted slots into an adapter.
//
// Before anything is decrypted (DESIGN.md trust model 4):
//   1. the manifest names this round and this signed config;
//   2. every entry's robot keys carry a valid attestation made with this officer's bundle secret
//      (the server cannot invent robots or swap their keys);
//   3. every package verifies under its robot's key and names this round, key version and layout;
//   4. robots are distinct and there are at least `quorum` of them;
//   5. the officer re-adds the packages itself; the sum must equal the aggregate the manifest names.
// Only the officer's own sum is then decrypted, so the server cannot use the officer as a decryption
// oracle for one robot's update.
import { sha256 } from '../codec/fingerprint.ts';
import { equalBytes, bytesToHex } from '../bytes.ts';
import { IntegrityError, QuorumNotMetError, SignatureInvalidError } from '../errors.ts';
import type { RoundConfig } from '../records/round-config.ts';
import type { ContributionManifest } from '../records/contribution-manifest.ts';
import { openUpdatePackage } from '../records/update-package.ts';
import { verifyRobotAttestation } from '../records/enrollment.ts';
import { sumCiphertextBlocks } from '../he/aggregate.ts';
import { packingLayout } from '../he/params.ts';
import { decodeMean, unpackFieldSums } from '../he/packing.ts';
import type { PeftAdapter } from '../peft/adapter.ts';
import { flattenTensors, unflattenInto } from '../peft/adapter.ts';
import { scatter, sparsificationMask, trainableTensorNames } from './mask.ts';

export interface RobotKeys {
  kemPublicKey: Uint8Array;
}

export interface VerifiedAggregate {
  ciphertexts: Uint8Array;
  contributors: number;
  robotIds: string[];
}

export function verifyContributions(options: {
  config: RoundConfig;
  configFingerprint: Uint8Array;
  manifest: ContributionManifest;
  packages: ReadonlyMap<string, Uint8Array>;
  robots: ReadonlyMap<string, RobotKeys>;
  attestKeyFor: (enrollmentId: string) => Uint8Array | null;
  parmsId: Uint8Array;
  serverAggregate?: Uint8Array;
}): VerifiedAggregate {
  const { config, manifest } = options;
  if (manifest.roundId !== config.roundId || !equalBytes(manifest.roundConfigFingerprint, options.configFingerprint))
    throw new IntegrityError('contribution manifest is for another round or another round config');
  const seenKeys = new Set<string>();
  const seenIds = new Set<string>();
  let sum: Uint8Array | null = null;
  for (const entry of manifest.entries) {
    const keyHex = bytesToHex(entry.dsaPublicKey);
    if (seenKeys.has(keyHex) || seenIds.has(entry.robotId)) continue; // duplicates never count twice
    const attestKey = options.attestKeyFor(entry.enrollmentId);
    const robot = options.robots.get(entry.robotId);
    if (!attestKey || !robot)
      throw new SignatureInvalidError(`robot ${entry.robotId} was not enrolled with a bundle of this officer`);
    verifyRobotAttestation({
      attestKey,
      fleetId: config.fleetId,
      bundleId: entry.enrollmentId,
      dsaPublicKey: entry.dsaPublicKey,
      kemPublicKey: robot.kemPublicKey,
      attestation: entry.attestation,
    });
    const bytes = options.packages.get(entry.robotId);
    if (!bytes) throw new IntegrityError(`package of robot ${entry.robotId} is missing`);
    const opened = openUpdatePackage({ bytes, robotPublicKey: entry.dsaPublicKey });
    const m = opened.package;
    if (!equalBytes(opened.fingerprint, entry.packageFingerprint) || !equalBytes(opened.signature, entry.packageSignature))
      throw new IntegrityError(`package of robot ${entry.robotId} is not the one the manifest lists`);
    if (m.robotId !== entry.robotId || m.roundId !== config.roundId || !equalBytes(m.roundConfigFingerprint, options.configFingerprint))
      throw new IntegrityError(`package of robot ${entry.robotId} was made for another robot or round`);
    if (m.keyVersion !== config.keyVersion || m.valueCount !== config.valueCount || m.ciphertextCount !== config.ciphertextCount)
      throw new IntegrityError(`package of robot ${entry.robotId} does not follow the round's key version or layout`);
    sum = sumCiphertextBlocks({ accumulator: sum, addend: opened.ciphertexts, parmsId: options.parmsId });
    seenKeys.add(keyHex);
    seenIds.add(entry.robotId);
  }
  if (seenIds.size < config.quorum || sum === null)
    throw new QuorumNotMetError(`the manifest proves ${seenIds.size} distinct robot-signed contributions; the round's quorum is ${config.quorum}`);
  const digest = sha256(sum);
  if (!equalBytes(digest, manifest.aggregateSha256))
    throw new IntegrityError('the aggregate the manifest names is not the sum of the listed contributions');
  if (options.serverAggregate && !equalBytes(sha256(options.serverAggregate), digest))
    throw new IntegrityError('the server\'s aggregate ciphertext is not the sum of the listed contributions');
  return { ciphertexts: sum, contributors: seenIds.size, robotIds: [...seenIds] };
}

/** Decrypted slots -> the mean update over the trainable vector (zeros where the mask sent nothing). */
export function meanUpdateFromSlots(options: { config: RoundConfig; slots: BigUint64Array; contributors: number; trainableLength: number }): Float32Array {
  const { config } = options;
  const layout = packingLayout({ fieldBits: config.quant.fieldBits, maxContributors: config.maxContributors, encoding: config.quant.encoding });
  const fieldSums = unpackFieldSums({ slots: options.slots, layout, valueCount: config.valueCount });
  const mean = decodeMean({ fieldSums, layout, contributors: options.contributors, scale: config.quant.scale });
  const mask = sparsificationMask({ seed: config.maskSeed, length: options.trainableLength, sparsity: config.sparsity });
  return scatter({ values: mean, mask, length: options.trainableLength });
}

/** Candidate adapter = round start + mean update (for plain rounds: the mean of the robots' adapters). */
export function applyMeanUpdate(options: { config: RoundConfig; start: PeftAdapter; mean: Float32Array }): PeftAdapter {
  const names = trainableTensorNames({ tensors: options.config.tensors, freezeA: options.config.freezeA });
  const before = flattenTensors({ adapter: options.start, names });
  if (before.length !== options.mean.length) throw new IntegrityError('mean update does not match the adapter schema');
  const after = new Float32Array(before.length);
  for (let i = 0; i < after.length; i++) after[i] = before[i]! + options.mean[i]!;
  return unflattenInto({ adapter: options.start, names, values: after });
}

/** Per-tensor statistics of the mean update for the review report. */
export function updateStatistics(options: { config: RoundConfig; mean: Float32Array }): Array<{ name: string; count: number; l2: number; maxAbs: number; mean: number }> {
  const names = trainableTensorNames({ tensors: options.config.tensors, freezeA: options.config.freezeA });
  const out: Array<{ name: string; count: number; l2: number; maxAbs: number; mean: number }> = [];
  let off = 0;
  for (const name of names) {
    const shape = options.config.tensors.find((t) => t.name === name)!.shape;
    const n = shape.reduce((a, b) => a * b, 1);
    let sq = 0;
    let max = 0;
    let sum = 0;
    for (let i = off; i < off + n; i++) {
      const v = options.mean[i]!;
      sq += v * v;
      sum += v;
      if (Math.abs(v) > max) max = Math.abs(v);
    }
    out.push({ name, count: n, l2: Math.sqrt(sq), maxAbs: max, mean: sum / n });
    off += n;
  }
  return out;
}
