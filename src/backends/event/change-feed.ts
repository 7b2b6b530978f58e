/**
 * Applying events to the state and telling the clients: every event from Hat (recovery pages,
 * notifications, our own registered events via the intake) is applied here, malformed ones are
 * counted and logged, and the resulting changes are emitted on `changes$`. Across a rebuild from
 * Hat, the models that existed before and are gone after are announced as deleted.
 */
import type { Logger } from 'pino';
import { type Observable, Subject } from 'rxjs';
import type { ChangeOrigin, ModelChange } from '../../backend/types.js';
import type { Event } from '../../hat/eventer/common.js';
import { type EventRef, refKey } from './event-ref.js';
import type { IdAllocator } from './ids.js';
import type { EventMetrics } from './metrics.js';
import { type EventOutcome, type KnownModel, type ModelState, metaOf } from './state.js';
import type { ModelEntry } from './store.js';

export class ChangeFeed {
  readonly changes$: Observable<ModelChange>;
  private readonly subject = new Subject<ModelChange>();
  /** The models clients saw before the current rebuild (null when none is under way). */
  private rebuildBefore: ModelEntry[] | null = null;

  constructor(
    private readonly state: ModelState,
    private readonly ids: IdAllocator,
    private readonly metrics: EventMetrics,
    private readonly logger: Logger,
  ) {
    this.changes$ = this.subject.asObservable();
  }

  apply(
    events: Event[],
    originOf: (ref: EventRef) => ChangeOrigin,
    scannedUpTo: EventRef | null,
    knownOf?: (ref: EventRef) => KnownModel | undefined,
  ): readonly EventOutcome[] {
    const res = this.state.apply(events, originOf, scannedUpTo, knownOf);
    this.ids.observe(this.state.highWater);
    for (const o of res.outcomes) {
      if (o.kind === 'malformed') {
        this.metrics.skippedEvents.inc({ reason: o.malformed.reason });
        this.logger.warn(
          { eventId: refKey(o.ref), eventType: o.event.type.join('/'), reason: o.malformed.reason },
          `event backend: skipped malformed event: ${o.malformed.detail}`,
        );
      } else if (o.kind === 'applied') {
        this.metrics.appliedEvents.inc({ origin: originOf(o.ref) });
      }
    }
    this.metrics.models.set(this.state.size);
    for (const c of res.changes) this.subject.next(c);
    return res.outcomes;
  }

  /** Remembers the models clients saw, before the state is reset for a rebuild from Hat. */
  rememberBeforeRebuild(): void {
    // A recovery may rebuild twice (a lost checkpoint, then a pruned time series): clients saw
    // the state before the first.
    this.rebuildBefore ??= this.state.allEntries().filter((e) => !e.deleted);
  }

  /** After recovery: announces the models that a rebuild removed. */
  announceRemovedAfterRebuild(): void {
    const before = this.rebuildBefore;
    this.rebuildBefore = null;
    for (const old of before ?? []) {
      const now = this.state.get(old.instanceId);
      if (now !== undefined && !now.deleted) continue;
      this.subject.next({
        change: 'deleted',
        instanceId: old.instanceId,
        modelType: old.modelType,
        revision: now !== undefined ? now.revision : old.revision + 1,
        origin: 'remote',
      });
    }
  }

  /**
   * After `full_replay: latest_then_history` completed the revisions: an `updated` change with the
   * exact revision (same bytes) for every live model whose revision was provisional, so that
   * clients that saw the lower bound learn the exact one.
   */
  announceExact(ids: Iterable<number>): void {
    for (const id of ids) {
      const e = this.state.get(id);
      if (e === undefined || e.deleted) continue;
      this.subject.next({
        change: 'updated',
        instanceId: id,
        modelType: e.modelType,
        revision: e.revision,
        origin: 'remote',
        meta: metaOf(e),
      });
    }
  }

  /** No more changes: the backend is closed. */
  complete(): void {
    this.subject.complete();
  }
}
