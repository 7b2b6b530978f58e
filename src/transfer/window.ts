/**
 * Bounded concurrency for `import` and `migrate`: up to `maxItems` placements (and `maxBytes` of
 * model bytes) in flight at once, so the target's pipeline batches them as it does concurrent
 * client writes, while memory stays bounded whatever the number of models. A single model larger
 * than `maxBytes` runs alone. The first failure stops new work; {@link drain} rethrows it.
 */
export class Window {
  private items = 0;
  private bytes = 0;
  private failure: { err: unknown } | null = null;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly maxItems: number,
    private readonly maxBytes: number,
  ) {}

  /** Waits for room, then starts `task` (not awaited); throws once a task has failed. */
  async start(size: number, task: () => Promise<void>): Promise<void> {
    while (
      this.failure === null &&
      this.items > 0 &&
      (this.items >= this.maxItems || this.bytes + size > this.maxBytes)
    ) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (this.failure !== null) throw this.failure.err;
    this.items++;
    this.bytes += size;
    task()
      .catch((err: unknown) => {
        this.failure ??= { err };
      })
      .finally(() => {
        this.items--;
        this.bytes -= size;
        for (const wake of this.waiters.splice(0)) wake();
      });
  }

  /** Resolves once every started task settled; rejects with the first failure. */
  async drain(): Promise<void> {
    while (this.items > 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
    if (this.failure !== null) throw this.failure.err;
  }
}

/** Models in flight by default: enough for the event backend's batching, little memory. */
export const DEFAULT_WINDOW = { items: 64, bytes: 64 * 1024 * 1024 };
