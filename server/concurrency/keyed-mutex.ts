// An in-process mutex per key: contributions to one round run one at a time, so two concurrent pushes
// cannot both fold into the same previous aggregate and lose an add. (One server process per database;
// the conditional round update in server/db/rounds.ts refuses a lost update even if that is violated.)
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(options: { key: string; task: () => Promise<T> }): Promise<T> {
    const previous = this.#tails.get(options.key) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => current);
    this.#tails.set(options.key, tail);
    await previous;
    try {
      return await options.task();
    } finally {
      release();
      if (this.#tails.get(options.key) === tail) this.#tails.delete(options.key);
    }
  }
}
