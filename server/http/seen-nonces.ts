// An in-memory set of the robot nonces this instance accepted, in front of the nonce table: a replay
// of a request this instance already served is refused before any database work (the table stays the
// authority across restarts and instances). Bounded: entries expire with the clock-skew window, and
// past `maxEntries` the oldest are dropped (the table still catches those).
export class SeenNonces {
  readonly #entries = new Map<string, number>();
  readonly #maxEntries: number;

  constructor(options: { maxEntries?: number } = {}) {
    this.#maxEntries = options.maxEntries ?? 200_000;
  }

  has(options: { robotId: string; nonce: string; now: number }): boolean {
    const key = `${options.robotId} ${options.nonce}`;
    const expiresAt = this.#entries.get(key);
    if (expiresAt === undefined) return false;
    if (expiresAt < options.now) {
      this.#entries.delete(key);
      return false;
    }
    return true;
  }

  add(options: { robotId: string; nonce: string; expiresAt: number }): void {
    this.#entries.set(`${options.robotId} ${options.nonce}`, options.expiresAt);
    // Insertion order is roughly expiry order (timestamps are within the skew window), so the
    // first entries are the oldest.
    while (this.#entries.size > this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
  }
}
