/**
 * A model's history from Hat: the events of its type (`[...prefix, id]`) in Hat's time series,
 * numbered by counting back from the revision the state holds for the newest applied event (so the
 * numbers stay exact when the time series has lost the oldest events: what is listed is then the
 * newest part). Malformed events are not revisions (the state skips them too). Events newer than
 * the state's (not yet applied) are left out; if the state's newest event is not in the time
 * series at all, only the current revision is known.
 *
 * Two reads, both linear in what they return plus what they must cross:
 *
 * - {@link readModelHistory}: newest first from the state's event, down to the revision just
 *   above a window `after` (so it costs `current − after` events, the whole series for `after` 0);
 *   it keeps the bytes of the window only and hands back {@link HistoryCursor}s at the window's
 *   end and every `limit` revisions after it (the pages a client asks for next);
 * - {@link readModelPage}: oldest first from a cursor (`tFrom` = its timestamp, the cursor's id
 *   as sentinel), one page: each page of a listing walked forward costs one page of Hat reads.
 *   It answers null when it cannot vouch for the numbers (the cursor's event was pruned, or the
 *   series does not lead to the state's event with the expected count); the caller then reads
 *   newest first.
 *
 * Each query page starts at the previous page's last timestamp (`tTo` newest first, `tFrom` oldest
 * first): Hat's LMDB walks the partition from there and skips to the sentinel by walking, so a
 * query without the bound would walk everything newer (or older) than the sentinel again.
 */
import { sha256Hex } from '../../backend/sha256.js';
import type { Model, ModelRevision } from '../../backend/types.js';
import type { Event, EventerClient, EventId, Timestamp } from '../../hat/eventer/common.js';
import { timeseriesQuery } from '../../hat/eventer/common.js';
import { compareRefs, type EventRef, isoOf, refOf } from './event-ref.js';
import { decodeModelEvent, type ModelEvent } from './format.js';
import type { ModelEntry } from './store.js';
import { withTimeout } from './timeout.js';

/** Events per query page. */
const PAGE = 256;

/**
 * Most cursors one read hands back (the next pages of a listing walked forward; each page read
 * forward leaves the cursor for the one after it).
 */
const MAX_CURSORS = 16;

/** One revision as read from Hat (oldest first in every result). */
export interface ReadRevision {
  revision: number;
  event: Event;
  decoded: ModelEvent;
}

/** Where a forward read can start: revision `revision` is the event `ref`. */
export interface HistoryCursor {
  revision: number;
  ref: EventRef;
  /** The type this revision is listed with (a tombstone's is the revision before it's). */
  modelType: string;
}

export interface HistoryRead {
  /** The window's revisions, oldest first, each with its exact number. */
  revisions: ReadRevision[];
  /** The listed type of the revision just before the window (for a tombstone opening it). */
  typeBefore: string;
  /** The time series held the state's newest event (else `revisions` is empty). */
  complete: boolean;
  /** Cursors at the window's last revision and every `limit` revisions above it. */
  cursors: HistoryCursor[];
}

export interface HistoryWindow {
  /** Only revisions above this one. */
  after: number;
  /** At most this many. */
  limit: number;
}

function typeQuery(prefix: readonly string[], instanceId: number) {
  return [[...prefix, String(instanceId)]];
}

function timestampOf(ref: EventRef): Timestamp {
  return { s: ref.s, us: ref.us };
}

function eventIdOf(e: Event): EventId {
  return e.id;
}

/**
 * Reads the events of one model newest first, from the state's event down to the window (and to
 * the first non-tombstone at or below it, whose type a tombstone opening the window is listed
 * with), or to the oldest the time series keeps.
 */
export async function readModelHistory(
  client: EventerClient,
  prefix: readonly string[],
  entry: ModelEntry,
  timeoutMs: number,
  window: HistoryWindow,
): Promise<HistoryRead> {
  const top = window.after + window.limit;
  // Newest first while reading; reversed at the end.
  const kept: ReadRevision[] = [];
  const cursors: HistoryCursor[] = [];
  // Cursors read before the type they are listed with is known (tombstones): typed later.
  let untyped: HistoryCursor[] = [];
  let typeBefore: string | null = null;
  let lastEventId: EventId | null = null;
  let tTo: Timestamp | null = null;
  let found = false;
  let revision = entry.revision + 1;
  let done = false;
  while (!done) {
    const params = timeseriesQuery({
      eventTypes: typeQuery(prefix, entry.instanceId),
      order: 'descending',
      orderBy: 'timestamp',
      tTo,
      // No more than the window needs (plus the events newer than the state's, if any; at least
      // a few, for a tombstone below the window whose type is still wanted).
      maxResults: Math.min(PAGE, Math.max(16, revision - window.after + 1)),
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
      revision--;
      if (revision < 1) {
        done = true;
        break;
      }
      const modelType = decoded.kind === 'model' ? decoded.modelType : null;
      if (modelType !== null) {
        for (const c of untyped) c.modelType = modelType;
        untyped = [];
      }
      if (revision > window.after && revision <= top) kept.push({ revision, event, decoded });
      if (revision >= top && (revision - window.after) % window.limit === 0) {
        const c: HistoryCursor = { revision, ref, modelType: modelType ?? '' };
        cursors.push(c);
        if (modelType === null) untyped.push(c);
      }
      if (revision <= window.after && modelType !== null) {
        typeBefore = modelType;
        done = true;
        break;
      }
    }
    const last = res.events.at(-1);
    if (done || !res.moreFollows || last === undefined) break;
    lastEventId = eventIdOf(last);
    tTo = timestampOf(refOf(last));
  }
  if (!found) return { revisions: [], typeBefore: entry.modelType, complete: false, cursors: [] };
  // The oldest kept revision, a tombstone: listed with the state's type (nothing older is known).
  for (const c of untyped) c.modelType = entry.modelType;
  typeBefore ??= entry.modelType;
  // Keep the cursors nearest the window (the pages asked for next).
  return {
    revisions: kept.reverse(),
    typeBefore,
    complete: true,
    cursors: cursors.reverse().slice(0, MAX_CURSORS),
  };
}

export interface PageRead {
  /** Revisions after the cursor, oldest first, at most `limit`. */
  revisions: ReadRevision[];
  /** The listed type of the cursor's revision. */
  typeBefore: string;
}

/**
 * One page forward from `cursor`: the revisions above it, oldest first, at most `limit`, never past
 * the state's event. Null when the numbers cannot be vouched for (see the module comment).
 */
export async function readModelPage(
  client: EventerClient,
  prefix: readonly string[],
  entry: ModelEntry,
  timeoutMs: number,
  cursor: HistoryCursor,
  limit: number,
): Promise<PageRead | null> {
  const out: ReadRevision[] = [];
  let revision = cursor.revision;
  let tFrom: Timestamp | null = timestampOf(cursor.ref);
  let lastEventId: EventId | null = {
    server: cursor.ref.server,
    session: cursor.ref.session,
    instance: cursor.ref.instance,
  };
  for (;;) {
    const params = timeseriesQuery({
      eventTypes: typeQuery(prefix, entry.instanceId),
      order: 'ascending',
      orderBy: 'timestamp',
      tFrom,
      maxResults: Math.min(PAGE, limit - out.length),
      lastEventId,
    });
    const res = await withTimeout(client.query(params), timeoutMs, 'model history query');
    // Empty: the cursor's event is not in the series any more (pruned), or nothing follows it —
    // which cannot be, since the cursor lies below the state's revision.
    if (res.events.length === 0) return null;
    for (const event of res.events) {
      const decoded = decodeModelEvent(prefix, event);
      if (decoded.kind === 'malformed') continue;
      revision++;
      const isState = compareRefs(refOf(event), entry.event) === 0;
      // The state's event must come with the state's number, and nothing may come past it.
      if (isState !== (revision === entry.revision)) return null;
      out.push({ revision, event, decoded });
      if (isState || out.length >= limit) return { revisions: out, typeBefore: cursor.modelType };
    }
    const last = res.events.at(-1) as Event;
    if (!res.moreFollows) return null;
    lastEventId = eventIdOf(last);
    tFrom = timestampOf(refOf(last));
  }
}

/** The cursor at a listed revision (its listed type). */
export function cursorOf(r: ReadRevision, listedType: string): HistoryCursor {
  return { revision: r.revision, ref: refOf(r.event), modelType: listedType };
}

/** One listed revision; `current` is the state's newest. */
export function revisionOf(
  instanceId: number,
  r: ReadRevision,
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

/** The listing of revisions read in order, each tombstone with the type before it. */
export function listRead(
  entry: ModelEntry,
  revisions: readonly ReadRevision[],
  typeBefore: string,
): ModelRevision[] {
  let lastType = typeBefore;
  return revisions.map((r) => {
    const rev = revisionOf(entry.instanceId, r, entry.revision, lastType);
    lastType = rev.modelType;
    return rev;
  });
}

/** The current revision alone, from the state (the time series lost even the newest event). */
export function currentOnly(entry: ModelEntry): ModelRevision {
  return {
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
  };
}

/** The bytes of one listed revision, or null for a tombstone. */
export function modelOf(instanceId: number, r: ReadRevision): Model | null {
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
