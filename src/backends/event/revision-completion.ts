/**
 * `full_replay: latest_then_history` (issue 15): the backend becomes ready from one `latest` query
 * (each id's newest event, its **base**, applied as revision 1) and this module completes every
 * revision in the background, from the prefix's history read exactly as a full replay reads it
 * (`catch_up` decides timeseries or server pages), without applying anything:
 *
 * - `count[id]` = the (well-formed) events of id at or before `base[id]` in Hat's natural order;
 *   events after a base were applied meanwhile as notifications and are not counted again;
 * - then, in one synchronous step, `revision[id] = count[id] + (current revision − 1)` — the events
 *   up to the base plus those applied since — for every id with a base, in one store commit (which
 *   with a snapshot also clears its "revisions provisional" flag).
 *
 * Until then reads serve the latest bytes with a lower-bound revision, marked `revisionProvisional`
 * ({@link RevisionCompletion.markMeta}; the HTTP ETag is then weak), and an `updated` change with
 * the exact revision follows for every live model with a base; a compare-and-set write on an id
 * with a base waits for completion ({@link RevisionCompletion.whenExact}). A reconnect aborts
 * the read (it starts again with the same bases after the catch-up); a rebuild drops the bases.
 */
import type { Logger } from 'pino';
import { BackendError, type ModelChange, type ModelMeta } from '../../backend/types.js';
import type { Event } from '../../hat/eventer/common.js';
import { compareRefs, type EventRef, refOf } from './event-ref.js';
import { decodeModelEvent } from './format.js';
import type { PageReaderDeps } from './history-pages.js';
import { type RecoveryDeps, replayHistory } from './recovery.js';

class Aborted extends Error {}

export interface CompletionRun {
  /** Recovery's deps for the current connection (client, paging, catch_up); `apply` is replaced. */
  deps: Omit<RecoveryDeps, 'apply' | 'progress' | 'rebuild' | 'checkpoint' | 'history'>;
  /** Applies the exact revisions (id → events at or before its base) in one step. */
  complete(counts: Map<number, number>, bases: Map<number, EventRef>): void;
  /** After `complete`, once no revision is provisional any more: tell the clients (changes). */
  exact(ids: Iterable<number>): void;
}

export class RevisionCompletion {
  /** Ids whose revision is provisional → their base event; null when every revision is exact. */
  private bases: Map<number, EventRef> | null = null;
  private generation = 0;
  private running = false;
  private waiters: (() => void)[] = [];
  /** Events counted by the current read (progress). */
  counted = 0;

  constructor(
    private readonly prefix: readonly string[],
    private readonly logger: Logger,
  ) {}

  /** True while some revisions are provisional. */
  get pending(): boolean {
    return this.bases !== null;
  }

  /** How many ids have a provisional revision. */
  get size(): number {
    return this.bases?.size ?? 0;
  }

  /** Is `instanceId`'s revision a lower bound still being completed? */
  isProvisional(instanceId: number): boolean {
    return this.bases?.has(instanceId) === true;
  }

  /** `meta` with `revisionProvisional` while its revision is a lower bound (served as such). */
  markMeta<T extends Pick<ModelMeta, 'instanceId'>>(meta: T): T & { revisionProvisional?: true } {
    return this.isProvisional(meta.instanceId) ? { ...meta, revisionProvisional: true } : meta;
  }

  /** A change (and its metadata) marked as {@link markMeta} does. */
  markChange(c: ModelChange): ModelChange {
    if (!this.isProvisional(c.instanceId)) return c;
    const marked: ModelChange = { ...c, revisionProvisional: true };
    if (c.meta !== undefined) marked.meta = { ...c.meta, revisionProvisional: true };
    return marked;
  }

  /**
   * Starts over from the `latest` answer of a recovery (each id's newest event is its base).
   * `appliedEvent(id)` is the event the state applied last for an id: only an id whose `latest`
   * event was applied (not malformed) gets a base — found without decoding the payloads again.
   */
  begin(latest: readonly Event[], appliedEvent: (id: number) => EventRef | undefined): void {
    this.generation++;
    this.running = false;
    this.counted = 0;
    const bases = new Map<number, EventRef>();
    const n = this.prefix.length;
    for (const e of latest) {
      if (e.type.length !== n + 1) continue;
      const id = Number(e.type[n]);
      if (!Number.isSafeInteger(id) || id < 1) continue;
      const applied = appliedEvent(id);
      const ref = refOf(e);
      if (applied === undefined || compareRefs(applied, ref) !== 0) continue;
      bases.set(id, ref);
    }
    this.bases = bases.size > 0 ? bases : null;
    if (this.bases === null) this.wake();
  }

  /** Forgets the bases (the state was rebuilt): revisions are whatever the new recovery gives. */
  drop(): void {
    this.generation++;
    this.running = false;
    this.bases = null;
    this.wake();
  }

  /** Stops the current read (the connection is gone); the bases stay for the next run. */
  abort(): void {
    this.generation++;
    this.running = false;
  }

  /**
   * Resolves once `instanceId`'s revision is exact (at once for ids without a base); rejects with
   * `unavailable` after `timeoutMs`.
   */
  async whenExact(instanceId: number, timeoutMs: number): Promise<void> {
    if (this.bases?.has(instanceId) !== true) return;
    let timer: NodeJS.Timeout | undefined;
    let waiter: (() => void) | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        waiter = resolve;
        this.waiters.push(resolve);
        timer = setTimeout(
          () =>
            reject(
              new BackendError(
                'unavailable',
                `revisions not exact yet: the history of model ${instanceId} is still being read from Hat (compare-and-set waited ${timeoutMs} ms)`,
              ),
            ),
          timeoutMs,
        );
      });
    } finally {
      clearTimeout(timer);
      this.waiters = this.waiters.filter((w) => w !== waiter);
    }
  }

  /** Reads the history and completes the revisions, unless aborted; errors are logged. */
  async run(r: CompletionRun): Promise<void> {
    const bases = this.bases;
    if (bases === null || this.running) return;
    this.running = true;
    const gen = ++this.generation;
    this.counted = 0;
    const counts = new Map<number, number>();
    const check = () => {
      if (gen !== this.generation) throw new Aborted();
    };
    const apply = (events: Event[]) => {
      check();
      for (const e of events) {
        const d = decodeModelEvent(this.prefix, e);
        if (d.kind === 'malformed' || d.instanceId === null) continue;
        const base = bases.get(d.instanceId);
        if (base === undefined || compareRefs(refOf(e), base) > 0) continue;
        counts.set(d.instanceId, (counts.get(d.instanceId) ?? 0) + 1);
        this.counted++;
      }
    };
    const deps: RecoveryDeps = {
      ...r.deps,
      checkpoint: null,
      history: true,
      apply,
      progress: () => {},
      rebuild: () => {},
    };
    const pageDeps: PageReaderDeps = {
      ...deps,
      received: (kind, n) => r.deps.received?.(kind, n),
    };
    const t0 = Date.now();
    try {
      const read = await replayHistory(deps, pageDeps);
      check();
      if (read === null)
        this.logger.warn(
          'event backend: no time series holds the prefix, so the history cannot be counted: revisions stay as the latest query left them (as with full_replay: latest)',
        );
      const missing = [...bases.keys()].filter((id) => (counts.get(id) ?? 0) === 0).length;
      if (read !== null && missing > 0)
        this.logger.warn(
          { models: missing },
          'event backend: the history read lacks the newest event of some models (pruned?): their revisions count only what it holds',
        );
      r.complete(counts, bases);
      this.bases = null;
      this.running = false;
      r.exact(bases.keys());
      this.logger.info(
        {
          models: bases.size,
          events: this.counted,
          pages: read?.pages ?? 0,
          via: read?.via ?? null,
          ms: Date.now() - t0,
        },
        'event backend: history complete',
      );
      this.wake();
    } catch (err) {
      if (gen === this.generation) this.running = false;
      if (err instanceof Aborted) return;
      this.logger.warn(
        { err: (err as Error).message },
        'event backend: reading the history to complete revisions failed; retried after the next reconnect',
      );
      throw err;
    }
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
