/**
 * Room in a backend's write queue: backpressure towards the callers instead of an unbounded queue
 * (the event backend's pipeline towards Hat, the sqlite backend's group-commit queue).
 *
 * A write takes room (one item and its model bytes) before its event is built and gives it back
 * once its register request has been answered or it failed. When the pipeline holds
 * `maxItems` writes or `maxBytes` model bytes, callers wait, first come first served, so a slow
 * or stalled Hat slows the writers down instead of growing the daemon's memory; a write larger
 * than `maxBytes` goes when the pipeline is empty. Writes that are already accepted (the event
 * backend's snapshot queue, sent on reconnect) take room without waiting and may go over the
 * bound: new writers then wait until the backlog is sent.
 */

/** Room taken by one write; `release` is idempotent. */
export interface Ticket {
  readonly bytes: number;
  release(): void;
}

interface Waiter {
  bytes: number;
  grant(ticket: Ticket): void;
  fail(err: Error): void;
}

export class Admission {
  private items = 0;
  private bytesHeld = 0;
  private waiters: Waiter[] = [];
  private head = 0;
  private emptyWaiters: (() => void)[] = [];

  constructor(
    readonly maxItems: number,
    readonly maxBytes: number,
  ) {}

  /** Writes holding room now (waiting in the pipeline or in flight). */
  get held(): number {
    return this.items;
  }

  /** Model bytes of the writes holding room. */
  get heldBytes(): number {
    return this.bytesHeld;
  }

  /** Callers waiting for room. */
  get waiting(): number {
    return this.waiters.length - this.head;
  }

  /** Room for a write of `bytes` model bytes: at once when it fits and nobody waits, else later. */
  acquire(bytes: number): Promise<Ticket> {
    if (this.waiting === 0 && this.fits(bytes)) return Promise.resolve(this.take(bytes));
    return new Promise<Ticket>((grant, fail) => this.waiters.push({ bytes, grant, fail }));
  }

  /** Room at once when it fits and nobody waits; null otherwise (then {@link acquire}). */
  tryTake(bytes: number): Ticket | null {
    return this.waiting === 0 && this.fits(bytes) ? this.take(bytes) : null;
  }

  /** Room for a write already in memory: taken at once, even over the bound. */
  force(bytes: number): Ticket {
    return this.take(bytes);
  }

  /** Resolves once no write holds room and nobody waits for it. */
  whenEmpty(): Promise<void> {
    if (this.items === 0 && this.waiting === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptyWaiters.push(resolve));
  }

  /** Fails every waiting caller (the backend is closing). */
  failWaiting(err: Error): void {
    const waiters = this.waiters.slice(this.head);
    this.waiters = [];
    this.head = 0;
    for (const w of waiters) w.fail(err);
    this.maybeEmpty();
  }

  private fits(bytes: number): boolean {
    if (this.items === 0) return true;
    return this.items < this.maxItems && this.bytesHeld + bytes <= this.maxBytes;
  }

  private take(bytes: number): Ticket {
    this.items++;
    this.bytesHeld += bytes;
    let released = false;
    return {
      bytes,
      release: () => {
        if (released) return;
        released = true;
        this.items--;
        this.bytesHeld -= bytes;
        this.grantWaiting();
        this.maybeEmpty();
      },
    };
  }

  private maybeEmpty(): void {
    if (this.items !== 0 || this.waiting !== 0 || this.emptyWaiters.length === 0) return;
    const waiters = this.emptyWaiters;
    this.emptyWaiters = [];
    for (const w of waiters) w();
  }

  private grantWaiting(): void {
    while (this.head < this.waiters.length) {
      const w = this.waiters[this.head] as Waiter;
      if (!this.fits(w.bytes)) break;
      this.head++;
      w.grant(this.take(w.bytes));
    }
    if (this.head === this.waiters.length) {
      this.waiters = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.waiters.length) {
      this.waiters = this.waiters.slice(this.head);
      this.head = 0;
    }
  }
}
