// Base64: Node's Buffer path and the portable (browser) path give the same bytes for every length, the
// same text, plain Uint8Arrays owning exactly their bytes, and refuse the same malformed inputs
// (bad length, foreign characters, whitespace, misplaced or extra padding, non-zero unused bits).
import { describe, expect, it } from 'vitest';
import { fromBase64, fromBase64Portable, toBase64, toBase64Portable } from './bytes.ts';
import { randomBytes } from './random.ts';

describe('base64', () => {
  it('round-trips every length from 0 to 300 and a 3 MB payload, both paths alike', () => {
    const inputs = [...Array.from({ length: 301 }, (_, n) => randomBytes(n)), randomBytes(3 * 1024 * 1024 + 1)];
    for (const bytes of inputs) {
      const text = toBase64(bytes);
      expect(toBase64Portable(bytes)).toBe(text);
      for (const decode of [fromBase64, fromBase64Portable]) {
        const back = decode(text);
        expect(Object.getPrototypeOf(back)).toBe(Uint8Array.prototype);
        expect(back.byteOffset).toBe(0);
        expect(back.buffer.byteLength).toBe(bytes.length);
        expect(Buffer.compare(Buffer.from(back), Buffer.from(bytes))).toBe(0);
      }
    }
    // a subarray view encodes only its own bytes
    const whole = randomBytes(100);
    expect(toBase64(whole.subarray(10, 20))).toBe(toBase64Portable(whole.subarray(10, 20)));
  });

  it('refuses malformed text on both paths with a TypeError naming the field', () => {
    const bad = ['A', 'AB', 'ABC', 'AB=C', 'A===', '====', 'AB$=', ' AAA', 'AA\nA', 'QR==', 'QUJ=', 'QUJD\n', 'QUJD====', 'Q-_D', 'QU=D'];
    for (const text of bad) {
      expect(() => fromBase64(text, 'field'), text).toThrow(/"field" expected base64 string/);
      expect(() => fromBase64Portable(text, 'field'), text).toThrow(/"field" expected base64 string/);
    }
    expect(() => fromBase64(42 as unknown as string)).toThrow(TypeError);
    expect(fromBase64('QQ==')).toEqual(new Uint8Array([65]));
    expect(fromBase64('QUI=')).toEqual(new Uint8Array([65, 66]));
    expect(fromBase64('')).toEqual(new Uint8Array(0));
  });
});
