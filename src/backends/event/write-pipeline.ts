/**
 * The write pipeline: an RxJS stream that turns concurrent writes into few register requests.
 *
 * Natural batching: the first write goes out at once; writes that arrive while a request is in
 * flight wait and then leave together, bounded by a count and a byte budget (a single write larger
 * than the budget goes alone). One request is in flight at a time, so writes reach Hat in the order
 * they were pushed (per-model order follows). The pipeline knows nothing of models: `process`
 * sends a batch and settles its items.
 */
import { concatMap, from, Subject, type Subscription } from 'rxjs';

export interface PipelineOptions<T> {
  maxBatchItems: number;
  maxBatchBytes: number;
  sizeOf(item: T): number;
  process(batch: T[]): Promise<void>;
  /** Called if `process` throws anyway (a bug): the batch's items are handed back to be failed. */
  onProcessError(err: unknown, batch: T[]): void;
}

/**
 * `push` adds a write to the queue and, when no drain is running, emits on `kick$`; `concatMap`
 * runs one drain at a time (a loop taking batch after batch until the queue is empty). A drain
 * marks itself done in the same step in which it finds the queue empty, so a write pushed just
 * after that starts the next drain (queued behind the finishing one): at most one kick ever waits,
 * however many writes arrive.
 */
export class WritePipeline<T> {
  /** Waiting writes from `head` on; the slots before it are cleared as batches are taken. */
  private queue: (T | undefined)[] = [];
  private head = 0;
  private busy = false;
  private closed = false;
  private readonly kick$ = new Subject<void>();
  private readonly subscription: Subscription;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: PipelineOptions<T>) {
    this.subscription = this.kick$.pipe(concatMap(() => from(this.run()))).subscribe();
  }

  /** Writes waiting to be sent (not counting the batch in flight). */
  get depth(): number {
    return this.queue.length - this.head;
  }

  push(item: T): void {
    if (this.closed) throw new Error('write pipeline is closed');
    this.queue.push(item);
    if (!this.busy) {
      this.busy = true;
      this.kick$.next();
    }
  }

  /** Removes and returns every waiting write (e.g. to fail them when the connection drops). */
  drain(): T[] {
    const waiting = this.queue.slice(this.head) as T[];
    this.queue = [];
    this.head = 0;
    this.maybeIdle();
    return waiting;
  }

  /** Resolves when nothing is waiting or in flight. */
  whenIdle(): Promise<void> {
    if (!this.busy && this.depth === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  close(): void {
    this.closed = true;
    this.kick$.complete();
    this.subscription.unsubscribe();
    this.busy = false;
    this.maybeIdle();
  }

  /** Sends batch after batch until the queue is empty; never rejects. */
  private async run(): Promise<void> {
    for (;;) {
      if (this.depth === 0 || this.closed) {
        // Decided in the same synchronous step as the emptiness check: a push that comes after
        // it sees busy=false and starts a new drain.
        this.busy = false;
        this.maybeIdle();
        return;
      }
      const batch = this.takeBatch();
      try {
        await this.options.process(batch);
      } catch (err) {
        this.options.onProcessError(err, batch);
      }
    }
  }

  private takeBatch(): T[] {
    const { maxBatchItems, maxBatchBytes, sizeOf } = this.options;
    const batch: T[] = [];
    let bytes = 0;
    while (this.head < this.queue.length && batch.length < maxBatchItems) {
      const item = this.queue[this.head] as T;
      const size = sizeOf(item);
      if (batch.length > 0 && bytes + size > maxBatchBytes) break;
      batch.push(item);
      bytes += size;
      // The batch holds it now: a taken write (its payload: up to the largest model) must not stay
      // reachable from the queue until the next compaction, which may be 1024 writes away.
      this.queue[this.head] = undefined;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return batch;
  }

  /** Writes the queue still references (waiting ones only, once taken slots are cleared). */
  get referenced(): number {
    let n = 0;
    for (const item of this.queue) if (item !== undefined) n++;
    return n;
  }

  private maybeIdle(): void {
    if (this.busy || this.depth > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
