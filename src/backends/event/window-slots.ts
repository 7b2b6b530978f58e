/**
 * The register window's bookkeeping: how many batches are in flight (at most `size`), the keys
 * (models) they hold, and the completion of the last one sent (the next batch applies its result
 * after it). A batch's slot is freed when the batch and every batch sent before it are done, so
 * slots free in send order.
 */
export class WindowSlots {
  private count = 0;
  private readonly keys = new Map<unknown, number>();
  private last: Promise<void> = Promise.resolve();
  private waiters: (() => void)[] = [];

  constructor(
    readonly size: number,
    private readonly onFree: () => void,
  ) {
    if (!Number.isSafeInteger(size) || size < 1)
      throw new Error(`register window must be a positive integer, got ${size}`);
  }

  get inFlight(): number {
    return this.count;
  }

  get full(): boolean {
    return this.count >= this.size;
  }

  /** Resolves once the last batch sent (and so every batch before it) is done; never rejects. */
  get tail(): Promise<void> {
    return this.last;
  }

  /** Whether any of `keys` is held by a batch in flight. */
  overlaps(keys: readonly unknown[]): boolean {
    if (this.count === 0) return false;
    return keys.some((k) => this.keys.has(k));
  }

  /** A batch holding `keys` is in flight until `done` (which resolves after the previous tail). */
  add(keys: readonly unknown[], done: Promise<void>): void {
    this.count++;
    for (const k of keys) this.keys.set(k, (this.keys.get(k) ?? 0) + 1);
    this.last = done;
    void done.then(() => this.free(keys));
  }

  /** Resolves once a slot is free. */
  whenFree(): Promise<void> {
    if (!this.full) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Resolves once nothing is in flight. */
  async whenEmpty(): Promise<void> {
    while (this.count > 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private free(keys: readonly unknown[]): void {
    this.count--;
    for (const k of keys) {
      const n = (this.keys.get(k) ?? 1) - 1;
      if (n === 0) this.keys.delete(k);
      else this.keys.set(k, n);
    }
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
    this.onFree();
  }
}
