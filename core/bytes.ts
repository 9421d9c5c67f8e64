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

export function toBase64(bytes: Uint8Array): string {
  let s = '';
  const CH = 0x8000;
  for (let i = 0; i < bytes.length; i += CH) s += String.fromCharCode(...bytes.subarray(i, i + CH));
  return btoa(s);
}

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;
export function fromBase64(text: string, name = 'base64'): Uint8Array {
  if (typeof text !== 'string' || text.length % 4 !== 0 || !B64.test(text))
    throw new TypeError(`"${name}" expected base64 string, got ${describe(text)}`);
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
