/**
 * A model's history from Hat: the events of its type (`[...prefix, id]`) in Hat's time series,
 * read newest first page by page, numbered by counting back from the revision the state holds for
 * the newest applied event (so the numbers stay exact when the time series has lost the oldest
 * events: what is listed is then the newest part). Malformed events are not revisions (the state
 * skips them too). Events newer than the state's (not yet applied) are left out; if the state's
 * newest event is not in the time series at all, only the current revision is known.
 */
import { sha256Hex } from '../../backend/sha256.js';
import type { HistoryOptions, Model, ModelRevision } from '../../backend/types.js';
import type { Event, EventerClient, EventId } from '../../hat/eventer/common.js';
import { timeseriesQuery } from '../../hat/eventer/common.js';
import { compareRefs, isoOf, refOf } from './event-ref.js';
import { decodeModelEvent, type ModelEvent } from './format.js';
import type { ModelEntry } from './store.js';
import { withTimeout } from './timeout.js';

/** Events per query page. */
const PAGE = 256;

export interface HistoryRead {
  /** Oldest first, each with its exact revision; the last one is the state's current revision. */
  revisions: { revision: number; event: Event; decoded: ModelEvent }[];
  /** The time series held the state's newest event (else `revisions` is empty). */
  complete: boolean;
}

/** Reads the events of one model, newest first, back to the oldest the time series keeps. */
export async function readModelHistory(
  client: EventerClient,
  prefix: readonly string[],
  entry: ModelEntry,
  timeoutMs: number,
): Promise<HistoryRead> {
  const newest: { event: Event; decoded: ModelEvent }[] = [];
  let lastEventId: EventId | null = null;
  let found = false;
  for (;;) {
    const params = timeseriesQuery({
      eventTypes: [[...prefix, String(entry.instanceId)]],
      order: 'descending',
      orderBy: 'timestamp',
      maxResults: PAGE,
      lastEventId,
    });
    const res = await withTimeout(client.query(params), timeoutMs, 'model history query');
    for (const event of res.events) {
      const ref = refOf(event);
      if (!found) {
        // Newer than the state: not applied yet (it will be a later revision).
        if (compareRefs(ref, entry.event) !== 0) continue;
        found = true;
      }
      const decoded = decodeModelEvent(prefix, event);
      if (decoded.kind === 'malformed') continue;
      newest.push({ event, decoded });
    }
    const last = res.events.at(-1);
    if (!res.moreFollows || last === undefined) break;
    lastEventId = last.id;
  }
  if (!found) return { revisions: [], complete: false };
  const revisions = newest
    .map((r, i) => ({ ...r, revision: entry.revision - i }))
    .filter((r) => r.revision >= 1)
    .reverse();
  return { revisions, complete: true };
}

/** One listed revision; `current` is the state's newest. */
export function revisionOf(
  instanceId: number,
  r: { revision: number; event: Event; decoded: ModelEvent },
  current: number,
  lastType: string,
): ModelRevision {
  const updated = isoOf(refOf(r.event));
  if (r.decoded.kind === 'tombstone') {
    return {
      instanceId,
      revision: r.revision,
      modelType: lastType,
      size: 0,
      sha256: null,
      updated,
      deleted: true,
      origin: null,
      available: false,
      current: r.revision === current,
    };
  }
  return {
    instanceId,
    revision: r.revision,
    modelType: r.decoded.modelType,
    size: r.decoded.instance.length,
    sha256: sha256Hex(r.decoded.instance),
    updated,
    deleted: false,
    origin: null,
    available: true,
    current: r.revision === current,
  };
}

/** The bytes of one listed revision, or null for a tombstone. */
export function modelOf(
  instanceId: number,
  r: { revision: number; event: Event; decoded: ModelEvent },
): Model | null {
  if (r.decoded.kind === 'tombstone') return null;
  const { instance, modelType } = r.decoded;
  return {
    instanceId,
    modelType,
    revision: r.revision,
    size: instance.length,
    sha256: sha256Hex(instance),
    updated: isoOf(refOf(r.event)),
    instance,
  };
}

/**
 * The listing of `backend.getHistory`: the revisions read, or (the time series lost even the
 * newest event) the current one from the state alone; then `after`/`limit` paging.
 */
export function listRevisions(
  entry: ModelEntry,
  read: HistoryRead,
  options: HistoryOptions = {},
): ModelRevision[] {
  let all: ModelRevision[];
  if (read.complete) {
    let lastType = entry.modelType;
    all = read.revisions.map((r) => {
      const rev = revisionOf(entry.instanceId, r, entry.revision, lastType);
      lastType = rev.modelType;
      return rev;
    });
  } else {
    all = [
      {
        instanceId: entry.instanceId,
        revision: entry.revision,
        modelType: entry.modelType,
        size: entry.deleted ? 0 : entry.size,
        sha256: entry.deleted ? null : entry.sha256,
        updated: entry.updated,
        deleted: entry.deleted,
        origin: null,
        available: !entry.deleted,
        current: true,
      },
    ];
  }
  const after = options.after ?? 0;
  const limit = Math.max(1, options.limit ?? 1000);
  return all.filter((r) => r.revision > after).slice(0, limit);
}
