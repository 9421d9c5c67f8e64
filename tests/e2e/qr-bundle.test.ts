// The enrollment bundle's QR parts (src/lib/qr-bundle.ts) join back into the exact bundle, in any order.
import { describe, expect, it } from 'vitest';
import { bundleQrParts, joinBundleQrParts } from '../../src/lib/qr-bundle.ts';

describe('enrollment bundle QR parts', () => {
  it('splits a real-size bundle into scannable parts and joins them back', () => {
    const bundle = JSON.stringify({ format: 'tensorguard-enrollment-bundle/v1', officerPublicKeys: ['A'.repeat(2604)], attestKey: 'B'.repeat(44), token: 'enr_x.y' }, null, 2);
    const parts = bundleQrParts({ bundleText: bundle });
    expect(parts.length).toBeGreaterThan(1);
    for (const p of parts) expect(p.length).toBeLessThanOrEqual(820);
    const joined = joinBundleQrParts({ parts: [...parts].reverse() });
    expect(JSON.parse(joined)).toEqual(JSON.parse(bundle));
    expect(() => joinBundleQrParts({ parts: parts.slice(1) })).toThrow(RangeError);
    expect(() => joinBundleQrParts({ parts: ['hello'] })).toThrow(TypeError);
  });
});
