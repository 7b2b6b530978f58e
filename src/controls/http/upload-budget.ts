/**
 * The bound on upload bodies held at once (`max_upload_bytes_in_flight`). An upload reserves its
 * declared length before its body is read and gives it back once its write is done (the body's
 * memory is in use until then); one whose reservation does not fit waits — its body unread, so TCP
 * pushes back on the client — in arrival order, so a large upload is not starved by small ones.
 * An upload larger than the whole budget proceeds alone, once nothing else is reserved. A chunked
 * upload (length unknown until its end, up to the upload limit) reserves the whole budget: it runs
 * alone too. Waiting ends with a timeout (the caller answers 503) or when the client goes away.
 */
import type { Gauge } from '../../common/metrics.js';

export class BudgetTimeoutError extends Error {
  constructor(readonly waitedMs: number) {
    super(`no room for this upload within ${waitedMs} ms: other uploads hold the budget`);
    this.name = 'BudgetTimeoutError';
  }
}

interface Waiter {
  bytes: number;
  grant(): void;
}

/** Gives a reservation back (idempotent). */
export type Release = () => void;

export class UploadBudget {
  private reserved = 0;
  private holders = 0;
  private peakReserved = 0;
  private readonly waiters: Waiter[] = [];

  constructor(
    /** Bytes of upload bodies held at once (≥ 1). */
    readonly limit: number,
    gauges?: { inFlight: Gauge; waiting: Gauge },
  ) {
    if (!Number.isSafeInteger(limit) || limit < 1)
      throw new Error(`upload budget must be a positive integer, got ${limit}`);
    gauges?.inFlight.collect(() => this.reserved);
    gauges?.waiting.collect(() => this.waiters.length);
  }

  /** Bytes reserved now. */
  get inFlight(): number {
    return this.reserved;
  }

  /** The most bytes ever reserved at once by uploads that each fit the budget (see {@link peak}). */
  get peak(): number {
    return this.peakReserved;
  }

  /** Uploads waiting for room. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Reserves `bytes` (null: the whole budget) when there is room now and nobody waits; else null. */
  tryReserve(bytes: number | null): Release | null {
    const want = bytes === null ? this.limit : bytes;
    return this.waiters.length === 0 && this.fits(want) ? this.take(want) : null;
  }

  /**
   * Reserves `bytes` (null: unknown length, the whole budget), waiting for room up to
   * `timeoutMs`. Rejects with {@link BudgetTimeoutError}, or with `signal`'s reason when aborted.
   */
  reserve(bytes: number | null, timeoutMs: number, signal?: AbortSignal): Promise<Release> {
    const now = this.tryReserve(bytes);
    if (now !== null) return Promise.resolve(now);
    const want = bytes === null ? this.limit : bytes;
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = {
        bytes: want,
        grant: () => {
          cleanup();
          resolve(this.take(want));
        },
      };
      const drop = (err: Error) => {
        cleanup();
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(err);
        this.wake(); // the head may have been the one blocking others
      };
      const timer = setTimeout(() => drop(new BudgetTimeoutError(timeoutMs)), timeoutMs);
      const onAbort = () => drop(new Error('the client went away while its upload waited'));
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener('abort', onAbort);
      this.waiters.push(waiter);
    });
  }

  /** Room for `bytes` now: within the budget, or alone when larger than all of it. */
  private fits(bytes: number): boolean {
    return this.holders === 0 || this.reserved + bytes <= this.limit;
  }

  private take(bytes: number): Release {
    this.reserved += bytes;
    this.holders++;
    if (bytes <= this.limit && this.reserved > this.peakReserved) this.peakReserved = this.reserved;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.reserved -= bytes;
      this.holders--;
      this.wake();
    };
  }

  /** Grants waiters in arrival order while the head fits. */
  private wake(): void {
    while (this.waiters.length > 0) {
      const head = this.waiters[0] as Waiter;
      if (!this.fits(head.bytes)) return;
      this.waiters.shift();
      head.grant();
    }
  }
}
