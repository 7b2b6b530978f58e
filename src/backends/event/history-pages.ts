/**
 * Reading the prefix's history from Hat page by page, for recovery — two ways:
 *
 * - {@link readServerPages}: `server` queries (one server id, natural id order, every type; only
 *   events under the prefix are applied, the checkpoint moves past the rest). Complete — the
 *   protocol's catch-up primitive — but every unrelated event of that server crosses the wire.
 * - {@link readTimeseriesPages}: a type-filtered `timeseries` query (`[...prefix, '*']`, ascending
 *   by timestamp): only the prefix's events, of every server id. Hat's LMDB answers it from one
 *   time-series partition, so it is only as complete as that partition.
 *
 * Paging a timeseries query uses `lastEventId` as a sentinel; an id that is not in the filtered
 * stream makes Hat answer `[]` with `moreFollows=false`. So a read relies on the checkpoint's id
 * only when an answer proves it is in the stream (events came back after it). Otherwise it starts
 * from the checkpoint's timestamp (`tFrom`, inclusive) and drops the events at or before the
 * checkpoint itself; later pages pass the last *returned* event, which is in the stream by
 * construction, with its timestamp as `tFrom` (LMDB skips everything from `tFrom` up to the
 * sentinel, whatever its type: a fixed `tFrom` would make paging quadratic).
 */
import type {
  Event,
  EventerClient,
  EventId,
  QueryParams,
  QueryResult,
  Timestamp,
} from '../../hat/eventer/common.js';
import { matchesAny, serverQuery, timeseriesQuery } from '../../hat/eventer/common.js';
import { jsonPayloadSize } from '../../hat/eventer/payload.js';
import { compareRefs, type EventRef, eventIdOf, refKey, refOf } from './event-ref.js';
import { withTimeout } from './timeout.js';

export type QueryKind = QueryParams['kind'];

export interface PageReaderDeps {
  client: EventerClient;
  subscription: string[][];
  /** Most events per page. */
  pageSize: number;
  /** Bytes a page aims at. */
  pageBytes: number;
  timeoutMs: number;
  /** Applies events from Hat (origin remote); `scannedUpTo` moves the checkpoint past other types. */
  apply(events: Event[], scannedUpTo: EventRef | null): void;
  progress(eventsSoFar: number): void;
  /** Every query result (probes included): how many events crossed the wire, by query kind. */
  received(kind: QueryKind, events: number): void;
  /** The time series lost the event a read paged from; the read goes on from its timestamp. */
  onSentinelLost?(lastReturned: EventRef): void;
}

export interface PagesRead {
  /** Events handed to `apply` (under the prefix, after the start point). */
  events: number;
  pages: number;
}

/** One query with the recovery timeout; counts what it received. */
export async function query(
  d: PageReaderDeps,
  params: QueryParams,
  what: string,
): Promise<QueryResult> {
  const res = await withTimeout(d.client.query(params), d.timeoutMs, what);
  d.received(params.kind, res.events.length);
  return res;
}

/** A type-filtered timeseries query over the prefix, by timestamp. */
export function prefixTimeseries(
  d: Pick<PageReaderDeps, 'subscription'>,
  p: {
    order: 'ascending' | 'descending';
    tFrom: Timestamp | null;
    maxResults: number;
    lastEventId: EventId | null;
  },
): QueryParams {
  return timeseriesQuery({ eventTypes: d.subscription, ...p });
}

/** First page size of a read; pages then double while they stay within the byte budget. */
const FIRST_PAGE = 16;

/** How often one read restarts after the time series lost its sentinel before it gives up. */
const MAX_SENTINEL_RESTARTS = 8;

/** The next page's maxResults: doubling, at most `pageSize`, aiming at `pageBytes`. */
function nextPageSize(d: PageReaderDeps, current: number, page: readonly Event[]): number {
  const perEvent = Math.max(1, pageBytesOf(page) / page.length);
  return Math.max(1, Math.min(d.pageSize, current * 2, Math.floor(d.pageBytes / perEvent)));
}

/**
 * Events of `server` after `from` (all of them for null), paged, applied page by page; events
 * outside the prefix are skipped but move the checkpoint (`scannedUpTo`).
 */
export async function readServerPages(
  d: PageReaderDeps,
  server: number,
  from: EventRef | null,
): Promise<PagesRead> {
  let last = from === null ? null : eventIdOf(from);
  let events = 0;
  let pages = 0;
  let maxResults = Math.min(FIRST_PAGE, d.pageSize);
  for (;;) {
    const res = await query(
      d,
      serverQuery(server, { maxResults, lastEventId: last }),
      'catch-up query',
    );
    pages++;
    const lastEvent = res.events[res.events.length - 1];
    if (lastEvent === undefined) break;
    const relevant = res.events.filter((e) => matchesAny(e.type, d.subscription));
    d.apply(relevant, refOf(lastEvent));
    events += relevant.length;
    d.progress(events);
    last = lastEvent.id;
    if (!res.moreFollows) break;
    maxResults = nextPageSize(d, maxResults, res.events);
  }
  return { events, pages };
}

export interface TimeseriesRead extends PagesRead {
  /**
   * `from` is an event under the prefix but the time series did not return it: the partition
   * does not hold it (pruned, or it keeps only part of the prefix), so events after it may be
   * missing too. Always false without `from` or when `from` is of another type.
   */
  checkpointMissing: boolean;
  /** The read stopped at that point, before applying anything after the checkpoint. */
  stopped: boolean;
}

/**
 * The prefix's events by a timeseries query, ascending by timestamp (every server id), applied
 * page by page. Without `from`: the whole series. With `from` (the checkpoint, an event Hat
 * still has): from its timestamp, dropping what is at or before it. When `from` is an event under
 * the prefix (`fromInPrefix`), the series must return it: if it does not, `checkpointMissing` is
 * reported — and with `stopIfCheckpointMissing` the read stops before applying events after it.
 */
export async function readTimeseriesPages(
  d: PageReaderDeps,
  from: EventRef | null,
  opts: { fromInPrefix: boolean; stopIfCheckpointMissing: boolean },
): Promise<TimeseriesRead> {
  let events = 0;
  let pages = 0;
  let maxResults = Math.min(FIRST_PAGE, d.pageSize);
  let tFrom: Timestamp | null = from === null ? null : { s: from.s, us: from.us };
  let sentinel: EventId | null = null;
  // What the current query start has already covered: first the checkpoint (events of its server
  // at or before it; other servers' events are left to the state's per-id duplicate rule), after a
  // restart everything up to the last returned event in the stream's (timestamp, id) order.
  let covered = (ref: EventRef): boolean =>
    from !== null && ref.server === from.server && compareRefs(ref, from) <= 0;
  const mustSee = from !== null && opts.fromInPrefix ? refKey(from) : null;
  let seen = mustSee === null;
  // A checkpoint under the prefix is in the stream if the series holds it: try it as the first
  // sentinel, so nothing of its session is read again. (Events of other servers with the very
  // same timestamp and a lower server id come before it in the stream and are taken as seen.) An
  // empty answer is ambiguous — nothing after it, or the series lacks it: if the series' newest
  // event from its timestamp on is the checkpoint, nothing happened; else read from its
  // timestamp, which tells.
  let tryingCheckpoint = from !== null && opts.fromInPrefix;
  if (tryingCheckpoint && from !== null) sentinel = eventIdOf(from);
  let lastReturned: EventRef | null = null;
  let moreFollowed = false;
  let restarts = 0;
  for (;;) {
    const res = await query(
      d,
      prefixTimeseries(d, { order: 'ascending', tFrom, maxResults, lastEventId: sentinel }),
      'catch-up query',
    );
    pages++;
    if (tryingCheckpoint && from !== null) {
      tryingCheckpoint = false;
      if (res.events.length > 0) seen = true;
      else {
        const newest = await query(
          d,
          prefixTimeseries(d, { order: 'descending', tFrom, maxResults: 1, lastEventId: null }),
          'timeseries probe',
        );
        pages++;
        const e = newest.events[0];
        if (e !== undefined && refKey(e.id) === refKey(from))
          return { events, pages, checkpointMissing: false, stopped: false };
        sentinel = null;
        continue;
      }
    }
    if (res.events.length === 0) {
      if (sentinel !== null && moreFollowed && lastReturned !== null) {
        // More followed the sentinel a moment ago; now Hat does not know it: the partition
        // dropped it (pruning). Go on from its timestamp, dropping what was read already.
        if (++restarts > MAX_SENTINEL_RESTARTS)
          throw new Error(
            `the time series keeps losing the event the catch-up pages from (${refKey(lastReturned)})`,
          );
        d.onSentinelLost?.(lastReturned);
        const upTo: EventRef = lastReturned;
        covered = (ref) => compareRefs(ref, upTo) <= 0;
        tFrom = { s: upTo.s, us: upTo.us };
        sentinel = null;
        moreFollowed = false;
        continue;
      }
      break;
    }
    const fresh: Event[] = [];
    let stop = false;
    for (const e of res.events) {
      const ref = refOf(e);
      if (!seen && refKey(ref) === mustSee) seen = true;
      if (covered(ref)) continue;
      if (!seen && from !== null && compareRefs(ref, from) > 0 && opts.stopIfCheckpointMissing) {
        stop = true;
        break;
      }
      fresh.push(e);
    }
    if (fresh.length > 0) {
      d.apply(fresh, null);
      events += fresh.length;
      d.progress(events);
    }
    if (stop) return { events, pages, checkpointMissing: true, stopped: true };
    const last = res.events[res.events.length - 1] as Event;
    lastReturned = refOf(last);
    sentinel = last.id;
    // The next page starts at the sentinel's own timestamp: Hat's LMDB walks its partition from
    // `tFrom` and skips every entry (of any type) until it meets the sentinel, so a fixed `tFrom`
    // would make each page rescan everything before it.
    tFrom = { s: lastReturned.s, us: lastReturned.us };
    moreFollowed = res.moreFollows;
    if (!res.moreFollows) break;
    maxResults = nextPageSize(d, maxResults, res.events);
  }
  return { events, pages, checkpointMissing: !seen, stopped: false };
}

function pageBytesOf(events: readonly Event[]): number {
  let n = 0;
  for (const e of events) {
    n += 64;
    for (const seg of e.type) n += seg.length;
    const p = e.payload;
    if (p !== null) n += p.kind === 'json' ? jsonPayloadSize(p) : p.data.length;
  }
  return n;
}
