// Tests for the PEFT LoRA adapter model against the format vectors in tests/vectors/peft/ and malformed adapters.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../errors.ts';
import { bytesToHex, bytesToUtf8, hexToBytes, utf8ToBytes } from '../bytes.ts';
import { sha256 } from '../codec/fingerprint.ts';
import { writeSafetensors } from '../safetensors/safetensors.ts';
import {
  adapterFingerprint,
  adapterSchema,
  flattenTensors,
  frozenLoraA,
  loadPeftAdapter,
  loraModules,
  savePeftAdapter,
  scaling,
  subtractAdapters,
  unflattenInto,
  type PeftAdapter,
  type PeftAdapterConfig,
} from './adapter.ts';

const VECTORS = new URL('../../tests/vectors/peft/', import.meta.url);

interface Expected {
  dtype: string;
  header_length: number;
  sha256: Record<string, string>;
  scaling: number;
  parameter_count: number;
  fingerprint: string;
  tensors: Record<string, { shape: number[]; data_offsets: [number, number]; sum: number; samples: Array<{ index: number; bits: number; value: number }> }>;
}

function vector(name: string) {
  const dir = new URL(`${name}/`, VECTORS);
  const files = {
    'adapter_config.json': new Uint8Array(readFileSync(new URL('adapter_config.json', dir))),
    'adapter_model.safetensors': new Uint8Array(readFileSync(new URL('adapter_model.safetensors', dir))),
  };
  const expected = JSON.parse(readFileSync(new URL('expected.json', dir), 'utf8')) as Expected;
  return { files, expected };
}

const Q0 = 'base_model.model.model.layers.0.self_attn.q_proj';
const V1 = 'base_model.model.model.layers.1.self_attn.v_proj';

function expectFormatError(fn: () => unknown, message: RegExp) {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(FormatError);
  expect((thrown as Error).message).toMatch(message);
}

/** An adapter file map built from a config object and named tensors (F32). */
function files(config: Record<string, unknown>, tensors: Record<string, [number[], number[] | Float32Array]>) {
  return {
    'adapter_config.json': utf8ToBytes(JSON.stringify(config)),
    'adapter_model.safetensors': writeSafetensors({
      tensors: Object.entries(tensors).map(([name, [shape, data]]) => ({ name, shape, data: Float32Array.from(data) })),
      metadata: { format: 'pt' },
    }),
  };
}
const baseConfig = { peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['q_proj', 'v_proj'] };
const pair = (module: string, r: number, inF: number, outF: number, fill = 0.25): Record<string, [number[], number[]]> => ({
  [`base_model.model.${module}.lora_A.weight`]: [[r, inF], Array(r * inF).fill(fill)],
  [`base_model.model.${module}.lora_B.weight`]: [[outF, r], Array(outF * r).fill(-fill)],
});

describe.each(['tiny-lora', 'tiny-lora-f16'])('PEFT vector %s', (name) => {
  const { files: vectorFiles, expected } = vector(name);

  it('is the file the generator wrote (unchanged)', () => {
    for (const [file, digest] of Object.entries(expected.sha256))
      expect(bytesToHex(sha256(vectorFiles[file as keyof typeof vectorFiles])), file).toBe(digest);
  });

  it('has the safetensors layout of a torch save: compact header, __metadata__ first, space padding', () => {
    const bytes = vectorFiles['adapter_model.safetensors'];
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    expect(n).toBe(expected.header_length);
    expect(n % 8).toBe(0);
    const text = bytesToUtf8(bytes.subarray(8, 8 + n));
    const names = Object.keys(expected.tensors).sort();
    const json =
      '{"__metadata__":{"format":"pt"},' +
      names
        .map((t) => {
          const e = expected.tensors[t]!;
          return `"${t}":{"dtype":"${expected.dtype}","shape":[${e.shape}],"data_offsets":[${e.data_offsets}]}`;
        })
        .join(',') +
      '}';
    expect(text).toBe(json.padEnd(n, ' '));
  });

  it('loads unchanged with the expected values', () => {
    const adapter = loadPeftAdapter({ files: vectorFiles });
    expect(adapter.config.peft_type).toBe('LORA');
    expect([...adapter.tensors.keys()]).toEqual(Object.keys(expected.tensors).sort());
    let count = 0;
    for (const [t, e] of Object.entries(expected.tensors)) {
      const data = adapter.tensors.get(t)!;
      expect(adapter.shapes.get(t)).toEqual(e.shape);
      let sum = 0;
      for (const v of data) sum += v;
      expect(sum, t).toBe(e.sum);
      for (const s of e.samples) expect(Object.is(data[s.index], s.value), `${t}[${s.index}]`).toBe(true);
      count += data.length;
    }
    expect(count).toBe(expected.parameter_count);
    expect(scaling({ config: adapter.config })).toBe(expected.scaling);
  });

  it('has the fingerprint computed independently by the generator', () => {
    expect(bytesToHex(adapterFingerprint({ adapter: loadPeftAdapter({ files: vectorFiles }) }))).toBe(expected.fingerprint);
  });

  it('saves a config byte-identical to PEFT and an F32 file that reloads to the same adapter', () => {
    const adapter = loadPeftAdapter({ files: vectorFiles });
    const saved = savePeftAdapter({ adapter });
    expect(bytesToUtf8(saved['adapter_config.json'])).toBe(bytesToUtf8(vectorFiles['adapter_config.json']));
    const again = loadPeftAdapter({ files: saved });
    expect(again.config).toEqual(adapter.config);
    expect(again.shapes).toEqual(adapter.shapes);
    for (const [t, data] of adapter.tensors) expect(again.tensors.get(t), t).toEqual(data);
    expect(bytesToHex(adapterFingerprint({ adapter: again }))).toBe(expected.fingerprint);
    expect(savePeftAdapter({ adapter: again })['adapter_model.safetensors']).toEqual(saved['adapter_model.safetensors']);
  });
});

describe('loadPeftAdapter on the vectors', () => {
  it('lists LoRA modules with their shapes, honouring rank_pattern', () => {
    expect(loraModules({ adapter: loadPeftAdapter({ files: vector('tiny-lora').files }) })).toEqual([
      { module: 'model.layers.0.self_attn.q_proj', r: 4, inFeatures: 16, outFeatures: 16 },
      { module: 'model.layers.0.self_attn.v_proj', r: 4, inFeatures: 16, outFeatures: 8 },
      { module: 'model.layers.1.self_attn.q_proj', r: 4, inFeatures: 16, outFeatures: 16 },
      { module: 'model.layers.1.self_attn.v_proj', r: 4, inFeatures: 16, outFeatures: 8 },
    ]);
    const f16 = loadPeftAdapter({ files: vector('tiny-lora-f16').files });
    expect(loraModules({ adapter: f16 }).map((m) => m.r)).toEqual([4, 4, 4, 2]);
    expect(f16.config.rank_pattern).toEqual({ 'layers.1.self_attn.v_proj': 2 });
  });

  it('decodes the F16 edge values', () => {
    const b = loadPeftAdapter({ files: vector('tiny-lora-f16').files }).tensors.get(`${Q0}.lora_B.weight`)!;
    expect([b[3], b[4], b[5], b[7]]).toEqual([2 ** -24, -(2 ** -20), 2 ** -14, 65504]);
    expect(Object.is(b[6], -0)).toBe(true);
  });
});

describe('loadPeftAdapter refuses malformed adapters', () => {
  const good = { ...pair('model.layers.0.self_attn.q_proj', 2, 3, 5), ...pair('model.layers.0.self_attn.v_proj', 2, 3, 4) };

  it('accepts the well-formed baseline', () => {
    const a = loadPeftAdapter({ files: files(baseConfig, good) });
    expect(adapterSchema({ adapter: a }).map((s) => s.shape)).toEqual([[2, 3], [5, 2], [2, 3], [4, 2]]);
  });
  it('lora_A without lora_B', () => {
    const t = { ...good };
    delete t['base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight'];
    expectFormatError(() => loadPeftAdapter({ files: files(baseConfig, t) }), /v_proj" has lora_A but no lora_B/);
  });
  it('lora_B without lora_A', () => {
    const t = { ...good };
    delete t['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'];
    expectFormatError(() => loadPeftAdapter({ files: files(baseConfig, t) }), /has lora_B but no lora_A/);
  });
  it('rank mismatch with the config', () =>
    expectFormatError(() => loadPeftAdapter({ files: files({ ...baseConfig, r: 8 }, good) }), /rank 2 but the config gives r=8/));
  it('rank_pattern override mismatch', () =>
    expectFormatError(
      () => loadPeftAdapter({ files: files({ ...baseConfig, rank_pattern: { v_proj: 3 } }, good) }),
      /v_proj" has rank 2 but the config gives r=3/,
    ));
  it('rank_pattern honoured; the first matching key wins, as in PEFT', () => {
    const t = { ...pair('model.layers.0.self_attn.q_proj', 2, 3, 5), ...pair('model.layers.0.self_attn.v_proj', 1, 3, 4) };
    expect(loadPeftAdapter({ files: files({ ...baseConfig, rank_pattern: { 'layers.0.self_attn.v_proj': 1 } }, t) })).toBeTruthy();
    expectFormatError(
      () => loadPeftAdapter({ files: files({ ...baseConfig, rank_pattern: { 'layers\\.\\d+\\.self_attn\\.v_proj': 1, v_proj: 7 } }, good) }),
      /rank 2 but the config gives r=1/,
    );
  });
  it('lora_A and lora_B ranks disagree', () => {
    const t = { ...good, 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight': [[5, 3], Array(15).fill(0)] as [number[], number[]] };
    expectFormatError(() => loadPeftAdapter({ files: files(baseConfig, t) }), /lora_A rank 2 != lora_B rank 3/);
  });
  it('non-2-D LoRA weight (conv LoRA)', () => {
    const t = { ...good, 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': [[2, 3, 1, 1], Array(6).fill(0)] as [number[], number[]] };
    expectFormatError(() => loadPeftAdapter({ files: files(baseConfig, t) }), /must be 2-D/);
  });
  it.each([
    ['base_model.model.lm_head.modules_to_save.default.weight', /modules_to_save/],
    ['base_model.model.score.weight', /non-LoRA tensor/],
    ['base_model.model.model.embed_tokens.lora_embedding_A', /embedding LoRA/],
    ['base_model.model.model.layers.0.self_attn.q_proj.lora_B.bias', /bias tensor/],
    ['base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector', /DoRA/],
    ['base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight', /not supported yet|non-LoRA/],
  ])('unsupported tensor %s', (extra, message) => {
    const t = { ...good, [extra]: [[2], [0, 0]] as [number[], number[]] };
    expectFormatError(() => loadPeftAdapter({ files: files(baseConfig, t) }), message);
    expectFormatError(() => loadPeftAdapter({ files: files(baseConfig, t) }), /not supported yet/);
  });
  it('non-finite values', () => {
    const t = { ...good, 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': [[2, 3], [0, 0, NaN, 0, 0, 0]] as [number[], number[]] };
    expectFormatError(() => loadPeftAdapter({ files: files(baseConfig, t) }), /non-finite value \(NaN\) at index 2/);
    t['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'] = [[2, 3], [0, 0, 0, 0, 0, -Infinity]];
    expectFormatError(() => loadPeftAdapter({ files: files(baseConfig, t) }), /non-finite value \(-Infinity\)/);
  });
  it('module outside target_modules', () =>
    expectFormatError(() => loadPeftAdapter({ files: files({ ...baseConfig, target_modules: ['q_proj'] }, good) }), /not in target_modules/));
  it('target_modules as a regex string is accepted', () =>
    expect(loadPeftAdapter({ files: files({ ...baseConfig, target_modules: '.*\\.(q|v)_proj' }, good) }).tensors.size).toBe(4));
  it.each([
    [{ ...baseConfig, peft_type: 'IA3' }, /peft_type/],
    [{ ...baseConfig, target_modules: undefined }, /target_modules/],
    [{ ...baseConfig, target_modules: [] }, /target_modules/],
    [{ ...baseConfig, r: 0 }, /r must be/],
    [{ ...baseConfig, r: 2.5 }, /r must be/],
    [{ ...baseConfig, lora_alpha: 'x' }, /lora_alpha/],
    [{ ...baseConfig, use_dora: true }, /DoRA/],
    [{ ...baseConfig, use_rslora: 'yes' }, /use_rslora/],
    [{ ...baseConfig, rank_pattern: { q_proj: 0 } }, /rank_pattern/],
    [{ ...baseConfig, alpha_pattern: { '(': 2 } }, /regular expression/],
    [[baseConfig], /not a JSON object/],
  ])('bad config %#', (config, message) =>
    expectFormatError(() => loadPeftAdapter({ files: files(config as Record<string, unknown>, good) }), message));
  it('config that is not JSON, or has a duplicate key', () => {
    const f = files(baseConfig, good);
    expectFormatError(() => loadPeftAdapter({ files: { ...f, 'adapter_config.json': utf8ToBytes('{"peft_type":') } }), /not valid JSON/);
    expectFormatError(
      () => loadPeftAdapter({ files: { ...f, 'adapter_config.json': utf8ToBytes('{"peft_type":"LORA","r":2,"r":4,"lora_alpha":1,"target_modules":"x"}') } }),
      /duplicate key "r"/,
    );
  });
  it('no tensors', () => expectFormatError(() => loadPeftAdapter({ files: files(baseConfig, {}) }), /no LoRA tensors/));
  it('a malformed safetensors file', () => {
    const f = files(baseConfig, good);
    expectFormatError(
      () => loadPeftAdapter({ files: { ...f, 'adapter_model.safetensors': f['adapter_model.safetensors'].subarray(0, 100) } }),
      /safetensors/,
    );
  });
  it('missing files are argument errors', () => {
    expect(() => loadPeftAdapter({ files: {} as never })).toThrow(TypeError);
  });
});

describe('adapter operations', () => {
  const adapter = () => loadPeftAdapter({ files: vector('tiny-lora').files });

  it('adapterSchema is sorted by name with copied shapes', () => {
    const a = adapter();
    const schema = adapterSchema({ adapter: a });
    expect(schema.map((s) => s.name)).toEqual([...a.shapes.keys()].sort());
    expect(schema[0]).toEqual({ name: `${Q0}.lora_A.weight`, shape: [4, 16] });
    schema[0]!.shape[0] = 99;
    expect(a.shapes.get(`${Q0}.lora_A.weight`)).toEqual([4, 16]);
  });

  it('fingerprint depends on values, names and shapes, not on tensor insertion order', () => {
    const a = adapter();
    const fp = bytesToHex(adapterFingerprint({ adapter: a }));
    const reordered: PeftAdapter = { config: a.config, tensors: new Map([...a.tensors].reverse()), shapes: new Map([...a.shapes].reverse()) };
    expect(bytesToHex(adapterFingerprint({ adapter: reordered }))).toBe(fp);
    const changed = unflattenInto({ adapter: a, names: [`${V1}.lora_B.weight`], values: new Float32Array(32) });
    expect(bytesToHex(adapterFingerprint({ adapter: changed }))).not.toBe(fp);
    const reshaped: PeftAdapter = { ...a, shapes: new Map(a.shapes).set(`${Q0}.lora_A.weight`, [16, 4]) };
    expect(bytesToHex(adapterFingerprint({ adapter: reshaped }))).not.toBe(fp);
  });

  it('flattenTensors concatenates in the given order; unflattenInto inverts it and copies the rest', () => {
    const a = adapter();
    const names = [`${V1}.lora_B.weight`, `${Q0}.lora_A.weight`];
    const flat = flattenTensors({ adapter: a, names });
    expect(flat.length).toBe(32 + 64);
    expect([...flat.subarray(0, 32)]).toEqual([...a.tensors.get(names[0]!)!]);
    expect([...flat.subarray(32)]).toEqual([...a.tensors.get(names[1]!)!]);
    const doubled = flat.map((v) => 2 * v);
    const b = unflattenInto({ adapter: a, names, values: doubled });
    expect(b.tensors.get(names[0]!)).toEqual(a.tensors.get(names[0]!)!.map((v) => 2 * v));
    expect(b.tensors.get(`${Q0}.lora_B.weight`)).toEqual(a.tensors.get(`${Q0}.lora_B.weight`));
    expect(b.tensors.get(`${Q0}.lora_B.weight`)).not.toBe(a.tensors.get(`${Q0}.lora_B.weight`));
    expect(b.config).toEqual(a.config);
    expect(b.config).not.toBe(a.config);
    expect([...b.tensors.keys()]).toEqual([...a.tensors.keys()]);
    expect(flattenTensors({ adapter: b, names })).toEqual(doubled);
    expect(() => flattenTensors({ adapter: a, names: ['nope'] })).toThrow(RangeError);
    expect(() => flattenTensors({ adapter: a, names: [names[0]!, names[0]!] })).toThrow(RangeError);
    expect(() => unflattenInto({ adapter: a, names, values: new Float32Array(95) })).toThrow(RangeError);
  });

  it('subtractAdapters gives a - b and names the first schema mismatch', () => {
    const a = adapter();
    const names = adapterSchema({ adapter: a }).map((s) => s.name);
    const b = unflattenInto({ adapter: a, names, values: flattenTensors({ adapter: a, names }).map((v) => v / 4) });
    const diff = subtractAdapters({ a, b });
    expect([...diff.keys()]).toEqual(names);
    for (const n of names) expect(diff.get(n)).toEqual(a.tensors.get(n)!.map((v) => v - v / 4));
    const dropped = { ...b, tensors: new Map(b.tensors), shapes: new Map(b.shapes) };
    dropped.tensors.delete(`${Q0}.lora_B.weight`);
    dropped.shapes.delete(`${Q0}.lora_B.weight`);
    expectFormatError(() => subtractAdapters({ a, b: dropped }), /tensor "base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_B\.weight" only in a/);
    expectFormatError(() => subtractAdapters({ a: dropped, b: a }), /q_proj\.lora_B\.weight" only in b/);
    const reshaped = { ...b, shapes: new Map(b.shapes).set(`${Q0}.lora_A.weight`, [16, 4]) };
    expectFormatError(() => subtractAdapters({ a, b: reshaped }), /q_proj\.lora_A\.weight" has shape \[4,16\] in a and \[16,4\] in b/);
  });

  it('scaling follows lora_alpha / r and rsLoRA lora_alpha / sqrt(r)', () => {
    const c = { peft_type: 'LORA', r: 16, lora_alpha: 32, target_modules: ['q_proj'] } as PeftAdapterConfig;
    expect(scaling({ config: c })).toBe(2);
    expect(scaling({ config: { ...c, use_rslora: true } })).toBe(8);
    expect(() => scaling({ config: { ...c, r: 0 } })).toThrow(RangeError);
  });

  it('savePeftAdapter refuses what loadPeftAdapter would refuse', () => {
    const a = adapter();
    const bad = unflattenInto({ adapter: a, names: [`${Q0}.lora_A.weight`], values: new Float32Array(64).fill(Infinity) });
    expectFormatError(() => savePeftAdapter({ adapter: bad }), /non-finite/);
    expectFormatError(() => savePeftAdapter({ adapter: { ...a, config: { ...a.config, r: 8 } } }), /config gives r=8/);
  });

  it('savePeftAdapter writes the config like Python json.dumps(indent=2, sort_keys=True)', () => {
    const a = loadPeftAdapter({
      files: files({ target_modules: ['q_proj'], r: 2, peft_type: 'LORA', lora_alpha: 4, base_model_name_or_path: 'modèle', z: { b: 1, a: [] } }, pair('m.q_proj', 2, 1, 1)),
    });
    expect(bytesToUtf8(savePeftAdapter({ adapter: a })['adapter_config.json'])).toBe(
      '{\n  "base_model_name_or_path": "mod\\u00e8le",\n  "lora_alpha": 4,\n  "peft_type": "LORA",\n  "r": 2,\n' +
        '  "target_modules": [\n    "q_proj"\n  ],\n  "z": {\n    "a": [],\n    "b": 1\n  }\n}',
    );
  });
});

describe('frozenLoraA (FFA-LoRA)', () => {
  const doc = JSON.parse(readFileSync(new URL('ffa-lora-A.json', VECTORS), 'utf8')) as {
    seed_hex: string;
    cases: Array<{ name: string; shape: [number, number]; sum: number; first: number[]; last: number }>;
  };

  it('matches the independent Python derivation (HKDF-SHA256 + ChaCha20) bit for bit', () => {
    for (const c of doc.cases) {
      const a = frozenLoraA({ seed: hexToBytes(doc.seed_hex), name: c.name, shape: c.shape });
      expect(a.length).toBe(c.shape[0] * c.shape[1]);
      expect([...a.subarray(0, 8)]).toEqual(c.first);
      expect(a[a.length - 1]).toBe(c.last);
      let sum = 0;
      for (const v of a) sum += v;
      expect(sum).toBe(c.sum);
    }
  });

  it('is deterministic, depends on seed and name, and stays within the kaiming bound 1/sqrt(in)', () => {
    const seed = new Uint8Array(32).fill(7);
    const shape = [8, 64];
    const a = frozenLoraA({ seed, name: 'x.lora_A.weight', shape });
    expect(frozenLoraA({ seed, name: 'x.lora_A.weight', shape })).toEqual(a);
    expect(frozenLoraA({ seed, name: 'y.lora_A.weight', shape })).not.toEqual(a);
    expect(frozenLoraA({ seed: new Uint8Array(32), name: 'x.lora_A.weight', shape })).not.toEqual(a);
    const bound = 1 / Math.sqrt(64);
    let mean = 0;
    for (const v of a) {
      expect(Math.abs(v)).toBeLessThanOrEqual(bound);
      mean += v / a.length;
    }
    expect(Math.abs(mean)).toBeLessThan(0.02); // uniform: sd of the mean = bound / sqrt(3 * 512) ~ 0.003
    expect(() => frozenLoraA({ seed: new Uint8Array(31), name: 'x', shape })).toThrow(RangeError);
    expect(() => frozenLoraA({ seed, name: 'x', shape: [8] })).toThrow(TypeError);
  });
});
