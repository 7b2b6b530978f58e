/**
 * Group commit: writes are queued and executed together, one batch per event-loop turn, bounded by
 * a count and a byte size. `execute` runs one batch synchronously (one SQLite transaction) and
 * reports each write's own outcome, so one failed write does not fail its neighbours. A promise
 * settles only after `execute` returned, i.e. after COMMIT.
 */

export type Outcome<R> = { ok: true; value: R } | { ok: false; error: Error };

export interface WriteQueueOptions<Op, R> {
  /** Most writes per batch (≥ 1). */
  maxWrites: number;
  /** Most bytes per batch; a single larger write still forms a batch of its own. */
  maxBytes: number;
  sizeOf(op: Op): number;
  /** Executes a batch; must return one outcome per op, in order. */
  execute(ops: Op[]): Outcome<R>[];
}

interface Pending<Op, R> {
  op: Op;
  resolve(value: R): void;
  reject(error: Error): void;
}

export class WriteQueue<Op, R> {
  private queue: Pending<Op, R>[] = [];
  private scheduled = false;
  private drainWaiters: (() => void)[] = [];

  constructor(private readonly options: WriteQueueOptions<Op, R>) {}

  /** Writes waiting for their batch. */
  get length(): number {
    return this.queue.length;
  }

  push(op: Op): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ op, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once every queued write has been executed. */
  drain(): Promise<void> {
    if (this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const batch = this.takeBatch();
    if (batch.length > 0) {
      let outcomes: Outcome<R>[];
      try {
        outcomes = this.options.execute(batch.map((p) => p.op));
        if (outcomes.length !== batch.length) {
          throw new Error(`batch returned ${outcomes.length} outcomes for ${batch.length} writes`);
        }
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        outcomes = batch.map(() => ({ ok: false, error }));
      }
      for (const [i, p] of batch.entries()) {
        const o = outcomes[i] as Outcome<R>;
        if (o.ok) p.resolve(o.value);
        else p.reject(o.error);
      }
    }
    if (this.queue.length > 0) {
      this.schedule();
    } else {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  private takeBatch(): Pending<Op, R>[] {
    const { maxWrites, maxBytes, sizeOf } = this.options;
    let n = 0;
    let bytes = 0;
    while (n < this.queue.length && n < maxWrites) {
      const size = sizeOf((this.queue[n] as Pending<Op, R>).op);
      if (n > 0 && bytes + size > maxBytes) break;
      bytes += size;
      n++;
    }
    return this.queue.splice(0, n);
  }
}
