/**
 * The applied model state: metadata of every instance id in memory, bytes in a {@link ModelStore}.
 * Hat events under the prefix are applied here, each exactly once and in Hat's natural order:
 * an event at or before the checkpoint (same server) or at or before the last event applied to its
 * id is a duplicate and skipped. Revisions count the events applied per id.
 */
import { sha256Hex } from '../../backend/sha256.js';
import type { ChangeOrigin, ModelChange, ModelMeta } from '../../backend/types.js';
import type { Event, EventPayloadJson } from '../../hat/eventer/common.js';
import { sameJsonText } from '../../hat/eventer/payload.js';
import { compareRefs, type EventRef, isoOf, refOf } from './event-ref.js';
import {
  decodeModelEvent,
  type MalformedEvent,
  type ModelEvent,
  parseInstanceId,
} from './format.js';
import type { ModelEntry, ModelStore, StoreCommit } from './store.js';

/** What happened to one event given to {@link ModelState.apply}. */
export type EventOutcome =
  | { kind: 'applied'; ref: EventRef; entry: ModelEntry; change: ModelChange | null }
  | { kind: 'duplicate'; ref: EventRef }
  | { kind: 'malformed'; ref: EventRef; event: Event; malformed: MalformedEvent };

/**
 * What this daemon already knows about an event it registered itself (the caller's bytes, their
 * hash and the payload it sent): when the server's event carries the same text (compared as bytes,
 * see `sameJsonText`), it need not be decoded, parsed, base64-decoded and hashed again.
 */
export interface KnownModel {
  event: ModelEvent;
  sha256: string;
  payload: EventPayloadJson;
}

export interface ApplyResult {
  outcomes: EventOutcome[];
  /** The changes to publish, in order. */
  changes: ModelChange[];
}

export class ModelState {
  private readonly entries = new Map<number, ModelEntry>();
  private checkpointRef: EventRef | null = null;
  private highWaterId = 0;
  private liveCount = 0;
  /** Every id of `entries`, ascending, for paged listings; built on first use (null: not built). */
  private sortedIds: number[] | null = null;

  constructor(
    readonly prefix: readonly string[],
    readonly store: ModelStore,
  ) {}

  /** Highest applied or scanned event (the catch-up point), or null before any. */
  get checkpoint(): EventRef | null {
    return this.checkpointRef;
  }

  /** Highest instance id seen in any event (live, deleted or malformed). */
  get highWater(): number {
    return this.highWaterId;
  }

  /** Number of live models. */
  get size(): number {
    return this.liveCount;
  }

  get(instanceId: number): ModelEntry | undefined {
    return this.entries.get(instanceId);
  }

  /** Live model metadata ascending by id. */
  list(): ModelMeta[] {
    const out: ModelMeta[] = [];
    for (const e of this.entries.values()) if (!e.deleted) out.push(metaOf(e));
    return out.sort((a, b) => a.instanceId - b.instanceId);
  }

  /**
   * Live model metadata with an id above `after`, ascending, at most `limit`; `scanned` is the
   * last id looked at (live or deleted), where the next page goes on.
   */
  listPage(after: number, limit: number): { metas: ModelMeta[]; scanned: number | null } {
    const ids = this.ids();
    let lo = 0;
    let hi = ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((ids[mid] as number) <= after) lo = mid + 1;
      else hi = mid;
    }
    const metas: ModelMeta[] = [];
    let scanned: number | null = null;
    for (let i = lo; i < ids.length && metas.length < limit; i++) {
      const id = ids[i] as number;
      scanned = id;
      const e = this.entries.get(id);
      if (e !== undefined && !e.deleted) metas.push(metaOf(e));
    }
    return { metas, scanned };
  }

  private ids(): number[] {
    this.sortedIds ??= [...this.entries.keys()].sort((a, b) => a - b);
    return this.sortedIds;
  }

  private setEntry(entry: ModelEntry): void {
    const ids = this.sortedIds;
    if (ids !== null && !this.entries.has(entry.instanceId)) {
      // Ids mostly arrive ascending (allocated past the high-water mark): append, else rebuild.
      const last = ids.at(-1);
      if (last === undefined || last < entry.instanceId) ids.push(entry.instanceId);
      else this.sortedIds = null;
    }
    this.entries.set(entry.instanceId, entry);
  }

  /** Every entry (live and deleted), for diffs after a rebuild. */
  allEntries(): ModelEntry[] {
    return [...this.entries.values()];
  }

  /** Loads state recovered from a snapshot (no events are applied, nothing is emitted). */
  load(entries: Iterable<ModelEntry>, checkpoint: EventRef | null, highWater: number): void {
    this.entries.clear();
    this.sortedIds = null;
    this.liveCount = 0;
    for (const e of entries) {
      this.entries.set(e.instanceId, e);
      if (!e.deleted) this.liveCount++;
      if (e.instanceId > this.highWaterId) this.highWaterId = e.instanceId;
    }
    this.checkpointRef = checkpoint;
    if (highWater > this.highWaterId) this.highWaterId = highWater;
  }

  /** Forgets every model and the checkpoint; the high-water mark stays (ids are never reused). */
  reset(): void {
    this.entries.clear();
    this.sortedIds = null;
    this.liveCount = 0;
    this.checkpointRef = null;
    this.store.clearModels();
  }

  /**
   * `full_replay: latest_then_history`: makes the provisional revisions of ids with a base exact —
   * `count` events at or before the base (at least the base itself) plus those applied since
   * (`revision − 1`) — in one store commit, which also clears a snapshot's provisional flag.
   */
  completeRevisions(
    counts: ReadonlyMap<number, number>,
    bases: ReadonlyMap<number, EventRef>,
  ): number {
    const upserts: StoreCommit['upserts'] = [];
    for (const [id, base] of bases) {
      const e = this.entries.get(id);
      if (e === undefined || compareRefs(e.event, base) < 0) continue;
      const count = Math.max(1, counts.get(id) ?? 0);
      if (count === 1) continue;
      const instance = e.deleted ? null : this.store.readInstance(id);
      if (!e.deleted && instance === null) continue; // never drop bytes for a revision
      upserts.push({ entry: { ...e, revision: e.revision + count - 1 }, instance });
    }
    this.store.commit({
      upserts,
      checkpoint: this.checkpointRef,
      highWater: this.highWaterId,
      revisionsProvisional: false,
    });
    for (const { entry } of upserts) this.setEntry(entry);
    return upserts.length;
  }

  /** True when the event was applied already (or is superseded for its id). */
  isApplied(ref: EventRef, instanceId: number | null): boolean {
    const e = instanceId === null ? undefined : this.entries.get(instanceId);
    return isDuplicate(ref, this.checkpointRef, e);
  }

  /**
   * Applies events (any order; they are sorted) in one store commit. `originOf` tells which events
   * this daemon wrote. `scannedUpTo` advances the checkpoint past events outside the prefix.
   */
  apply(
    events: readonly Event[],
    originOf: (ref: EventRef) => ChangeOrigin,
    scannedUpTo: EventRef | null = null,
    knownOf: (ref: EventRef) => KnownModel | undefined = () => undefined,
  ): ApplyResult {
    const sorted = events.map((e) => ({ e, ref: refOf(e) }));
    sorted.sort((a, b) => compareRefs(a.ref, b.ref));
    const staged = new Map<number, { entry: ModelEntry; instance: Uint8Array | null }>();
    const outcomes: EventOutcome[] = [];
    const changes: ModelChange[] = [];
    let checkpoint = this.checkpointRef;
    let highWater = this.highWaterId;
    let liveDelta = 0;
    const current = (id: number) => staged.get(id)?.entry ?? this.entries.get(id);

    for (const { e, ref } of sorted) {
      const known = knownOf(ref);
      const useKnown =
        known !== undefined && e.payload?.kind === 'json' && sameJsonText(e.payload, known.payload);
      if (!useKnown) {
        // A copy of an event already applied — most often our own write, echoed by the
        // subscription after its register response was applied — is skipped by its type and id
        // alone: its payload (base64 in JSON) is not decoded for nothing.
        const typed = parseInstanceId(this.prefix, e.type);
        if ('id' in typed && isDuplicate(ref, checkpoint, current(typed.id))) {
          outcomes.push({ kind: 'duplicate', ref });
          continue;
        }
      }
      const decoded = useKnown ? known.event : decodeModelEvent(this.prefix, e);
      const id = decoded.instanceId;
      const prev = id === null ? undefined : current(id);
      if (isDuplicate(ref, checkpoint, prev)) {
        outcomes.push({ kind: 'duplicate', ref });
        continue;
      }
      if (checkpoint === null || compareRefs(ref, checkpoint) > 0) checkpoint = ref;
      if (id !== null && id > highWater) highWater = id;
      if (decoded.kind === 'malformed') {
        outcomes.push({ kind: 'malformed', ref, event: e, malformed: decoded });
        continue;
      }
      const revision = (prev?.revision ?? 0) + 1;
      const updated = isoOf(ref);
      const origin = originOf(ref);
      let entry: ModelEntry;
      let change: ModelChange | null;
      if (decoded.kind === 'tombstone') {
        entry = {
          instanceId: decoded.instanceId,
          modelType: prev?.modelType ?? '',
          revision,
          size: 0,
          sha256: '',
          updated,
          deleted: true,
          event: ref,
        };
        const wasLive = prev !== undefined && !prev.deleted;
        if (wasLive) liveDelta--;
        change = wasLive
          ? {
              change: 'deleted',
              instanceId: entry.instanceId,
              modelType: entry.modelType,
              revision,
              origin,
            }
          : null;
        staged.set(entry.instanceId, { entry, instance: null });
      } else {
        entry = {
          instanceId: decoded.instanceId,
          modelType: decoded.modelType,
          revision,
          size: decoded.instance.length,
          sha256: useKnown ? known.sha256 : sha256Hex(decoded.instance),
          updated,
          deleted: false,
          event: ref,
        };
        const wasLive = prev !== undefined && !prev.deleted;
        if (!wasLive) liveDelta++;
        change = {
          change: wasLive ? 'updated' : 'created',
          instanceId: entry.instanceId,
          modelType: entry.modelType,
          revision,
          origin,
          meta: metaOf(entry),
        };
        staged.set(entry.instanceId, { entry, instance: decoded.instance });
      }
      outcomes.push({ kind: 'applied', ref, entry, change });
      if (change !== null) changes.push(change);
    }

    if (scannedUpTo !== null && (checkpoint === null || compareRefs(scannedUpTo, checkpoint) > 0))
      checkpoint = scannedUpTo;
    const moved = checkpoint !== this.checkpointRef;
    if (staged.size > 0 || moved || highWater !== this.highWaterId) {
      const commit: StoreCommit = { upserts: [...staged.values()], checkpoint, highWater };
      this.store.commit(commit);
      for (const { entry } of staged.values()) this.setEntry(entry);
      this.checkpointRef = checkpoint;
      this.highWaterId = highWater;
      this.liveCount += liveDelta;
    }
    return { outcomes, changes };
  }
}

/** At or before the checkpoint (same server), or at or before the last event applied to its id. */
function isDuplicate(
  ref: EventRef,
  checkpoint: EventRef | null,
  prev: ModelEntry | undefined,
): boolean {
  return (
    (checkpoint !== null &&
      checkpoint.server === ref.server &&
      compareRefs(ref, checkpoint) <= 0) ||
    (prev !== undefined && compareRefs(ref, prev.event) <= 0)
  );
}

export function metaOf(e: ModelEntry): ModelMeta {
  return {
    instanceId: e.instanceId,
    modelType: e.modelType,
    revision: e.revision,
    size: e.size,
    sha256: e.sha256,
    updated: e.updated,
  };
}
