// SHA-256 and domain-separated fingerprints: the native and the noble implementation give the same digests
// (one-shot and incremental, across block boundaries), FIPS 180-4 vectors hold, and domains separate.
import { describe, expect, it } from 'vitest';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { SHA256_IMPLEMENTATION, fingerprint, sha256 } from './fingerprint.ts';
import { bytesToHex, utf8ToBytes } from '../bytes.ts';

describe('sha256', () => {
  it('uses node:crypto on Node', () => {
    expect(SHA256_IMPLEMENTATION).toBe('node:crypto');
  });

  it('matches the FIPS 180-4 examples', () => {
    expect(bytesToHex(sha256(utf8ToBytes('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(bytesToHex(sha256(new Uint8Array(0)))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(bytesToHex(sha256(utf8ToBytes('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')))).toBe('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  });

  it('equals @noble/hashes one-shot and incrementally, and returns plain Uint8Arrays', () => {
    const data = new Uint8Array(200_003).map((_, i) => (i * 2654435761) >>> 24);
    for (const n of [0, 1, 55, 56, 63, 64, 65, 1000, 200_003]) {
      const slice = data.subarray(0, n);
      const native = sha256(slice);
      expect(native.constructor).toBe(Uint8Array);
      expect(bytesToHex(native)).toBe(bytesToHex(nobleSha256(slice)));
      const h = sha256.create();
      for (let at = 0; at < n; at += 37) h.update(slice.subarray(at, Math.min(n, at + 37)));
      expect(bytesToHex(h.digest())).toBe(bytesToHex(nobleSha256(slice)));
    }
  });
});

describe('fingerprint', () => {
  it('is SHA-256 over "tensorguard/" + domain + 0x00 + bytes, and the domain separates', () => {
    const bytes = utf8ToBytes('record');
    const expected = nobleSha256(new Uint8Array([...utf8ToBytes('tensorguard/update-package/v1'), 0, ...bytes]));
    expect(bytesToHex(fingerprint({ domain: 'update-package/v1', bytes }))).toBe(bytesToHex(expected));
    expect(bytesToHex(fingerprint({ domain: 'key-record/v1', bytes }))).not.toBe(bytesToHex(expected));
  });

  it('refuses a domain that is not a lowercase identifier', () => {
    expect(() => fingerprint({ domain: 'Bad Domain', bytes: new Uint8Array(1) })).toThrow(TypeError);
  });
});
