/**
 * The write pipeline: an RxJS stream that turns concurrent writes into few register requests.
 *
 * Natural batching: the first write goes out at once; writes that arrive while requests are in
 * flight wait and then leave together, bounded by a count and a byte budget (a single write larger
 * than the budget goes alone). Up to `window` requests are in flight at a time (the register
 * window, `window-slots.ts`): batches are sent in the order their writes were pushed, and each
 * batch's result is applied only after the batch sent before it is done, so writes reach Hat, and
 * are settled, in push order. Two batches in flight never share a key (a model): a batch that
 * would waits until the window is empty. The pipeline knows nothing of models beyond `keyOf`:
 * `process` sends a batch and settles its items.
 */
import { concatMap, from, Subject, type Subscription } from 'rxjs';
import { WindowSlots } from './window-slots.js';

export interface PipelineOptions<T> {
  maxBatchItems: number;
  maxBatchBytes: number;
  sizeOf(item: T): number;
  /** Batches in flight at most (default 1: one at a time). */
  window?: number;
  /** Items with equal keys (a model's writes) are never in two batches in flight at once. */
  keyOf?(item: T): unknown;
  /**
   * Sends `batch` (synchronously, before its first await: batches leave in push order) and settles
   * its items; it must apply what it learns only once `previous` — the batch sent before it is
   * done (never rejects) — has resolved.
   */
  process(batch: T[], previous: Promise<void>): Promise<void>;
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
  private readonly slots: WindowSlots;

  constructor(private readonly options: PipelineOptions<T>) {
    this.slots = new WindowSlots(options.window ?? 1, () => this.maybeIdle());
    this.subscription = this.kick$.pipe(concatMap(() => from(this.run()))).subscribe();
  }

  /** Batches in flight. */
  get inFlight(): number {
    return this.slots.inFlight;
  }

  /** Writes waiting to be sent (not counting the batches in flight). */
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
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  close(): void {
    this.closed = true;
    this.kick$.complete();
    this.subscription.unsubscribe();
    this.busy = false;
    this.maybeIdle();
  }

  /** Sends batch after batch, up to `window` in flight, until the queue is empty; never rejects. */
  private async run(): Promise<void> {
    for (;;) {
      if (this.depth === 0 || this.closed) {
        // Decided in the same synchronous step as the emptiness check: a push that comes after
        // it sees busy=false and starts a new drain.
        this.busy = false;
        this.maybeIdle();
        return;
      }
      if (this.slots.full) {
        await this.slots.whenFree();
        continue;
      }
      if (this.slots.inFlight > 0) {
        // Writes arriving in the same burst (one socket read's messages) join this batch.
        await new Promise<void>((r) => setImmediate(r));
        if (this.depth === 0 || this.closed) continue;
      }
      const batch = this.takeBatch();
      const keyOf = this.options.keyOf ?? ((item: T) => item);
      const keys = batch.map(keyOf);
      // A batch sharing a model with one in flight would be validated against writes whose fate is
      // not known yet: it waits until the window is empty.
      if (this.slots.overlaps(keys)) await this.slots.whenEmpty();
      this.start(batch, keys);
    }
  }

  /** Sends `batch` now; its slot is freed once it and every batch before it are done. */
  private start(batch: T[], keys: unknown[]): void {
    const previous = this.slots.tail;
    let processing: Promise<void>;
    try {
      processing = this.options.process(batch, previous);
    } catch (err) {
      processing = Promise.reject(err);
    }
    const done = processing.catch((err: unknown) => this.options.onProcessError(err, batch));
    this.slots.add(
      keys,
      Promise.all([previous, done]).then(() => undefined),
    );
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

  private isIdle(): boolean {
    return !this.busy && this.depth === 0 && (this.closed || this.slots.inFlight === 0);
  }

  private maybeIdle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
