// Tests for the safetensors reader/writer: exact layout, dtype decoding, and every malformed-file refusal.
import { describe, expect, it } from 'vitest';
import { FormatError, OversizeError } from '../errors.ts';
import { utf8ToBytes, bytesToHex } from '../bytes.ts';
import { compareTensorNames, findDuplicateJsonKey, readSafetensors, writeSafetensors } from './safetensors.ts';

/** A file from a raw header string (padded with spaces to 8 unless told otherwise) and raw data bytes. */
function file(header: string, data: Uint8Array | number[] = [], options: { pad?: boolean; length?: bigint } = {}): Uint8Array {
  let json = utf8ToBytes(header);
  if (options.pad !== false && json.length % 8 !== 0) json = utf8ToBytes(header + ' '.repeat(8 - (json.length % 8)));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, options.length ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data instanceof Uint8Array ? data : Uint8Array.from(data), 8 + json.length);
  return out;
}

const f32 = (...values: number[]) => new Uint8Array(Float32Array.from(values).buffer);
const u16 = (...bits: number[]) => {
  const b = new Uint8Array(2 * bits.length);
  bits.forEach((v, i) => new DataView(b.buffer).setUint16(2 * i, v, true));
  return b;
};
const entry = (dtype: string, shape: number[], begin: number, end: number) =>
  `{"dtype":"${dtype}","shape":[${shape}],"data_offsets":[${begin},${end}]}`;

function expectFormatError(bytes: Uint8Array, message: RegExp) {
  let thrown: unknown;
  try {
    readSafetensors({ bytes });
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(FormatError);
  expect((thrown as Error).message).toMatch(message);
}

describe('writeSafetensors', () => {
  it('lays the file out exactly as the reference writer: sorted, compact header, space padding, LE u64 length', () => {
    const bytes = writeSafetensors({
      tensors: [
        { name: 'b', shape: [2], data: Float32Array.from([1, 2]) },
        { name: 'a', shape: [1, 1], data: Float32Array.from([-0.5]) },
      ],
      metadata: { format: 'pt' },
    });
    // 141 bytes of JSON + 3 spaces = 144 = 0x90; data: -0.5, 1.0, 2.0 as f32 LE.
    const header =
      '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},' +
      '"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}   ';
    const expected =
      '9000000000000000' + bytesToHex(utf8ToBytes(header)) + '000000bf' + '0000803f' + '00000040';
    expect(bytesToHex(bytes)).toBe(expected);
    const back = readSafetensors({ bytes });
    expect([...back.tensors.keys()]).toEqual(['a', 'b']);
    expect(back.metadata).toEqual({ format: 'pt' });
    expect(back.tensors.get('a')).toEqual({ name: 'a', dtype: 'F32', shape: [1, 1], data: Float32Array.from([-0.5]) });
    expect(back.tensors.get('b')!.data).toEqual(Float32Array.from([1, 2]));
  });

  it('omits __metadata__ when none is given and handles empty tensors', () => {
    const bytes = writeSafetensors({ tensors: [{ name: 'x', shape: [0], data: new Float32Array(0) }] });
    expect(bytesToHex(bytes)).toBe('3800000000000000' + bytesToHex(utf8ToBytes(`{"x":${entry('F32', [0], 0, 0)}}  `)));
    expect(readSafetensors({ bytes }).tensors.get('x')!.data.length).toBe(0);
  });

  it('round-trips random tensors bit for bit, including -0, subnormals and extremes', () => {
    const special = Float32Array.from([0, -0, 1e-45, -3.4028234663852886e38, 1.1754943508222875e-38, Math.PI]);
    const tensors = [
      { name: 'z.weight', shape: [2, 3], data: special },
      { name: 'é.unicode', shape: [3, 4, 5], data: Float32Array.from({ length: 60 }, (_, i) => Math.sin(i) * 1e3) },
      { name: 'scalar', shape: [], data: Float32Array.from([42]) },
    ];
    const bytes = writeSafetensors({ tensors, metadata: { a: 'b', '"quoted"': 'ünï' } });
    const back = readSafetensors({ bytes });
    for (const t of tensors) {
      const got = back.tensors.get(t.name)!;
      expect(got.shape).toEqual(t.shape);
      expect(new Uint8Array(got.data.buffer)).toEqual(new Uint8Array(t.data.buffer));
    }
    expect(back.metadata).toEqual({ a: 'b', '"quoted"': 'ünï' });
    expect(Object.is(back.tensors.get('z.weight')!.data[1], -0)).toBe(true);
    expect(readSafetensors({ bytes: writeSafetensors({ tensors }) }).tensors.size).toBe(3);
  });

  it('refuses bad arguments', () => {
    expect(() => writeSafetensors({ tensors: [{ name: 'a', shape: [2], data: new Float32Array(3) }] })).toThrow(RangeError);
    expect(() =>
      writeSafetensors({
        tensors: [
          { name: 'a', shape: [1], data: new Float32Array(1) },
          { name: 'a', shape: [1], data: new Float32Array(1) },
        ],
      }),
    ).toThrow(RangeError);
    expect(() => writeSafetensors({ tensors: [{ name: '__metadata__', shape: [1], data: new Float32Array(1) }] })).toThrow(TypeError);
    expect(() => writeSafetensors({ tensors: [{ name: 'a', shape: [-1], data: new Float32Array(0) }] })).toThrow(TypeError);
    expect(() => writeSafetensors({ tensors: [], metadata: { a: 1 as unknown as string } })).toThrow(TypeError);
  });
});

describe('readSafetensors dtypes', () => {
  it('decodes F16 exactly: zeros, subnormals, normals, max, infinities, NaN', () => {
    const bits = [0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x3c00, 0xc000, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x3555, 0x8001];
    const values = [0, -0, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, 1, -2, 65504, Infinity, -Infinity, NaN, 0.333251953125, -(2 ** -24)];
    const bytes = file(`{"h":${entry('F16', [bits.length], 0, 2 * bits.length)}}`, u16(...bits));
    const t = readSafetensors({ bytes }).tensors.get('h')!;
    expect(t.dtype).toBe('F16');
    values.forEach((v, i) => expect(Object.is(t.data[i], v), `index ${i}`).toBe(true));
  });

  it('decodes BF16 exactly, including subnormals and specials', () => {
    const bits = [0x3f80, 0x4049, 0xc2f7, 0x8000, 0x0001, 0x7f7f, 0x7f80, 0xff80, 0x7fc0];
    const values = [1, 3.140625, -123.5, -0, 2 ** -133, 3.3895313892515355e38, Infinity, -Infinity, NaN];
    const bytes = file(`{"b":${entry('BF16', [3, 3], 0, 18)}}`, u16(...bits));
    const t = readSafetensors({ bytes }).tensors.get('b')!;
    expect(t.shape).toEqual([3, 3]);
    values.forEach((v, i) => expect(Object.is(t.data[i], v), `index ${i}`).toBe(true));
  });

  it('reads mixed dtypes, tensors listed out of offset order, zero-size tensors and an empty file', () => {
    const header = `{"late":${entry('F32', [1], 6, 10)},"__metadata__":{},"early":${entry('BF16', [1], 4, 6)},"first":${entry('F16', [2], 0, 4)},"none":${entry('F32', [0, 7], 4, 4)}}`;
    const data = [...u16(0x3c00, 0x4000), ...u16(0x3f80), ...f32(5)];
    const out = readSafetensors({ bytes: file(header, data) });
    expect([...out.tensors.keys()]).toEqual(['first', 'none', 'early', 'late']);
    expect([...out.tensors.get('first')!.data]).toEqual([1, 2]);
    expect([...out.tensors.get('early')!.data]).toEqual([1]);
    expect([...out.tensors.get('late')!.data]).toEqual([5]);
    expect(out.tensors.get('none')!.shape).toEqual([0, 7]);
    expect(readSafetensors({ bytes: file('{}') }).tensors.size).toBe(0);
    expect(readSafetensors({ bytes: file('{}', [], { pad: false }) }).tensors.size).toBe(0);
  });

  it('reads from a subarray with an odd byte offset', () => {
    const inner = writeSafetensors({ tensors: [{ name: 'a', shape: [2], data: Float32Array.from([1.5, -2]) }] });
    const outer = new Uint8Array(inner.length + 3);
    outer.set(inner, 3);
    expect([...readSafetensors({ bytes: outer.subarray(3) }).tensors.get('a')!.data]).toEqual([1.5, -2]);
  });
});

describe('readSafetensors refuses malformed files', () => {
  const ok = `{"a":${entry('F32', [2], 0, 8)}}`;

  it('truncated before the header length', () => expectFormatError(new Uint8Array(7), /truncated/));
  it('header length past the end of the file', () => expectFormatError(file(ok, f32(1, 2), { length: 1000n }), /exceeds/));
  it('huge header length (u64 high word set)', () => expectFormatError(file(ok, f32(1, 2), { length: 1n << 63n }), /2\^32/));
  it('header length 2^32 - 1', () => expectFormatError(file(ok, f32(1, 2), { length: 0xffffffffn }), /exceeds/));
  it('header over maxHeaderBytes is OversizeError', () => {
    expect(() => readSafetensors({ bytes: file(ok, f32(1, 2)), maxHeaderBytes: 16 })).toThrow(OversizeError);
  });
  it('truncated data', () => expectFormatError(file(ok, f32(1)), /truncated/));
  it('trailing bytes', () => expectFormatError(file(ok, [...f32(1, 2), 0]), /trailing/));
  it('overlapping offsets', () =>
    expectFormatError(file(`{"a":${entry('F32', [2], 0, 8)},"b":${entry('F32', [1], 4, 8)}}`, f32(1, 2)), /overlaps/));
  it('hole between tensors', () =>
    expectFormatError(file(`{"a":${entry('F32', [1], 0, 4)},"b":${entry('F32', [1], 8, 12)}}`, f32(1, 2, 3)), /hole/));
  it('hole at the start', () => expectFormatError(file(`{"a":${entry('F32', [1], 4, 8)}}`, f32(1, 2)), /hole/));
  it('duplicate tensor name', () =>
    expectFormatError(file(`{"a":${entry('F32', [1], 0, 4)},"a":${entry('F32', [1], 4, 8)}}`, f32(1, 2)), /duplicate key "a"/));
  it('duplicate tensor name written with an escape', () =>
    expectFormatError(file(`{"a":${entry('F32', [1], 0, 4)},"\\u0061":${entry('F32', [1], 0, 4)}}`, f32(1)), /duplicate key "a"/));
  it('duplicate field inside an entry', () =>
    expectFormatError(file(`{"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}`, f32(1)), /duplicate key "dtype"/));
  it('non-object JSON', () => expectFormatError(file('[1,2,3]'), /start with '\{'/));
  it('leading whitespace', () => expectFormatError(file(` ${ok}`, f32(1, 2)), /start with '\{'/));
  it('empty header', () => expectFormatError(file('', [], { pad: false }), /start with '\{'/));
  it('invalid JSON', () => expectFormatError(file('{"a":', f32(1, 2)), /not valid JSON/));
  it('trailing garbage after the JSON', () => expectFormatError(file(`${ok} x`, f32(1, 2)), /not valid JSON/));
  it('invalid UTF-8', () => {
    const bytes = file('{"a\u00e9":1}');
    bytes[11] = 0xff; // break the two-byte sequence of é
    expectFormatError(bytes, /UTF-8/);
  });
  it('size of offsets does not match the shape', () => expectFormatError(file(`{"a":${entry('F32', [3], 0, 8)}}`, f32(1, 2)), /needs 12/));
  it('size of offsets does not match the dtype', () => expectFormatError(file(`{"a":${entry('F16', [2], 0, 8)}}`, f32(1, 2)), /needs 4/));
  it('unsupported dtype names it', () => expectFormatError(file(`{"a":${entry('F64', [1], 0, 8)}}`, f32(1, 2)), /unsupported dtype F64/));
  it('I64 unsupported', () => expectFormatError(file(`{"a":${entry('I64', [1], 0, 8)}}`, f32(1, 2)), /unsupported dtype I64/));
  it('unknown dtype', () => expectFormatError(file(`{"a":${entry('F33', [1], 0, 4)}}`, f32(1)), /unknown dtype "F33"/));
  it('negative shape', () => expectFormatError(file(`{"a":${entry('F32', [-1], 0, 4)}}`, f32(1)), /shape/));
  it('fractional shape', () => expectFormatError(file(`{"a":${entry('F32', [1.5], 0, 4)}}`, f32(1)), /shape/));
  it('shape overflow', () =>
    expectFormatError(file(`{"a":${entry('F32', [2 ** 30, 2 ** 30, 2 ** 30], 0, 4)}}`, f32(1)), /overflows/));
  it('data_offsets reversed', () => expectFormatError(file(`{"a":${entry('F32', [0], 4, 0)}}`, f32(1)), /data_offsets/));
  it('data_offsets wrong arity', () =>
    expectFormatError(file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, f32(1)), /data_offsets/));
  it('missing field', () => expectFormatError(file(`{"a":{"dtype":"F32","shape":[1]}}`, f32(1)), /data_offsets/));
  it('unknown field', () =>
    expectFormatError(file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, f32(1)), /unknown field "x"/));
  it('entry not an object', () => expectFormatError(file(`{"a":[1]}`), /not an object/));
  it('__metadata__ with a non-string value', () => expectFormatError(file(`{"__metadata__":{"n":1}}`), /__metadata__/));
  it('__metadata__ not an object', () => expectFormatError(file(`{"__metadata__":"pt"}`), /__metadata__/));
});

describe('helpers', () => {
  it('findDuplicateJsonKey sees keys at every depth, ignores strings and arrays', () => {
    expect(findDuplicateJsonKey('{"a":1,"b":{"a":2},"c":["a","a"]}')).toBeUndefined();
    expect(findDuplicateJsonKey('{"a":{"x":1,"y":[{"k":1},{"k":2}],"x":3}}')).toBe('x');
    expect(findDuplicateJsonKey('{"s":"a\\"b","s":1}')).toBe('s');
    expect(findDuplicateJsonKey('{"__proto__":1,"__proto__":2}')).toBe('__proto__');
  });

  it('compareTensorNames sorts by UTF-8 bytes like Rust', () => {
    const names = ['b', 'a\uffff', 'a\u{1f600}', 'a', 'B'];
    expect([...names].sort(compareTensorNames)).toEqual(['B', 'a', 'a\uffff', 'a\u{1f600}', 'b']);
  });

  it('keeps a __proto__ metadata key as data', () => {
    const out = readSafetensors({ bytes: file('{"__metadata__":{"__proto__":"x"}}') });
    expect(Object.getPrototypeOf(out.metadata)).toBe(Object.prototype);
    expect(Object.hasOwn(out.metadata, '__proto__')).toBe(true);
  });
});
