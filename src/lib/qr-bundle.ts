// Enrollment bundles as QR codes. A bundle pins the officer's ML-DSA-65 public key (1,952 bytes, 2,604
// base64 characters), which with the rest is more than one QR code holds comfortably (version 40 in
// byte mode carries at most 2,953 bytes at the lowest error correction), so the compact JSON is split
// into numbered parts a scanner joins: "TGB1:<part>/<parts>:<chunk>". Parts use error correction M
// and stay small enough to scan from a screen.
export const QR_PART_PREFIX = 'TGB1';

export function bundleQrParts(options: { bundleText: string; maxChunk?: number }): string[] {
  const compact = JSON.stringify(JSON.parse(options.bundleText));
  const max = options.maxChunk ?? 800;
  const count = Math.max(1, Math.ceil(compact.length / max));
  const size = Math.ceil(compact.length / count);
  const parts: string[] = [];
  for (let i = 0; i < count; i++) parts.push(`${QR_PART_PREFIX}:${i + 1}/${count}:${compact.slice(i * size, (i + 1) * size)}`);
  return parts;
}

/** Joins scanned parts (any order) back into the bundle's JSON text; throws if parts are missing. */
export function joinBundleQrParts(options: { parts: string[] }): string {
  const found = new Map<number, string>();
  let total = 0;
  for (const p of options.parts) {
    const m = /^TGB1:(\d+)\/(\d+):([\s\S]*)$/.exec(p);
    if (!m) throw new TypeError(`"parts" expected TGB1 QR parts, got ${p.slice(0, 12)}…`);
    total = Number(m[2]);
    found.set(Number(m[1]), m[3]!);
  }
  if (total === 0 || found.size !== total) throw new RangeError(`"parts" expected ${total} parts, got ${found.size}`);
  return [...found.keys()].sort((a, b) => a - b).map((k) => found.get(k)!).join('');
}
