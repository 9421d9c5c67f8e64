// A minimal Protocol Buffers encoder (wire format: protobuf.dev/programming-guides/encoding), enough to
// write ONNX models (core/policy/onnx.ts). Why hand-written: there is no maintained pure-JS ONNX graph
// builder, and a general protobuf library (protobufjs) would be a new runtime dependency for ~100 lines
// of encoding. Only what ONNX needs: varints (int32/int64/enum), length-delimited fields (strings,
// bytes, nested messages, packed repeated int64) and fixed32 floats. Fields are written in the order
// they are added, so the output is deterministic.
import { utf8ToBytes } from '../bytes.ts';

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private length = 0;

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  private rawVarint(value: bigint): void {
    // int64 values are two's complement: a negative value is written as its 64-bit unsigned form (10 bytes).
    let v = BigInt.asUintN(64, value);
    const out: number[] = [];
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      out.push(byte);
    } while (v !== 0n);
    this.push(Uint8Array.from(out));
  }

  private tag(field: number, wire: number): void {
    if (!Number.isSafeInteger(field) || field < 1 || field > 2 ** 29 - 1) throw new RangeError(`"field" expected protobuf field number, got ${field}`);
    this.rawVarint(BigInt(field * 8 + wire));
  }

  /** int32, int64, uint64, bool and enum fields. */
  varint(field: number, value: number | bigint): this {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new RangeError(`"value" expected safe integer, got ${value}`);
    this.tag(field, WIRE_VARINT);
    this.rawVarint(BigInt(value));
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    this.rawVarint(BigInt(value.length));
    this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, utf8ToBytes(value));
  }

  message(field: number, build: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  /** A `float` field (fixed32, IEEE-754 little-endian). */
  float(field: number, value: number): this {
    this.tag(field, WIRE_FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  /** A packed `repeated int64` field. */
  packedVarints(field: number, values: ReadonlyArray<number | bigint>): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.rawVarint(BigInt(v));
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let off = 0;
    for (const c of this.chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}
