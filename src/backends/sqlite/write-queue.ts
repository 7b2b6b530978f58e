/**
 * Group commit: writes are queued and executed together, one batch per event-loop turn, bounded by
 * a count and a byte size. `execute` runs one batch synchronously (one SQLite transaction) and
 * reports each write's own outcome, so one failed write does not fail its neighbours. A promise
 * settles only after `execute` returned, i.e. after COMMIT.
 *
 * The queue itself is bounded (`maxQueuedWrites`, `maxQueuedBytes`, {@link Admission}): a write
 * joins it only once there is room, and writers over the bound wait first come first served
 * (backpressure, not refusal) until batches have been committed. A single write larger than
 * `maxQueuedBytes` joins when the queue is empty. Order is kept: writes join in the order pushed.
 */
import { Admission, type Ticket } from '../../backend/admission.js';

export type Outcome<R> = { ok: true; value: R } | { ok: false; error: Error };

export interface WriteQueueOptions<Op, R> {
  /** Most writes per batch (≥ 1). */
  maxWrites: number;
  /** Most bytes per batch; a single larger write still forms a batch of its own. */
  maxBytes: number;
  /** Most writes queued (waiting for or in their batch); further writers wait (≥ 1). */
  maxQueuedWrites: number;
  /** Most bytes queued; further writers wait (a larger single write joins an empty queue). */
  maxQueuedBytes: number;
  sizeOf(op: Op): number;
  /** Executes a batch; must return one outcome per op, in order. */
  execute(ops: Op[]): Outcome<R>[];
}

interface Pending<Op, R> {
  op: Op;
  ticket: Ticket;
  resolve(value: R): void;
  reject(error: Error): void;
}

export class WriteQueue<Op, R> {
  private queue: Pending<Op, R>[] = [];
  private scheduled = false;
  private drainWaiters: (() => void)[] = [];
  private readonly room: Admission;
  /** Writers that waited for room: granted or not, not yet in the queue. */
  private joining = 0;

  constructor(private readonly options: WriteQueueOptions<Op, R>) {
    this.room = new Admission(options.maxQueuedWrites, options.maxQueuedBytes);
  }

  /** Writes waiting for their batch. */
  get length(): number {
    return this.queue.length;
  }

  /** Bytes of the queued writes (at most `maxQueuedBytes`, or one larger write). */
  get queuedBytes(): number {
    return this.room.heldBytes;
  }

  /** Writers waiting for room in the queue (backpressure). */
  get waiting(): number {
    return this.room.waiting;
  }

  push(op: Op): Promise<R> {
    const size = this.options.sizeOf(op);
    // Synchronous when there is room (the usual case): no extra turn for the writer.
    const room = this.room.tryTake(size);
    if (room !== null) return this.enqueue(op, room);
    this.joining++;
    return this.room.acquire(size).then((ticket) => {
      this.joining--;
      return this.enqueue(op, ticket);
    });
  }

  /** Resolves once every queued write (and every writer waiting for room) has been executed. */
  drain(): Promise<void> {
    if (this.queue.length === 0 && this.joining === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private enqueue(op: Op, ticket: Ticket): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ op, ticket, resolve, reject });
      this.schedule();
    });
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
      // Room first: writers waiting for it are granted it and join the queue in a microtask.
      for (const p of batch) p.ticket.release();
      for (const [i, p] of batch.entries()) {
        const o = outcomes[i] as Outcome<R>;
        if (o.ok) p.resolve(o.value);
        else p.reject(o.error);
      }
    }
    if (this.queue.length > 0) {
      this.schedule();
    } else if (this.joining === 0) {
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
