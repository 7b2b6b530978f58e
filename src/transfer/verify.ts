/**
 * The check of `import` and `migrate`: each placed model's bytes in the target, by SHA-256 — done
 * in batches as the placements finish (not from a record of every model kept to the end), so the
 * memory it takes does not grow with the number of models. A batch is checked once every placement
 * in it has settled, with one paged look-up of its ids in the target (`metasOf`).
 */
import { metasOf } from '../backend/list-pages.js';
import type { Backend } from '../backend/types.js';
import type { TransferReport } from './report.js';

interface Batch {
  /** Target id → the SHA-256 placed there. */
  placed: Map<number, string>;
  /** Placements tracked, and those not settled yet. */
  tracked: number;
  open: number;
  /** No more placements join it. */
  closed: boolean;
  checked: boolean;
}

/** Records a placed model (its id in the target and the SHA-256 it must have there). */
export type RecordPlaced = (targetId: number, sha256: string) => void;

export class BatchVerifier {
  private current: Batch = newBatch();
  /** Closed batches not checked yet, oldest first. */
  private readonly waiting: Batch[] = [];
  private checking: Promise<void> = Promise.resolve();
  private failure: { err: unknown } | null = null;
  private roomWaiters: (() => void)[] = [];

  constructor(
    private readonly target: Backend,
    private readonly report: TransferReport,
    private readonly batchSize = 1000,
    /** Closed batches that may wait for their check before {@link room} holds the caller back. */
    private readonly maxWaiting = 2,
  ) {}

  /**
   * Wraps one placement: it joins the current batch, gets a `record` for a model it placed, and
   * counts as settled when it resolves or fails.
   */
  track(task: (record: RecordPlaced) => Promise<void>): () => Promise<void> {
    const batch = this.current;
    batch.tracked++;
    batch.open++;
    if (batch.tracked >= this.batchSize) this.close(batch);
    const record: RecordPlaced = (id, sha) => {
      batch.placed.set(id, sha);
    };
    return async () => {
      try {
        await task(record);
      } finally {
        batch.open--;
        this.settle();
      }
    };
  }

  /** Resolves when few enough batches wait for their check; rejects once a check failed. */
  async room(): Promise<void> {
    while (this.failure === null && this.waiting.length > this.maxWaiting) {
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
    if (this.failure !== null) throw this.failure.err;
  }

  /** Closes the last batch and resolves once every batch is checked (call after the placements). */
  async finish(): Promise<void> {
    if (!this.current.closed) this.close(this.current);
    this.settle();
    await this.checking;
    while (this.waiting.length > 0 && this.failure === null) {
      this.settle();
      await this.checking;
    }
    if (this.failure !== null) throw this.failure.err;
  }

  private close(batch: Batch): void {
    batch.closed = true;
    this.waiting.push(batch);
    if (batch === this.current) this.current = newBatch();
  }

  /** Checks, in order, the waiting batches whose placements have all settled. */
  private settle(): void {
    this.checking = this.checking.then(async () => {
      while (this.failure === null) {
        const next = this.waiting[0];
        if (next === undefined || next.open > 0 || next.checked) break;
        next.checked = true;
        try {
          await this.check(next.placed);
        } catch (err) {
          this.failure ??= { err };
        }
        this.waiting.shift();
        for (const wake of this.roomWaiters.splice(0)) wake();
      }
    });
  }

  private async check(placed: ReadonlyMap<number, string>): Promise<void> {
    const ids = [...placed.keys()].sort((a, b) => a - b);
    const metas = await metasOf(this.target, ids);
    for (const id of ids) {
      const sha256 = placed.get(id) as string;
      const m = metas.get(id);
      if (m !== undefined && m.sha256 === sha256) this.report.verified++;
      else {
        this.report.mismatched.push({
          instance_id: id,
          message:
            m === undefined
              ? `model ${id} is not in the target any more (deleted meanwhile?)`
              : `model ${id} in the target has sha256 ${m.sha256.slice(0, 12)}…, expected ${sha256.slice(0, 12)}… (written meanwhile?)`,
        });
      }
    }
  }
}

function newBatch(): Batch {
  return { placed: new Map(), tracked: 0, open: 0, closed: false, checked: false };
}
