/**
 * The Hat test peer's queries cost what hat-event 0.9.42's LMDB backend's do (issue 15), counted
 * as entries walked (decoded) rather than timed:
 *
 * - the peer answers exactly as before for its default (catch-all) partitions: every query kind
 *   is compared with a reference evaluation over the whole store (filter, sort, sentinel);
 * - configured partitions: the first partition of the query's order whose subscriptions overlap
 *   the query answers, and only with its own events; none → `[]`;
 * - the walks: a timeseries query from `tFrom` walks what lies between `tFrom` and its matches
 *   (from the partition's start without one), a sentinel is found by walking, a server query
 *   seeks to `lastEventId`; `latest` walks nothing;
 * - what recovery costs on a catch-all partition: a full replay without a snapshot walks every
 *   unrelated event before the models (the cost the issue is about); `full_replay: latest`
 *   walks nothing; a catch-up from a snapshot's checkpoint walks only what came after it.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  compareEventIds,
  type Event,
  type EventId,
  matchesAny,
  type QueryParams,
  type QueryResult,
  type QueryTimeseriesParams,
  type RegisterEvent,
  serverQuery,
  type Timestamp,
  timeseriesQuery,
} from '../../src/hat/eventer/common.js';
import { compareTimestamps, type HatPeer } from '../peer/hat-peer.js';
import {
  aimmEvent,
  assertMatchesHat,
  openBackend,
  PREFIX,
  peerContext,
  startPeer,
  tempDir,
} from './support.js';

const query = (peer: HatPeer, p: QueryParams): QueryResult =>
  (peer as unknown as { query(p: QueryParams): QueryResult }).query(p);

let noiseSeq = 0;
function noise(n: number, withSource = true): RegisterEvent[] {
  return Array.from({ length: n }, () => {
    const k = noiseSeq++;
    return {
      type: ['gateway', `device${k % 7}`, k % 3 === 0 ? 'state' : 'value'],
      sourceTimestamp: withSource ? { s: 1_700_000_000 + (k % 50), us: k % 1000 } : null,
      payload: { kind: 'json', text: String(k) },
    };
  });
}

/**
 * The peer's former evaluation, with LMDB's sentinel rule: the whole store sorted by the order's
 * timestamp; the sentinel is looked for among every entry the partition's walk meets (any type,
 * `timeseriesdb.py` `_Filter.process`), then the type and time filters apply to what follows it.
 */
function reference(store: readonly Event[], p: QueryTimeseriesParams): QueryResult {
  const bySource = p.orderBy === 'sourceTimestamp';
  const key = (e: Event) => (bySource ? (e.sourceTimestamp as Timestamp) : e.timestamp);
  const inRange = (t: Timestamp | null, from: Timestamp | null, to: Timestamp | null) =>
    (from === null && to === null) ||
    (t !== null &&
      (from === null || compareTimestamps(from, t) <= 0) &&
      (to === null || compareTimestamps(t, to) <= 0));
  // What the walk meets: the partition's entries between the order's from and to.
  let events = store.filter(
    (e) =>
      (!bySource || e.sourceTimestamp !== null) &&
      inRange(key(e), bySource ? p.sourceTFrom : p.tFrom, bySource ? p.sourceTTo : p.tTo),
  );
  events.sort((a, b) => compareTimestamps(key(a), key(b)) || compareEventIds(a.id, b.id));
  if (p.order === 'descending') events.reverse();
  if (p.lastEventId !== null) {
    const last = p.lastEventId as EventId;
    const i = events.findIndex((e) => compareEventIds(e.id, last) === 0);
    if (i < 0) return { events: [], moreFollows: false };
    events = events.slice(i + 1);
  }
  events = events.filter(
    (e) =>
      (p.eventTypes === null || matchesAny(e.type, p.eventTypes)) &&
      inRange(e.timestamp, p.tFrom, p.tTo) &&
      inRange(e.sourceTimestamp, p.sourceTFrom, p.sourceTTo),
  );
  const max = p.maxResults === null ? 4096 : p.maxResults;
  return { events: events.slice(0, max), moreFollows: events.length > max };
}

/**
 * These tests are about reading Hat's history (the `history` full replay and catch-ups), which is
 * no longer the default full replay (`latest_then_history` is): they ask for it.
 */
function openHistory(
  ctx: Parameters<typeof openBackend>[0],
  extra: Record<string, unknown> = {},
): ReturnType<typeof openBackend> {
  return openBackend(ctx, { full_replay: 'history', ...extra });
}

describe('Hat test peer: LMDB query cost', () => {
  it('default partitions answer every query as a whole-store evaluation does', async () => {
    const peer = await startPeer({ engineEvents: false });
    try {
      for (let r = 0; r < 6; r++) {
        peer.register(noise(40));
        peer.register([aimmEvent(r + 1, `m${r}`), aimmEvent(r + 2, `n${r}`)]);
        peer.register(noise(5, false));
      }
      const all = peer.events;
      const mid = all[Math.floor(all.length / 2)] as Event;
      const model = all.find((e) => e.type[0] === PREFIX[0]) as Event;
      const other = all.find((e) => e.type[0] === 'gateway') as Event;
      const variants: Partial<QueryTimeseriesParams>[] = [];
      for (const orderBy of ['timestamp', 'sourceTimestamp'] as const)
        for (const order of ['ascending', 'descending'] as const)
          for (const eventTypes of [null, [[...PREFIX, '*']], [['gateway', '?', 'state']]])
            for (const maxResults of [null, 1, 7])
              for (const lastEventId of [null, model.id, other.id])
                for (const tFrom of [null, mid.timestamp])
                  variants.push({ orderBy, order, eventTypes, maxResults, lastEventId, tFrom });
      variants.push({ tTo: mid.timestamp }, { sourceTFrom: { s: 1_700_000_010, us: 0 } });
      variants.push({ orderBy: 'sourceTimestamp', sourceTTo: { s: 1_700_000_020, us: 0 } });
      for (const v of variants) {
        const p = timeseriesQuery(v) as QueryTimeseriesParams;
        assert.deepEqual(query(peer, p), reference(all, p), JSON.stringify(v));
      }
      // Server queries: id order after lastEventId, persisted = flushed only.
      const first = all[0] as Event;
      const got = query(peer, serverQuery(1, { lastEventId: first.id, maxResults: 10 }));
      assert.deepEqual(got.events, all.slice(1, 11));
      assert.equal(got.moreFollows, true);
      assert.deepEqual(query(peer, serverQuery(1, { persisted: true })).events, []);
      peer.flush();
      assert.equal(query(peer, serverQuery(1, { persisted: true })).events.length, all.length);
      assert.deepEqual(query(peer, serverQuery(2, {})).events, []);
    } finally {
      await peer.close();
    }
  });

  it('configured partitions: the first overlapping one of the order answers, with its events only', async () => {
    const peer = await startPeer({
      engineEvents: false,
      partitions: [
        { orderBy: 'timestamp', subscriptions: [['gateway', '?', 'state']] },
        { orderBy: 'timestamp', subscriptions: [[...PREFIX, '*']] },
        { orderBy: 'timestamp', subscriptions: [['*']] },
      ],
    });
    try {
      peer.register(noise(30));
      peer.register([aimmEvent(1, 'a'), aimmEvent(2, 'b')]);
      peer.register(noise(30));
      const walked0 = peer.walked;
      const models = query(peer, timeseriesQuery({ eventTypes: [[...PREFIX, '*']] }));
      assert.equal(models.events.length, 2);
      assert.equal(peer.walked - walked0, 2, 'the prefix partition holds nothing else');
      // ['gateway', '*'] overlaps the first partition: only its (state) events.
      const g = query(peer, timeseriesQuery({ eventTypes: [['gateway', '*']] }));
      assert.equal(g.events.length, 20);
      assert.ok(g.events.every((e) => e.type[2] === 'state'));
      // No partition of that order → nothing.
      const s = query(peer, timeseriesQuery({ orderBy: 'sourceTimestamp' }));
      assert.deepEqual(s, { events: [], moreFollows: false });
    } finally {
      await peer.close();
    }
  });

  it('walks: from tFrom (or the start) to the matches, sentinels by walking, server queries seek', async () => {
    const peer = await startPeer({ engineEvents: false });
    try {
      peer.register(noise(1000));
      const [m1] = peer.register([aimmEvent(1, 'a')]) as Event[];
      peer.register(noise(500));
      const [m2] = peer.register([aimmEvent(2, 'b')]) as Event[];
      peer.register(noise(200));
      const walk = (p: QueryParams) => {
        const w0 = peer.walked;
        const res = query(peer, p);
        return { res, walked: peer.walked - w0 };
      };
      const types = [[...PREFIX, '*']];
      const asc = { eventTypes: types, order: 'ascending' as const };
      // From the partition's start: every unrelated event before the first match, then on until
      // maxResults + 1 matches or the end.
      const a = walk(timeseriesQuery({ ...asc, maxResults: 1 }));
      assert.deepEqual(a.res.events, [m1]);
      assert.equal(a.walked, 1000 + 1 + 500 + 1, 'walks to the second match (more follows?)');
      const all = walk(timeseriesQuery(asc));
      assert.equal(all.walked, peer.events.length, 'the whole partition');
      // From tFrom: a seek.
      const b = walk(timeseriesQuery({ ...asc, tFrom: m2?.timestamp ?? null }));
      assert.deepEqual(b.res.events, [m2]);
      assert.equal(b.walked, 1 + 200, 'from the model to the end');
      // A sentinel with tFrom at its own timestamp: found at once; without tFrom: walked to.
      const c = walk(
        timeseriesQuery({
          ...asc,
          tFrom: m1?.timestamp ?? null,
          lastEventId: m1?.id ?? null,
        }),
      );
      assert.deepEqual(c.res.events, [m2]);
      assert.equal(c.walked, 1 + 500 + 1 + 200);
      const d = walk(timeseriesQuery({ ...asc, lastEventId: m1?.id ?? null }));
      assert.deepEqual(d.res.events, [m2]);
      assert.equal(d.walked, peer.events.length);
      // Descending from the end, one result: back to the newest match and one more.
      const e = walk(timeseriesQuery({ eventTypes: types, order: 'descending', maxResults: 1 }));
      assert.deepEqual(e.res.events, [m2]);
      assert.equal(e.walked, 200 + 1 + 500 + 1);
      // Server query: seeks to lastEventId, walks maxResults + 1 of every type.
      const f = walk(serverQuery(1, { lastEventId: m1?.id ?? null, maxResults: 10 }));
      assert.equal(f.res.events.length, 10);
      assert.equal(f.walked, 11);
      // latest: a table.
      const g = walk({ kind: 'latest', eventTypes: types });
      assert.equal(g.res.events.length, 2);
      assert.equal(g.walked, 0);
      const h = walk({ kind: 'latest', eventTypes: [[...PREFIX, '2']] });
      assert.deepEqual(h.res.events, [m2]);
    } finally {
      await peer.close();
    }
  });

  describe('what recovery walks on a catch-all partition', () => {
    const N = 20_000;
    let peer: HatPeer;
    const tmp = tempDir();
    before(async () => {
      peer = await startPeer({ engineEvents: false });
      for (let i = 0; i < N; i += 2000) peer.register(noise(2000));
      peer.register(Array.from({ length: 50 }, (_, i) => aimmEvent(i + 1, `v${i}`)));
      peer.register([aimmEvent(3, 'again'), aimmEvent(7, 'again')]);
      peer.register(noise(100));
    });
    after(async () => {
      await peer.close();
      tmp.remove();
    });

    it('a full replay without a snapshot walks every unrelated event before the models', async () => {
      for (const catchUp of ['auto', 'timeseries'] as const) {
        const w0 = peer.walked;
        const b = await openHistory(peerContext(peer), { catch_up: catchUp });
        try {
          assert.ok(peer.walked - w0 >= N, `${catchUp}: walked ${peer.walked - w0}`);
          await assertMatchesHat(b, peer, catchUp);
        } finally {
          await b.close();
        }
      }
    });

    it('full_replay latest walks nothing; a catch-up from a checkpoint only what followed it', async () => {
      const w0 = peer.walked;
      const latest = await openBackend(peerContext(peer), { full_replay: 'latest' });
      await latest.close();
      assert.equal(peer.walked - w0, 0);

      const path = join(tmp.dir, 'snap.db');
      const first = await openHistory(peerContext(peer), { snapshot: { path } });
      await first.close();
      peer.register(noise(300));
      peer.register([aimmEvent(5, 'later')]);
      peer.register(noise(300));
      const w1 = peer.walked;
      const again = await openHistory(peerContext(peer), { snapshot: { path } });
      try {
        const walked = peer.walked - w1;
        // On top: our own connections' CONNECTED/DISCONNECTED events, and pages starting at the
        // timestamp of the last event they returned. Nothing of the 20 000 before the checkpoint.
        assert.ok(walked >= 600 && walked < 1500, `walked ${walked}`);
        await assertMatchesHat(again, peer, 'catch-up');
      } finally {
        await again.close();
      }
    });
  });
});
