/**
 * Recovery after (re)connecting. The connection is already subscribed to `[...prefix, '*']` (the
 * subscription is part of MsgInitReq) and the intake holds notifications until this is done.
 *
 * - With a checkpoint (from the snapshot, or from memory after a reconnect): check that the
 *   checkpoint event still exists on the server with the same timestamp (else Hat's store was
 *   reset or pruned, or the snapshot is ahead: rebuild), then catch up with `server` queries paged
 *   from the checkpoint (`lastEventId`, `maxResults`), applying only events under the prefix.
 * - Without a checkpoint, or to rebuild (`full_replay: history`, the default): a one-event
 *   timeseries query finds the server that wrote under the prefix, then that server's whole
 *   history is replayed with `server` queries from its first event (pages adapt to event size),
 *   so revisions (events per id) are exact. If no time series holds the prefix, or with
 *   `full_replay: latest`: one `latest` query (AIMM's startup scan; one message holds every model;
 *   Hat's LMDB `latest` covers only the types in its `latest.subscriptions`).
 */
import type { Logger } from 'pino';
import type { Event, EventerClient, QueryParams, QueryResult } from '../../hat/eventer/common.js';
import { matchesAny } from '../../hat/eventer/common.js';
import { type EventRef, eventIdOf, refKey, refOf } from './event-ref.js';

export type RecoveryMode = 'catch_up' | 'latest' | 'history';

export interface RecoveryDeps {
  client: EventerClient;
  checkpoint: EventRef | null;
  subscription: string[][];
  /** Most events per catch-up page. */
  pageSize: number;
  /** Bytes a catch-up page aims at. */
  pageBytes: number;
  timeoutMs: number;
  /** Without a checkpoint: also replay the server's history (exact revisions), not only `latest`. */
  history: boolean;
  logger: Logger;
  /** Applies events from Hat (origin remote); `scannedUpTo` moves the checkpoint past other types. */
  apply(events: Event[], scannedUpTo: EventRef | null): void;
  /** Forgets the state before a rebuild (reason for the log). */
  rebuild(reason: string): void;
  progress(eventsSoFar: number): void;
}

export interface RecoveryReport {
  /** `catch_up`: from the checkpoint; `latest`/`history`: a full replay. */
  mode: RecoveryMode;
  /** The state was thrown away first (checkpoint unknown to the server). */
  rebuilt: boolean;
  events: number;
  pages: number;
}

export class RecoveryTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what} got no response within ${ms} ms`);
    this.name = 'RecoveryTimeoutError';
  }
}

export async function recover(d: RecoveryDeps): Promise<RecoveryReport> {
  const cp = d.checkpoint;
  let rebuilt = false;
  if (cp !== null) {
    const problem = await verifyCheckpoint(d, cp);
    if (problem === null) return { ...(await catchUp(d, cp.server, cp)), rebuilt };
    d.logger.warn(
      { checkpoint: refKey(cp) },
      `event backend: rebuilding state from Hat: ${problem}`,
    );
    d.rebuild(problem);
    rebuilt = true;
  }
  if (d.history) {
    // Which server wrote under the prefix last? One small timeseries query tells.
    const probe = await query(
      d,
      {
        kind: 'timeseries',
        eventTypes: d.subscription,
        tFrom: null,
        tTo: null,
        sourceTFrom: null,
        sourceTTo: null,
        order: 'descending',
        orderBy: 'timestamp',
        maxResults: 1,
        lastEventId: null,
      },
      'timeseries probe',
    );
    const server = probe.events[0]?.id.server;
    if (server !== undefined) {
      // That server's whole history, paged: every event counted, so revisions are exact, and no
      // single message has to hold every model (as `latest` does).
      const report = await catchUp(d, server, null);
      return { mode: 'history', rebuilt, events: report.events, pages: report.pages + 1 };
    }
    d.logger.info('event backend: no time series holds the prefix; falling back to a latest query');
  }
  // AIMM's startup scan: the latest event of every type under the prefix, in one message.
  const latest = await query(d, { kind: 'latest', eventTypes: d.subscription }, 'latest query');
  d.apply(latest.events, null);
  d.progress(latest.events.length);
  return { mode: 'latest', rebuilt, events: latest.events.length, pages: 1 };
}

/** Null when the checkpoint event is on the server as we saw it; otherwise what is wrong. */
async function verifyCheckpoint(d: RecoveryDeps, cp: EventRef): Promise<string | null> {
  const res = await query(
    d,
    {
      kind: 'server',
      serverId: cp.server,
      persisted: false,
      maxResults: 1,
      lastEventId: { server: cp.server, session: cp.session, instance: cp.instance - 1 },
    },
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
  return null;
}

/** First page size of a catch-up; pages then double while they stay within the byte budget. */
const FIRST_PAGE = 16;

/**
 * Events of `server` after `from` (all of them for null), paged, applied page by page. Page sizes
 * adapt to the events' size: a page aims at `pageBytes` (models may be megabytes each) and never
 * asks for more than `pageSize` events.
 */
async function catchUp(
  d: RecoveryDeps,
  server: number,
  from: EventRef | null,
): Promise<Omit<RecoveryReport, 'rebuilt'>> {
  let last = from === null ? null : eventIdOf(from);
  let events = 0;
  let pages = 0;
  let maxResults = Math.min(FIRST_PAGE, d.pageSize);
  for (;;) {
    const res = await query(
      d,
      { kind: 'server', serverId: server, persisted: false, maxResults, lastEventId: last },
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
    const perEvent = Math.max(1, pageBytesOf(res.events) / res.events.length);
    maxResults = Math.max(
      1,
      Math.min(d.pageSize, maxResults * 2, Math.floor(d.pageBytes / perEvent)),
    );
  }
  return { mode: 'catch_up', events, pages };
}

function pageBytesOf(events: readonly Event[]): number {
  let n = 0;
  for (const e of events) {
    n += 64;
    for (const seg of e.type) n += seg.length;
    const p = e.payload;
    if (p !== null) n += p.kind === 'json' ? p.text.length : p.data.length;
  }
  return n;
}

async function query(d: RecoveryDeps, params: QueryParams, what: string): Promise<QueryResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RecoveryTimeoutError(what, d.timeoutMs)), d.timeoutMs);
  });
  try {
    return await Promise.race([d.client.query(params), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
