// Benchmarks for the HE path: server aggregation GB/s (ours vs node-seal vs memcpy, one run) and robot encrypt M params/s.
//
// Importable (bench/run.mjs calls benchAggregation / benchRobotEncrypt) or runnable on its own:
//   npx tsx bench/he-aggregate.ts [--contributors 100] [--ciphertexts 16] [--params 1000000]
// prints one JSON object. Ratios are what to compare across machines: every figure of a run is
// measured over the same bytes in the same process.
//
// Aggregation inputs are structurally valid ciphertexts (the header of a real encryption, coefficients
// uniform below q). SEAL accepts exactly those, and addition does not depend on what they encrypt, so
// this costs no encryptions. Contributor blocks cycle through a pool of distinct blocks that is larger
// than the CPU caches (poolBytes), so every path streams from RAM like a server folding in uploads.
import { pathToFileURL } from 'node:url';
import { CiphertextAccumulator, aggregationKernel, expectedHeader, sumCiphertextBlocks, type AggregationKernelName } from '../core/he/aggregate.ts';
import { PARAM_SET_ID, getParamSet, packingLayout } from '../core/he/params.ts';
import { packFields, quantizeOffset } from '../core/he/packing.ts';
import { createEncryptor, generateKeyPair, loadSealContext } from '../core/he/seal.ts';
import { UniformSource, randomBytes } from '../core/random.ts';
import { equalBytes } from '../core/bytes.ts';

export interface AggregationBenchResult {
  contributors: number;
  ciphertexts: number;
  bytesPerContributor: number;
  /** Distinct contributor blocks cycled through (pool larger than caches). */
  distinctBlocks: number;
  kernel: AggregationKernelName;
  /** CiphertextAccumulator.add (WASM SIMD, running sum in WASM memory): GB/s of ciphertext consumed. */
  wasmGBps: number;
  /** node-seal CipherText.loadArray + Evaluator.add per ciphertext, same blocks. */
  sealLoadAddGBps: number;
  /** Uint8Array.set of each block into one buffer: the memory-bandwidth ceiling. */
  memcpyGBps: number;
  /** The pure-JS fallback kernel through the same accumulator. */
  jsFallbackGBps: number;
  /** sumCiphertextBlocks (stateless: copies the accumulator in and out each time). */
  sumBlocksGBps: number;
  wasmVsSeal: number;
  wasmVsMemcpy: number;
  /** Our aggregate of the first blocks equals SEAL's Evaluator.add result byte for byte. */
  identicalToSeal: boolean;
  /** Interleaved rounds; each figure is the best round. */
  repeats: number;
}

function now(): number {
  return performance.now();
}

/**
 * Runs every method once per round, `rounds` times, and keeps each method's best time: interleaving
 * means a burst of other work on the machine hits all methods alike, and the best run is the least
 * disturbed one. Returns GB/s per method.
 */
function interleavedGBps(bytes: number, rounds: number, methods: Record<string, () => void>): Record<string, number> {
  const best: Record<string, number> = {};
  for (let r = 0; r < rounds; r++) {
    for (const [name, run] of Object.entries(methods)) {
      const t0 = now();
      run();
      const ms = now() - t0;
      best[name] = Math.min(best[name] ?? Infinity, ms);
    }
  }
  const out: Record<string, number> = {};
  for (const [name, ms] of Object.entries(best)) out[name] = bytes / (ms / 1000) / 1e9;
  return out;
}

function randomValidBlock(count: number, header: Uint8Array, q: bigint): Uint8Array {
  const set = getParamSet({ id: PARAM_SET_ID });
  const block = new Uint8Array(count * set.ciphertextBytes);
  const coefficients = (set.ciphertextBytes - set.headerBytes) / 8;
  const qHi = Number(q >> 32n);
  for (let c = 0; c < count; c++) {
    const off = c * set.ciphertextBytes;
    block.set(header, off);
    const raw = randomBytes(coefficients * 8);
    const words = new Uint32Array(raw.buffer);
    // Coefficients below 2^59 + something < q: keep the high word under q's, so every value is < q.
    for (let i = 1; i < words.length; i += 2) words[i] = words[i]! % qHi;
    block.set(raw, off + set.headerBytes);
  }
  return block;
}

export async function benchAggregation(options: {
  contributors: number;
  ciphertexts: number;
  poolBytes?: number;
  repeats?: number;
}): Promise<AggregationBenchResult> {
  const set = getParamSet({ id: PARAM_SET_ID });
  const { contributors, ciphertexts } = options;
  const repeats = options.repeats ?? 5;
  const poolBytes = options.poolBytes ?? 96 * 1024 * 1024;
  const keys = await generateKeyPair({});
  const header = expectedHeader({ parmsId: keys.parmsId });
  const blockBytes = ciphertexts * set.ciphertextBytes;
  const distinct = Math.max(1, Math.min(contributors, Math.ceil(poolBytes / blockBytes)));
  const pool = Array.from({ length: distinct }, () => randomValidBlock(ciphertexts, header, set.coeffModulus));
  const block = (i: number): Uint8Array => pool[i % distinct]!;
  const totalBytes = contributors * blockBytes;

  // Correctness first, untimed: our aggregate of the first few blocks equals SEAL's byte for byte.
  const { seal, context } = await loadSealContext({ paramSetId: PARAM_SET_ID });
  const evaluator = seal.Evaluator(context);
  const incoming = seal.CipherText();
  const sums = Array.from({ length: ciphertexts }, () => seal.CipherText());
  const sealAddAll = (from: number, to: number): void => {
    for (let i = from; i < to; i++) {
      const b = block(i);
      for (let c = 0; c < ciphertexts; c++) {
        incoming.loadArray(context, b.subarray(c * set.ciphertextBytes, (c + 1) * set.ciphertextBytes));
        evaluator.add(sums[c]!, incoming, sums[c]!);
      }
    }
  };
  for (let c = 0; c < ciphertexts; c++) sums[c]!.loadArray(context, block(0).subarray(c * set.ciphertextBytes, (c + 1) * set.ciphertextBytes));
  const checkCount = Math.min(contributors, 8);
  sealAddAll(1, checkCount);
  const sealResult = new Uint8Array(blockBytes);
  for (let c = 0; c < ciphertexts; c++) sealResult.set(sums[c]!.saveArray(seal.ComprModeType.none), c * set.ciphertextBytes);
  const kernel = aggregationKernel();
  const check = new CiphertextAccumulator({ parmsId: keys.parmsId, ciphertextCount: ciphertexts, kernel });
  for (let i = 0; i < checkCount; i++) check.add({ block: block(i) });
  const identicalToSeal = equalBytes(check.bytes(), sealResult);

  // Throughput of folding `contributors` blocks into a round's running sum. The accumulators are made
  // once per round on a server, so they are made outside the timed part (and keep summing across rounds).
  const wasmAcc = new CiphertextAccumulator({ parmsId: keys.parmsId, ciphertextCount: ciphertexts, kernel });
  const jsAcc = new CiphertextAccumulator({ parmsId: keys.parmsId, ciphertextCount: ciphertexts, kernel: 'js' });
  let running: Uint8Array = block(0).slice();
  const sink = new Uint8Array(blockBytes);
  const methods: Record<string, () => void> = {
    wasm: () => {
      for (let i = 0; i < contributors; i++) wasmAcc.add({ block: block(i) });
    },
    seal: () => sealAddAll(0, contributors),
    memcpy: () => {
      for (let i = 0; i < contributors; i++) sink.set(block(i));
    },
    sumBlocks: () => {
      for (let i = 0; i < contributors; i++) running = sumCiphertextBlocks({ accumulator: running, addend: block(i), parmsId: keys.parmsId });
    },
  };
  const gbps = interleavedGBps(totalBytes, repeats, methods);
  // The fallback is ~10x slower: one round is enough to place it.
  const js = interleavedGBps(totalBytes, 1, {
    js: () => {
      for (let i = 0; i < contributors; i++) jsAcc.add({ block: block(i) });
    },
  });
  for (const s of sums) s.delete();
  incoming.delete();
  evaluator.delete();
  const wasmGBps = gbps.wasm!;
  const sealGBps = gbps.seal!;
  const memcpyGBps = gbps.memcpy!;
  const sumBlocksGBps = gbps.sumBlocks!;
  const jsFallbackGBps = js.js!;

  const round = (x: number): number => Math.round(x * 100) / 100;
  return {
    contributors,
    ciphertexts,
    bytesPerContributor: blockBytes,
    distinctBlocks: distinct,
    kernel,
    wasmGBps: round(wasmGBps),
    sealLoadAddGBps: round(sealGBps),
    memcpyGBps: round(memcpyGBps),
    jsFallbackGBps: round(jsFallbackGBps),
    sumBlocksGBps: round(sumBlocksGBps),
    wasmVsSeal: round(wasmGBps / sealGBps),
    wasmVsMemcpy: round(wasmGBps / memcpyGBps),
    identicalToSeal,
    repeats,
  };
}

export interface RobotEncryptBenchResult {
  params: number;
  fieldBits: number;
  fieldsPerSlot: number;
  ciphertexts: number;
  ciphertextBytesPerParam: number;
  /** quantize + pack + encrypt, end to end. */
  mParamsPerSecond: number;
  quantizeMs: number;
  packMs: number;
  encryptMs: number;
  encryptMsPerCiphertext: number;
}

/** Robot side: quantizeOffset + packFields + encryptSlots on `params` float values (one core). */
export async function benchRobotEncrypt(options: {
  params: number;
  fieldBits?: number;
  maxContributors?: number;
}): Promise<RobotEncryptBenchResult> {
  const fieldBits = options.fieldBits ?? 8;
  const layout = packingLayout({ fieldBits, maxContributors: options.maxContributors ?? 1024, encoding: 'offset' });
  const random = new UniformSource();
  const values = new Float32Array(options.params);
  for (let i = 0; i < values.length; i++) values[i] = (random.next() - 0.5) * 0.02;
  const keys = await generateKeyPair({});
  const encryptor = await createEncryptor({ publicKey: keys.publicKey, paramSetId: PARAM_SET_ID });
  encryptor.encryptSlots({ slots: new BigUint64Array(4096) }); // warm up the WASM
  const scale = (2 ** (fieldBits - 1) - 1) / 0.01;
  const t0 = now();
  const fields = quantizeOffset({ values, scale, fieldBits, random });
  const t1 = now();
  const slots = packFields({ fields, layout });
  const t2 = now();
  const ciphertexts = encryptor.encryptSlots({ slots });
  const t3 = now();
  encryptor.destroy();
  const set = getParamSet({ id: PARAM_SET_ID });
  const count = ciphertexts.length / set.ciphertextBytes;
  const round = (x: number): number => Math.round(x * 100) / 100;
  return {
    params: options.params,
    fieldBits,
    fieldsPerSlot: layout.fieldsPerSlot,
    ciphertexts: count,
    ciphertextBytesPerParam: round(ciphertexts.length / options.params),
    mParamsPerSecond: round(options.params / ((t3 - t0) / 1000) / 1e6),
    quantizeMs: round(t1 - t0),
    packMs: round(t2 - t1),
    encryptMs: round(t3 - t2),
    encryptMsPerCiphertext: round((t3 - t2) / count),
  };
}

function argument(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`"--${name}" expected positive integer, got ${process.argv[i + 1]}`);
  return value;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const aggregation = await benchAggregation({ contributors: argument('contributors', 100), ciphertexts: argument('ciphertexts', 16) });
  const robot = await benchRobotEncrypt({ params: argument('params', 1_000_000) });
  const robotPacked = await benchRobotEncrypt({ params: argument('params', 1_000_000), fieldBits: 7 });
  process.stdout.write(`${JSON.stringify({ aggregation, robot: [robot, robotPacked] }, null, 2)}\n`);
}
