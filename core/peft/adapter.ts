// The Hugging Face PEFT LoRA adapter model: load/save from a file map, schema and fingerprint, flatten, diff.
//
// Data flow: CLI reads adapter_config.json + adapter_model.safetensors -> loadPeftAdapter (validates the
// LoRA structure, decodes to f32) -> robot pipeline flattens B (or A and B) in schema order -> ... ->
// officer unflattens the aggregate into the template -> savePeftAdapter -> CLI writes the two files.
//
// Format (peft/utils/save_and_load.py `get_peft_model_state_dict`, peft/tuners/lora/layer.py `LoraLayer`):
// each adapted linear layer <module> contributes `base_model.model.<module>.lora_A.weight` of shape [r, in]
// and `base_model.model.<module>.lora_B.weight` of shape [out, r]; the layer computes
// W x + scaling * B (A x) with scaling = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora
// (Kalajdzievski 2023, "A Rank Stabilization Scaling Factor for Fine-Tuning with LoRA").
//
// Federated LoRA: averaging A and B separately is not the average of the updates B·A, because the product
// is bilinear: mean(B_i) · mean(A_i) = (1/n²) Σ_i Σ_j B_i A_j carries the cross terms i != j, while
// mean(B_i A_i) = (1/n) Σ_i B_i A_i does not. FFA-LoRA (Sun, Li, Wang, Ding, ICLR 2024, "Improving LoRA in
// Privacy-preserving Federated Learning") freezes A at a shared, seeded initialisation and trains only B,
// so mean(B_i A) = mean(B_i) A exactly (and only B travels, half the traffic). `frozenLoraA` derives that
// shared A from a round seed.

import { FormatError, expectBytes, describe } from '../errors.ts';
import { bytesToUtf8, utf8ToBytes } from '../bytes.ts';
import { sha256 } from '../codec/fingerprint.ts';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { readSafetensors, writeSafetensors, compareTensorNames, findDuplicateJsonKey } from '../safetensors/safetensors.ts';
import { hkdf } from '@noble/hashes/hkdf.js';
import { chacha20 } from '@noble/ciphers/chacha.js';

export interface LoraModuleShape {
  /** Module path inside the base model, e.g. model.layers.0.self_attn.q_proj. */
  module: string;
  r: number;
  inFeatures: number;
  outFeatures: number;
}

export interface PeftAdapterConfig {
  peft_type: 'LORA';
  r: number;
  lora_alpha: number;
  target_modules: string[] | string;
  base_model_name_or_path?: string | null;
  [k: string]: unknown;
}

export interface PeftAdapter {
  config: PeftAdapterConfig;
  /** Full tensor name -> row-major f32 values, in name order. */
  tensors: Map<string, Float32Array>;
  /** Full tensor name -> shape. Same keys as `tensors`. */
  shapes: Map<string, number[]>;
}

export type PeftAdapterFiles = { 'adapter_config.json': Uint8Array; 'adapter_model.safetensors': Uint8Array };

const CONFIG_FILE = 'adapter_config.json';
const WEIGHTS_FILE = 'adapter_model.safetensors';
const LORA_TENSOR = /^base_model\.model\.(.+)\.lora_([AB])\.weight$/;
const MAX_PATTERN_LENGTH = 1024;

// ---------------------------------------------------------------------------------------------------------
// Validation

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Tensors other than lora_A/lora_B weights, named by what they are (peft/utils/save_and_load.py). */
function unsupportedTensor(name: string): never {
  let what = 'a non-LoRA tensor (modules_to_save or other trainable module)';
  if (/lora_embedding_[AB]/.test(name)) what = 'an embedding LoRA tensor (lora_embedding_A/B)';
  else if (/lora_magnitude_vector/.test(name)) what = 'a DoRA magnitude vector';
  else if (/\.bias$/.test(name)) what = 'a bias tensor (bias other than "none")';
  else if (/modules_to_save/.test(name)) what = 'a modules_to_save tensor';
  throw new FormatError(`peft: tensor "${name}" is ${what}, which is not supported yet (only lora_A/lora_B weights are)`, { tensor: name });
}

const patternCache = new Map<string, RegExp>();
/**
 * rank_pattern / alpha_pattern keys are regular expressions matched against the end of the module path
 * at a dot boundary: peft 0.13 `re.match(rf".*\.{key}$", current_key)` (tuners/lora/model.py
 * `_create_and_replace`); later releases also accept the whole path (`(.*\.)?`). We accept both.
 */
function patternMatches(key: string, module: string): boolean {
  let re = patternCache.get(key);
  if (!re) {
    if (key.length > MAX_PATTERN_LENGTH) throw new FormatError(`peft: pattern key longer than ${MAX_PATTERN_LENGTH} characters`);
    try {
      re = new RegExp(`^(?:.*\\.)?(?:${key})$`);
    } catch (cause) {
      throw new FormatError(`peft: pattern key ${JSON.stringify(key)} is not a valid regular expression`, undefined, cause);
    }
    if (patternCache.size > 1024) patternCache.clear();
    patternCache.set(key, re);
  }
  return re.test(module);
}

/** The rank PEFT gives `module`: the first rank_pattern or alpha_pattern key that matches, else r. */
function expectedRank(config: PeftAdapterConfig, module: string): number {
  const rankPattern = (config.rank_pattern ?? {}) as Record<string, number>;
  const alphaPattern = (config.alpha_pattern ?? {}) as Record<string, number>;
  const key = [...Object.keys(rankPattern), ...Object.keys(alphaPattern)].find((k) => patternMatches(k, module));
  return key !== undefined && Object.hasOwn(rankPattern, key) ? rankPattern[key]! : config.r;
}

function targetsModule(targets: string[] | string, module: string): boolean {
  // peft tuners_utils.check_target_module_exists: a list matches the full name or a ".<suffix>"; a string is
  // a Python regex (re.fullmatch) or "all-linear", which we do not re-evaluate here.
  if (typeof targets === 'string') return true;
  return targets.some((t) => module === t || module.endsWith(`.${t}`));
}

function validateConfig(value: unknown): PeftAdapterConfig {
  if (!isPlainObject(value)) throw new FormatError('peft: adapter_config.json is not a JSON object');
  const c = value;
  if (c.peft_type !== 'LORA') throw new FormatError(`peft: peft_type must be "LORA", got ${describe(c.peft_type)}`);
  if (typeof c.r !== 'number' || !Number.isSafeInteger(c.r) || c.r < 1)
    throw new FormatError(`peft: r must be a positive integer, got ${describe(c.r)}`);
  if (typeof c.lora_alpha !== 'number' || !Number.isFinite(c.lora_alpha))
    throw new FormatError(`peft: lora_alpha must be a finite number, got ${describe(c.lora_alpha)}`);
  const t = c.target_modules;
  const targetsOk =
    (typeof t === 'string' && t.length > 0) ||
    (Array.isArray(t) && t.length > 0 && t.every((m) => typeof m === 'string' && m.length > 0));
  if (!targetsOk) throw new FormatError(`peft: target_modules must be a non-empty list of names or a pattern, got ${describe(t)}`);
  if (c.base_model_name_or_path !== undefined && c.base_model_name_or_path !== null && typeof c.base_model_name_or_path !== 'string')
    throw new FormatError('peft: base_model_name_or_path must be a string or null');
  for (const flag of ['use_rslora', 'use_dora'] as const)
    if (c[flag] !== undefined && c[flag] !== null && typeof c[flag] !== 'boolean')
      throw new FormatError(`peft: ${flag} must be a boolean, got ${describe(c[flag])}`);
  if (c.use_dora === true) throw new FormatError('peft: DoRA adapters (use_dora) are not supported yet');
  for (const [field, integer] of [['rank_pattern', true], ['alpha_pattern', false]] as const) {
    const p = c[field];
    if (p === undefined || p === null) continue;
    if (!isPlainObject(p)) throw new FormatError(`peft: ${field} must be an object`);
    for (const [k, v] of Object.entries(p)) {
      const ok = typeof v === 'number' && (integer ? Number.isSafeInteger(v) && v >= 1 : Number.isFinite(v));
      if (!ok) throw new FormatError(`peft: ${field}["${k}"] must be ${integer ? 'a positive integer' : 'a finite number'}`);
      patternMatches(k, ''); // compiles the key, refusing invalid ones
    }
  }
  return c as PeftAdapterConfig;
}

/** Groups lora_A/lora_B tensors by module; every tensor must be one of a complete pair of 2-D weights. */
function pairModules(shapes: Map<string, number[]>): LoraModuleShape[] {
  const parts = new Map<string, { A?: number[]; B?: number[] }>();
  for (const [name, shape] of shapes) {
    const m = LORA_TENSOR.exec(name);
    if (!m) unsupportedTensor(name);
    const [, module, part] = m as unknown as [string, string, 'A' | 'B'];
    if (shape.length !== 2)
      throw new FormatError(`peft: tensor "${name}" must be 2-D (linear LoRA), got shape [${shape}]`, { tensor: name });
    const entry = parts.get(module) ?? {};
    entry[part] = shape;
    parts.set(module, entry);
  }
  const modules: LoraModuleShape[] = [];
  for (const [module, { A, B }] of parts) {
    if (!A || !B) {
      const [has, lacks] = A ? ['lora_A', 'lora_B'] : ['lora_B', 'lora_A'];
      throw new FormatError(`peft: module "${module}" has ${has} but no ${lacks}`, { module });
    }
    const [rA, inFeatures] = A as [number, number];
    const [outFeatures, rB] = B as [number, number];
    if (rA !== rB) throw new FormatError(`peft: module "${module}": lora_A rank ${rA} != lora_B rank ${rB}`, { module });
    if (rA < 1 || inFeatures < 1 || outFeatures < 1)
      throw new FormatError(`peft: module "${module}" has an empty dimension (A [${A}], B [${B}])`, { module });
    modules.push({ module, r: rA, inFeatures, outFeatures });
  }
  return modules.sort((a, b) => compareTensorNames(a.module, b.module));
}

/** The LoRA-level checks shared by load and save. */
function validateLora(config: PeftAdapterConfig, tensors: Map<string, Float32Array>, shapes: Map<string, number[]>): void {
  if (shapes.size === 0) throw new FormatError('peft: the adapter has no LoRA tensors');
  for (const mod of pairModules(shapes)) {
    const rank = expectedRank(config, mod.module);
    if (mod.r !== rank)
      throw new FormatError(`peft: module "${mod.module}" has rank ${mod.r} but the config gives r=${rank}`, { module: mod.module });
    if (!targetsModule(config.target_modules, mod.module))
      throw new FormatError(`peft: module "${mod.module}" is not in target_modules`, { module: mod.module });
  }
  for (const [name, data] of tensors) {
    for (let i = 0; i < data.length; i++)
      if (!Number.isFinite(data[i]!))
        throw new FormatError(`peft: tensor "${name}" has a non-finite value (${data[i]}) at index ${i}`, { tensor: name, index: i });
  }
}

/** Structural argument check of an in-memory adapter (TypeError/RangeError: caller bugs, not bad files). */
function checkAdapter(name: string, adapter: unknown): PeftAdapter {
  const a = adapter as PeftAdapter;
  if (!isPlainObject(a) || !(a.tensors instanceof Map) || !(a.shapes instanceof Map) || !isPlainObject(a.config))
    throw new TypeError(`"${name}" expected PeftAdapter {config, tensors, shapes}, got ${describe(adapter)}`);
  if (a.tensors.size !== a.shapes.size)
    throw new RangeError(`"${name}" expected tensors and shapes with the same names, got ${a.tensors.size} and ${a.shapes.size}`);
  for (const [tensor, data] of a.tensors) {
    const shape = a.shapes.get(tensor);
    if (!shape) throw new RangeError(`"${name}.shapes" expected an entry for "${tensor}", got none`);
    if (!(data instanceof Float32Array)) throw new TypeError(`"${name}.tensors.${tensor}" expected Float32Array, got ${describe(data)}`);
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new TypeError(`"${name}.shapes.${tensor}" expected non-negative integers, got [${shape}]`);
    const count = shape.reduce((x, y) => x * y, 1);
    if (data.length !== count) throw new RangeError(`"${name}.tensors.${tensor}" expected ${count} elements, got ${data.length}`);
  }
  return a;
}

function sortedNames(adapter: PeftAdapter): string[] {
  return [...adapter.shapes.keys()].sort(compareTensorNames);
}

// ---------------------------------------------------------------------------------------------------------
// Load and save

function parseConfigBytes(bytes: Uint8Array): PeftAdapterConfig {
  let text: string;
  try {
    text = bytesToUtf8(bytes);
  } catch (cause) {
    throw new FormatError('peft: adapter_config.json is not valid UTF-8', undefined, cause);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new FormatError('peft: adapter_config.json is not valid JSON', undefined, cause);
  }
  const duplicate = isPlainObject(value) ? findDuplicateJsonKey(text) : undefined;
  if (duplicate !== undefined) throw new FormatError(`peft: duplicate key "${duplicate}" in adapter_config.json`);
  return validateConfig(value);
}

export function loadPeftAdapter(options: { files: PeftAdapterFiles }): PeftAdapter {
  const files = options.files;
  if (!isPlainObject(files)) throw new TypeError(`"files" expected object, got ${describe(files)}`);
  const configBytes = expectBytes(`files["${CONFIG_FILE}"]`, files[CONFIG_FILE]);
  const weightBytes = expectBytes(`files["${WEIGHTS_FILE}"]`, files[WEIGHTS_FILE]);
  const config = parseConfigBytes(configBytes);
  const file = readSafetensors({ bytes: weightBytes });
  const tensors = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  for (const name of [...file.tensors.keys()].sort(compareTensorNames)) {
    const t = file.tensors.get(name)!;
    tensors.set(name, t.data);
    shapes.set(name, t.shape);
  }
  validateLora(config, tensors, shapes);
  return { config, tensors, shapes };
}

/** Recursively sorted keys, as Python's json.dumps(sort_keys=True) writes them. */
function sortKeysDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeysDeep);
  if (!isPlainObject(value)) return value;
  const entries = Object.keys(value)
    .sort(compareTensorNames)
    .map((k) => [k, sortKeysDeep(value[k])] as const);
  return Object.fromEntries(entries);
}

/**
 * Writes the two files as PEFT does: adapter_config.json as `json.dumps(config, indent=2, sort_keys=True)`
 * (peft/config.py `save_pretrained`; non-ASCII escaped like Python's default ensure_ascii, no trailing
 * newline) and adapter_model.safetensors in F32 with metadata {"format": "pt"}.
 */
export function savePeftAdapter(options: { adapter: PeftAdapter }): PeftAdapterFiles {
  const adapter = checkAdapter('adapter', options.adapter);
  const config = validateConfig(adapter.config);
  validateLora(config, adapter.tensors, adapter.shapes);
  const json = JSON.stringify(sortKeysDeep(config), null, 2).replace(
    /[\u0080-\uffff]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  const weights = writeSafetensors({
    tensors: sortedNames(adapter).map((name) => ({ name, shape: adapter.shapes.get(name)!, data: adapter.tensors.get(name)! })),
    metadata: { format: 'pt' },
  });
  return { [CONFIG_FILE]: utf8ToBytes(json), [WEIGHTS_FILE]: weights };
}

// ---------------------------------------------------------------------------------------------------------
// Schema, fingerprint, modules

export function adapterSchema(options: { adapter: PeftAdapter }): Array<{ name: string; shape: number[] }> {
  const adapter = checkAdapter('adapter', options.adapter);
  return sortedNames(adapter).map((name) => ({ name, shape: [...adapter.shapes.get(name)!] }));
}

export const ADAPTER_FINGERPRINT_DOMAIN = 'tensorguard/peft-adapter/v1';
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * SHA-256 of the adapter's tensors, independent of file layout and stored dtype (a BF16 file and the F32
 * file it widens to have the same fingerprint). The config is not covered. Hashed bytes, with the domain
 * separation of core/codec/fingerprint.ts:
 *   "tensorguard/peft-adapter/v1" || 0x00 || u32 count ||
 *   for each tensor in name order (UTF-8 byte order): u32 len(name) || name (UTF-8) || u32 ndim ||
 *     ndim x u64 dim || element values as f32 little-endian, row-major
 * All integers little-endian. Streams, so an 80 M-parameter adapter is hashed without a second copy.
 */
export function adapterFingerprint(options: { adapter: PeftAdapter }): Uint8Array {
  const adapter = checkAdapter('adapter', options.adapter);
  const names = sortedNames(adapter);
  const h = sha256.create();
  h.update(utf8ToBytes(ADAPTER_FINGERPRINT_DOMAIN));
  h.update(new Uint8Array([0]));
  const u32 = (n: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n, true);
    return b;
  };
  h.update(u32(names.length));
  for (const name of names) {
    const nameBytes = utf8ToBytes(name);
    const shape = adapter.shapes.get(name)!;
    const data = adapter.tensors.get(name)!;
    h.update(u32(nameBytes.length));
    h.update(nameBytes);
    const dims = new Uint8Array(4 + 8 * shape.length);
    const dv = new DataView(dims.buffer);
    dv.setUint32(0, shape.length, true);
    shape.forEach((d, i) => dv.setBigUint64(4 + 8 * i, BigInt(d), true));
    h.update(dims);
    if (LITTLE_ENDIAN_HOST) h.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    else {
      const le = new Uint8Array(data.byteLength);
      const v = new DataView(le.buffer);
      for (let i = 0; i < data.length; i++) v.setFloat32(4 * i, data[i]!, true);
      h.update(le);
    }
  }
  return h.digest();
}

export function loraModules(options: { adapter: PeftAdapter }): LoraModuleShape[] {
  const adapter = checkAdapter('adapter', options.adapter);
  return pairModules(adapter.shapes);
}

export function scaling(options: { config: PeftAdapterConfig }): number {
  const c = options.config;
  if (!isPlainObject(c)) throw new TypeError(`"config" expected object, got ${describe(c)}`);
  if (typeof c.r !== 'number' || !Number.isSafeInteger(c.r) || c.r < 1)
    throw new RangeError(`"config.r" expected positive integer, got ${describe(c.r)}`);
  if (typeof c.lora_alpha !== 'number' || !Number.isFinite(c.lora_alpha))
    throw new TypeError(`"config.lora_alpha" expected finite number, got ${describe(c.lora_alpha)}`);
  // peft/tuners/lora/layer.py update_layer: scaling = lora_alpha / sqrt(r) if use_rslora else lora_alpha / r
  return c.use_rslora === true ? c.lora_alpha / Math.sqrt(c.r) : c.lora_alpha / c.r;
}

// ---------------------------------------------------------------------------------------------------------
// Flatten, unflatten, difference

function checkNames(adapter: PeftAdapter, names: unknown): string[] {
  if (!Array.isArray(names)) throw new TypeError(`"names" expected array of tensor names, got ${describe(names)}`);
  const seen = new Set<string>();
  for (const n of names) {
    if (typeof n !== 'string' || !adapter.tensors.has(n))
      throw new RangeError(`"names" expected tensor names of the adapter, got ${describe(n)}`);
    if (seen.has(n)) throw new RangeError(`"names" expected unique names, got "${n}" twice`);
    seen.add(n);
  }
  return names as string[];
}

export function flattenTensors(options: { adapter: PeftAdapter; names: string[] }): Float32Array {
  const adapter = checkAdapter('adapter', options.adapter);
  const names = checkNames(adapter, options.names);
  let total = 0;
  for (const n of names) total += adapter.tensors.get(n)!.length;
  const out = new Float32Array(total);
  let pos = 0;
  for (const n of names) {
    const t = adapter.tensors.get(n)!;
    out.set(t, pos);
    pos += t.length;
  }
  return out;
}

export function unflattenInto(options: { adapter: PeftAdapter; names: string[]; values: Float32Array }): PeftAdapter {
  const template = checkAdapter('adapter', options.adapter);
  const names = checkNames(template, options.names);
  const values = options.values;
  if (!(values instanceof Float32Array)) throw new TypeError(`"values" expected Float32Array, got ${describe(values)}`);
  let total = 0;
  for (const n of names) total += template.tensors.get(n)!.length;
  if (values.length !== total) throw new RangeError(`"values" expected ${total} elements, got ${values.length}`);
  const replaced = new Map<string, Float32Array>();
  let pos = 0;
  for (const n of names) {
    const len = template.tensors.get(n)!.length;
    replaced.set(n, values.slice(pos, pos + len));
    pos += len;
  }
  const tensors = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  for (const [n, data] of template.tensors) {
    tensors.set(n, replaced.get(n) ?? data.slice());
    shapes.set(n, [...template.shapes.get(n)!]);
  }
  return { config: structuredClone(template.config), tensors, shapes };
}

export function subtractAdapters(options: { a: PeftAdapter; b: PeftAdapter }): Map<string, Float32Array> {
  const a = checkAdapter('a', options.a);
  const b = checkAdapter('b', options.b);
  const namesA = sortedNames(a);
  const namesB = sortedNames(b);
  for (let i = 0; i < Math.max(namesA.length, namesB.length); i++) {
    const na = namesA[i];
    const nb = namesB[i];
    if (na !== nb) {
      const missing = na === undefined || (nb !== undefined && compareTensorNames(nb, na) < 0) ? `"${nb}" only in b` : `"${na}" only in a`;
      throw new FormatError(`peft: adapter schemas differ: tensor ${missing}`, { tensor: na ?? nb });
    }
    const sa = a.shapes.get(na!)!;
    const sb = b.shapes.get(na!)!;
    if (sa.length !== sb.length || sa.some((d, k) => d !== sb[k]))
      throw new FormatError(`peft: adapter schemas differ: tensor "${na}" has shape [${sa}] in a and [${sb}] in b`, { tensor: na });
  }
  const out = new Map<string, Float32Array>();
  for (const n of namesA) {
    const x = a.tensors.get(n)!;
    const y = b.tensors.get(n)!;
    const d = new Float32Array(x.length);
    // Rounding the f64 difference to f32 equals f32 subtraction (f64 has >= 2*24+2 bits: no double rounding).
    for (let i = 0; i < x.length; i++) d[i] = x[i]! - y[i]!;
    out.set(n, d);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// FFA-LoRA: the frozen, shared A

/**
 * FFA-LoRA's frozen A for tensor `name` of shape [r, in], drawn from `seed` so every robot and the officer
 * derive the same matrix. Distribution as PEFT's default init (tuners/lora/layer.py reset_lora_parameters:
 * kaiming_uniform_(a=sqrt(5))): gain = sqrt(2 / (1 + 5)), bound = gain * sqrt(3 / fan_in) = 1 / sqrt(in),
 * uniform on [-bound, bound).
 * Derivation: key = HKDF-SHA256(ikm = seed, salt = none (RFC 5869 §2.2: zeros), info = UTF-8
 * "tensorguard/ffa-lora-A/" + name, L = 32); keystream = ChaCha20 (RFC 8439) with that key, a 12-byte zero
 * nonce (each key is used for one stream) and block counter 0; element i takes keystream bytes [4i, 4i+4)
 * as a u32 w (little-endian), u = (w >>> 8) / 2^24 in [0, 1) exactly, value = f32((2u - 1) * bound).
 * Only IEEE-754 double operations (sqrt, divide, multiply, round to f32) follow the integer stream, so the
 * result is bit-identical on every platform.
 */
export function frozenLoraA(options: { seed: Uint8Array; name: string; shape: number[] }): Float32Array {
  const seed = expectBytes('seed', options.seed, 32);
  const { name, shape } = options;
  if (typeof name !== 'string' || name.length === 0) throw new TypeError(`"name" expected non-empty string, got ${describe(name)}`);
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => Number.isSafeInteger(d) && d >= 1))
    throw new TypeError(`"shape" expected [r, in] positive integers, got ${describe(shape)}`);
  const [r, inFeatures] = shape as [number, number];
  const count = r * inFeatures;
  if (count > 2 ** 28) throw new RangeError(`"shape" expected at most 2^28 elements, got ${count}`);
  const key = hkdf(nobleSha256, seed, undefined, utf8ToBytes(`tensorguard/ffa-lora-A/${name}`), 32);
  const stream = chacha20(key, new Uint8Array(12), new Uint8Array(4 * count), undefined, 0);
  const words = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
  const bound = 1 / Math.sqrt(inFeatures);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const u = (words.getUint32(4 * i, true) >>> 8) / 16777216;
    out[i] = (2 * u - 1) * bound;
  }
  return out;
}
