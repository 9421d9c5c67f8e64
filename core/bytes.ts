// Byte helpers used across core/: encodings, comparison, concatenation. No I/O.
import { bytesToHex, hexToBytes, utf8ToBytes, concatBytes } from '@noble/hashes/utils.js';
import { describe } from './errors.ts';

export { bytesToHex, hexToBytes, utf8ToBytes, concatBytes };

const decoder = new TextDecoder('utf-8', { fatal: true });
export function bytesToUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

// Base64 through Node's Buffer where the runtime has one (a release payload of several MB took ~0.3 s
// each way through btoa/atob and a string of char codes), the portable path elsewhere (browsers); both
// accept exactly canonical standard base64: length a multiple of 4, only A-Z a-z 0-9 + /, at most two
// '=', and zero unused bits in the last character before the padding. core/bytes.test.ts checks both
// paths agree on valid and invalid inputs.
interface NodeBuffer {
  from(data: ArrayBuffer, byteOffset: number, length: number): { toString(encoding: 'base64'): string };
  from(text: string, encoding: 'base64'): Uint8Array & { toString(encoding: 'base64'): string };
}
const NodeBufferImpl = (globalThis as { Buffer?: NodeBuffer }).Buffer;

export function toBase64(bytes: Uint8Array): string {
  if (NodeBufferImpl) return NodeBufferImpl.from(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  return toBase64Portable(bytes);
}

export function fromBase64(text: string, name = 'base64'): Uint8Array {
  if (!NodeBufferImpl) return fromBase64Portable(text, name);
  if (typeof text !== 'string' || text.length % 4 !== 0) throw new TypeError(`"${name}" expected base64 string, got ${describe(text)}`);
  const decoded = NodeBufferImpl.from(text, 'base64');
  // Buffer skips characters it does not know and ignores unused bits: re-encoding gives the text back
  // exactly when it was canonical.
  if (decoded.toString('base64') !== text) throw new TypeError(`"${name}" expected base64 string, got ${describe(text)}`);
  // A plain Uint8Array owning exactly its bytes, as the portable path returns (small Buffers share a pool).
  if (decoded.byteOffset === 0 && decoded.buffer.byteLength === decoded.byteLength) return new Uint8Array(decoded.buffer, 0, decoded.byteLength);
  const copy = new Uint8Array(decoded.byteLength);
  copy.set(decoded);
  return copy;
}

/** btoa over a string of char codes (browsers; exported for the tests). */
export function toBase64Portable(bytes: Uint8Array): string {
  let s = '';
  const CH = 0x8000;
  for (let i = 0; i < bytes.length; i += CH) s += String.fromCharCode(...bytes.subarray(i, i + CH));
  return btoa(s);
}

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;
const B64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** atob with the canonical-form checks atob leaves out (browsers; exported for the tests). */
export function fromBase64Portable(text: string, name = 'base64'): Uint8Array {
  if (typeof text !== 'string' || text.length % 4 !== 0 || !B64.test(text)) throw new TypeError(`"${name}" expected base64 string, got ${describe(text)}`);
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  if (pad > 0) {
    // the last character before '=' carries 4 (one '=') or 2 (two) bits that must be zero
    const last = B64_ALPHABET.indexOf(text[text.length - pad - 1]!);
    if ((last & (pad === 2 ? 0b1111 : 0b11)) !== 0) throw new TypeError(`"${name}" expected base64 string, got ${describe(text)}`);
  }
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
