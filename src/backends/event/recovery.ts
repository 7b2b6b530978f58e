/**
 * Recovery after (re)connecting. The connection is already subscribed to `[...prefix, '*']` (the
 * subscription is part of MsgInitReq) and the intake holds notifications until this is done.
 *
 * - With a checkpoint (from the snapshot, or from memory after a reconnect): check that the
 *   checkpoint event still exists on the server with the same timestamp (else Hat's store was
 *   reset or pruned, or the snapshot is ahead: rebuild), then catch up from it.
 * - Without a checkpoint, or to rebuild (`full_replay: history`, the default): replay the
 *   prefix's whole history, so revisions (events per id) are exact. If nothing holds it in a time
 *   series, or with `full_replay: latest`: one `latest` query (AIMM's startup scan; one message
 *   holds every model; Hat's LMDB `latest` covers only the types in its `latest.subscriptions`).
 * - After a `history` replay, one `latest` query checks it: a model whose newest event (older than
 *   the last event read) was not applied means the history read was incomplete (a pruned time
 *   series, a partition holding part of the prefix, one server id's `server` pages): rebuild from
 *   that `latest` answer and count the revisions in the background (`latest_then_history`).
 *
 * Both read the history the way `catch_up` says (`history-pages.ts`):
 * - `timeseries`: a type-filtered timeseries query — only the prefix's events cross the wire, of
 *   every server id; LMDB answers it from one partition;
 * - `server`: `server` queries of one server id, every event type (complete, but in a SCADA/IoT
 *   Hat mostly unrelated events);
 * - `auto` (default): `timeseries` when a time series holds the prefix and reaches back to the
 *   checkpoint (the checkpoint event is in it, or — for a checkpoint of another type — the series'
 *   oldest event is not younger than it), else `server`.
 */
import type { Logger } from 'pino';
import type { Event, EventerClient, Timestamp } from '../../hat/eventer/common.js';
import { matchesAny, serverQuery } from '../../hat/eventer/common.js';
import type { CatchUpMode } from './config.js';
import { compareRefs, type EventRef, refKey, refOf } from './event-ref.js';
import { decodeModelEvent, parseInstanceId } from './format.js';
import {
  type PageReaderDeps,
  type PagesRead,
  prefixTimeseries,
  type QueryKind,
  query,
  readServerPages,
  readTimeseriesPages,
} from './history-pages.js';

export type RecoveryMode = 'catch_up' | 'latest' | 'history' | 'latest_then_history';
/** The queries that read the history: `latest` for AIMM's scan. */
export type RecoveryVia = 'timeseries' | 'server' | 'latest';

export interface RecoveryDeps {
  client: EventerClient;
  checkpoint: EventRef | null;
  subscription: string[][];
  /** Most events per catch-up page. */
  pageSize: number;
  /** Bytes a catch-up page aims at. */
  pageBytes: number;
  timeoutMs: number;
  /** Without a checkpoint: replay the history (exact revisions), not only `latest`. */
  history: boolean;
  /**
   * With `history`: become ready from one `latest` query and leave the history to the background
   * (`full_replay: latest_then_history`, `revision-completion.ts`); the `latest` events are then
   * reported as `bases`. An empty `latest` answer replays the history as `history` does.
   */
  latestFirst?: boolean;
  /** Called before the `latest` events of a `latestFirst` replay are applied (revisions provisional). */
  provisional?(): void;
  /** How the history is read (see the module comment). */
  catchUp: CatchUpMode;
  logger: Logger;
  /** Applies events from Hat (origin remote); `scannedUpTo` moves the checkpoint past other types. */
  apply(events: Event[], scannedUpTo: EventRef | null): void;
  /** Forgets the state before a rebuild (reason for the log). */
  rebuild(reason: string): void;
  /**
   * The model prefix and the event the state applied last for an id: with both, a `history`
   * replay is checked against `latest` (a pruned time series lacks part of the history).
   */
  prefix?: readonly string[];
  appliedEvent?(instanceId: number): EventRef | undefined;
  progress(eventsSoFar: number): void;
  /** Events received by each query (for metrics); optional. */
  received?(kind: QueryKind, events: number): void;
}

export interface RecoveryReport {
  /** `catch_up`: from the checkpoint; `latest`/`history`: a full replay. */
  mode: RecoveryMode;
  via: RecoveryVia;
  /** The state was thrown away first (checkpoint unknown to the server). */
  rebuilt: boolean;
  /** Events under the prefix handed to the state. */
  events: number;
  /** Events received from Hat by all of this recovery's queries (checks and probes included). */
  received: number;
  pages: number;
  /** `latest_then_history`: the `latest` answer, each id's newest event (revisions provisional). */
  bases?: Event[];
}

export async function recover(d: RecoveryDeps): Promise<RecoveryReport> {
  let received = 0;
  const r: PageReaderDeps = {
    ...d,
    received: (kind, n) => {
      received += n;
      d.received?.(kind, n);
    },
    onSentinelLost: (last) =>
      d.logger.warn(
        { eventId: refKey(last) },
        'event backend: the time series lost the event the catch-up paged from (pruned?); going on from its timestamp',
      ),
  };
  const cp = d.checkpoint;
  let rebuilt = false;
  if (cp !== null) {
    const check = await verifyCheckpoint(r, cp);
    if (typeof check !== 'string') {
      const res = await catchUp(d, r, cp, check);
      return { mode: 'catch_up', ...res, rebuilt, received };
    }
    d.logger.warn({ checkpoint: refKey(cp) }, `event backend: rebuilding state from Hat: ${check}`);
    d.rebuild(check);
    rebuilt = true;
  }
  if (d.history && d.latestFirst === true) {
    const latest = await query(r, { kind: 'latest', eventTypes: d.subscription }, 'latest query');
    if (latest.events.length > 0)
      return { ...startFromLatest(d, latest.events), rebuilt, received, pages: 1 };
  }
  if (d.history) {
    // The newest timestamp the replay read: `latest` events after it were written meanwhile and
    // come as notifications (held by the intake until recovery is done), so only older ones count.
    let end: Timestamp | null = null;
    const apply: RecoveryDeps['apply'] = (events, scannedUpTo) => {
      for (const e of events)
        if (end === null || compareTimestamps(e.timestamp, end) > 0) end = e.timestamp;
      d.apply(events, scannedUpTo);
    };
    const res = await replayHistory({ ...d, apply }, { ...r, apply });
    if (res !== null) {
      const gap = end === null ? null : await historyGap(d, r, end);
      if (gap === null) return { mode: 'history', ...res, rebuilt, received };
      // A pruned time series (LMDB's partition `limit`): models whose newest event it lacks would
      // be missing or stale. Start over from `latest` and count what the series still holds in
      // the background, as latest_then_history does.
      const reason = `the time series lacks the newest event of ${gap.missing} models (pruned?): their history is incomplete`;
      d.logger.warn(
        { models: gap.missing },
        `event backend: ${reason}; rebuilding from the latest query, revisions counted from what the time series still holds`,
      );
      d.rebuild(reason);
      return { ...startFromLatest(d, gap.latest), rebuilt: true, received, pages: res.pages + 1 };
    }
    d.logger.info('event backend: no time series holds the prefix; falling back to a latest query');
  }
  // AIMM's startup scan: the latest event of every type under the prefix, in one message.
  const latest = await query(r, { kind: 'latest', eventTypes: d.subscription }, 'latest query');
  d.apply(latest.events, null);
  d.progress(latest.events.length);
  return {
    mode: 'latest',
    via: 'latest',
    rebuilt,
    events: latest.events.length,
    received,
    pages: 1,
  };
}

type Read = PagesRead & { via: RecoveryVia };

/**
 * The checkpoint event as the server has it, or what is wrong: it is gone (Hat's store was reset
 * or pruned, or the snapshot is ahead of it) or has another timestamp (reset).
 */
async function verifyCheckpoint(r: PageReaderDeps, cp: EventRef): Promise<Event | string> {
  const res = await query(
    r,
    serverQuery(cp.server, {
      maxResults: 1,
      lastEventId: { server: cp.server, session: cp.session, instance: cp.instance - 1 },
    }),
    'checkpoint check',
  );
  const e = res.events[0];
  if (e === undefined)
    return `checkpoint event ${refKey(cp)} is not on the Hat server (its store was reset or pruned, or the snapshot is ahead of it)`;
  const got = refOf(e);
  if (refKey(got) !== refKey(cp))
    return `checkpoint event ${refKey(cp)} is not on the Hat server (next there is ${refKey(got)}; its store was reset or pruned)`;
  if (got.s !== cp.s || got.us !== cp.us)
    return `checkpoint event ${refKey(cp)} has another timestamp on the Hat server (its store was reset)`;
  return e;
}

/** Everything after the verified checkpoint `cp` (`cpEvent` is that event as Hat has it). */
async function catchUp(
  d: RecoveryDeps,
  r: PageReaderDeps,
  cp: EventRef,
  cpEvent: Event,
): Promise<Read> {
  let probes = 0;
  let applied = 0;
  if (d.catchUp !== 'server') {
    const inPrefix = matchesAny(cpEvent.type, d.subscription);
    let gap: string | null = null;
    if (!inPrefix) {
      // The checkpoint is another type's event (a server-query catch-up scanned past it): does a
      // time series hold the prefix, and does it reach back to the checkpoint?
      probes++;
      const oldest = await oldestInSeries(r);
      if (oldest === undefined) gap = 'no time series holds the prefix';
      else if (oldest.s > cp.s || (oldest.s === cp.s && oldest.us > cp.us))
        gap = `the time series starts after the checkpoint (its oldest event is ${refKey(oldest)})`;
    }
    const auto = d.catchUp === 'auto';
    if (gap === null || !auto) {
      const res = await readTimeseriesPages(r, cp, {
        fromInPrefix: inPrefix,
        stopIfCheckpointMissing: auto,
      });
      if (res.checkpointMissing)
        gap = `the time series does not hold the checkpoint event ${refKey(cp)}`;
      if (gap === null || !auto) {
        if (gap !== null)
          d.logger.warn(
            { checkpoint: refKey(cp) },
            `event backend: caught up from a time series although ${gap}: events since the checkpoint may be missing (catch_up: auto or server reads the server's complete history)`,
          );
        return { events: res.events, pages: res.pages + probes, via: 'timeseries' };
      }
      // Events of other servers before the checkpoint may have been applied already.
      applied = res.events;
      probes += res.pages;
    }
    d.logger.info(
      { checkpoint: refKey(cp) },
      `event backend: catching up with server queries: ${gap}`,
    );
  }
  const res = await readServerPages(r, cp.server, cp);
  return { events: res.events + applied, pages: res.pages + probes, via: 'server' };
}

/** The whole history without a checkpoint, or null when no time series holds the prefix. */
export async function replayHistory(d: RecoveryDeps, r: PageReaderDeps): Promise<Read | null> {
  if (d.catchUp !== 'server') {
    // Every server's events under the prefix, oldest first; an empty series → `latest`.
    const res = await readTimeseriesPages(r, null, {
      fromInPrefix: false,
      stopIfCheckpointMissing: false,
    });
    return res.events === 0 ? null : { events: res.events, pages: res.pages, via: 'timeseries' };
  }
  // Which server wrote under the prefix last? One small timeseries query tells; then that
  // server's whole history, paged (every event counted: revisions are exact).
  const probe = await query(
    r,
    prefixTimeseries(d, { order: 'descending', tFrom: null, maxResults: 1, lastEventId: null }),
    'timeseries probe',
  );
  const server = probe.events[0]?.id.server;
  if (server === undefined) return null;
  const res = await readServerPages(r, server, null);
  return { events: res.events, pages: res.pages + 1, via: 'server' };
}

/**
 * `latest_then_history`'s start: the state is marked provisional and takes each model's newest
 * event as its base; the history is counted in the background (`revision-completion.ts`).
 */
function startFromLatest(
  d: RecoveryDeps,
  latest: Event[],
): Pick<RecoveryReport, 'mode' | 'via' | 'events' | 'bases'> {
  d.provisional?.();
  d.apply(latest, null);
  d.progress(latest.length);
  return { mode: 'latest_then_history', via: 'latest', events: latest.length, bases: latest };
}

function compareTimestamps(a: Timestamp, b: Timestamp): number {
  return Number(a.s) - Number(b.s) || a.us - b.us;
}

/**
 * After a `history` replay: the `latest` answer when some model's newest event (a well-formed
 * model event or tombstone) older than the newest event the replay read (`end`) is not what the
 * state applied for its id — the time series lacks it, so the replay missed the model, its update
 * or its delete — else null. One `latest` query.
 */
async function historyGap(
  d: RecoveryDeps,
  r: PageReaderDeps,
  end: Timestamp,
): Promise<{ latest: Event[]; missing: number } | null> {
  const prefix = d.prefix;
  const appliedEvent = d.appliedEvent;
  if (prefix === undefined || appliedEvent === undefined) return null;
  const latest = await query(r, { kind: 'latest', eventTypes: d.subscription }, 'latest check');
  let missing = 0;
  for (const e of latest.events) {
    const parsed = parseInstanceId(prefix, e.type);
    if (!('id' in parsed)) continue;
    const applied = appliedEvent(parsed.id);
    if (applied !== undefined && compareRefs(applied, refOf(e)) >= 0) continue;
    if (compareTimestamps(e.timestamp, end) >= 0) continue; // written after the replay read
    // Not applied: the series lacks it, unless it is malformed (never applied). Decoded only here.
    if (decodeModelEvent(prefix, e).kind !== 'malformed') missing++;
  }
  return missing === 0 ? null : { latest: latest.events, missing };
}

/** The oldest event under the prefix in the time series Hat answers from (undefined: none). */
async function oldestInSeries(r: PageReaderDeps): Promise<EventRef | undefined> {
  const res = await query(
    r,
    prefixTimeseries(r, { order: 'ascending', tFrom: null, maxResults: 1, lastEventId: null }),
    'timeseries probe',
  );
  const e = res.events[0];
  return e === undefined ? undefined : refOf(e);
}
