/**
 * Recovery from a "noisy" Hat — a SCADA/IoT event server holding many unrelated events next to a
 * few models: with `catch_up: auto` (default) full replay, restart from a snapshot and catch-up
 * after a reconnect transfer only the prefix's events (counted by the backend's metric and, as
 * bytes, by a proxy), while `catch_up: server` reads every event — with the same models and exact
 * revisions. Also: sessions (one timestamp each) split across pages, two server ids, a checkpoint
 * of another type, a time series that does not reach back to the checkpoint (auto falls back to
 * server queries), a sentinel the time series lost between two pages.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { refKey, refOf } from '../../src/backends/event/event-ref.js';
import { recover } from '../../src/backends/event/recovery.js';
import { connect } from '../../src/hat/eventer/client.js';
import {
  type Event,
  jsonPayload,
  type QueryTimeseriesParams,
  type RegisterEvent,
  type Timestamp,
} from '../../src/hat/eventer/common.js';
import type { HatPeer } from '../peer/hat-peer.js';
import {
  aimmEvent,
  assertMatchesHat,
  copySnapshot,
  interceptQueries,
  metricValue,
  openBackend,
  PREFIX,
  peerContext,
  type RecordingProxy,
  recovered,
  startPeer,
  startRecordingProxy,
  str,
  type TestContext,
  tempDir,
  waitFor,
} from './support.js';

const NOISE = 20_000;

const tombstone = (id: number): RegisterEvent => ({
  type: [...PREFIX, String(id)],
  sourceTimestamp: null,
  payload: null,
});

let noiseSeq = 0;
/** `n` measurements and states of other types (in sessions of 1000), as a SCADA Hat holds. */
function noise(peer: HatPeer, n: number): void {
  for (let i = 0; i < n; i += 1000) {
    const batch: RegisterEvent[] = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) {
      const k = noiseSeq++;
      batch.push({
        type: ['gateway', `device${k % 40}`, k % 3 === 0 ? 'state' : 'measurement', 'value'],
        sourceTimestamp: { s: 1_700_000_000 + k, us: 0 },
        payload: jsonPayload({ value: k * 0.5, quality: 'good' }),
      });
    }
    peer.register(batch);
  }
}

/** One session's events: models 1..`models` (`r{round}-{id}`), another type after every `every`th. */
function mixedSession(round: number, models: number, every: number): RegisterEvent[] {
  const out: RegisterEvent[] = [];
  for (let id = 1; id <= models; id++) {
    out.push(aimmEvent(id, `r${round}-${id}`));
    if (id % every === 0)
      out.push({ type: ['gateway', 'x'], sourceTimestamp: null, payload: null });
  }
  return out;
}

/** Prefix events in Hat (every server id). */
function prefixEvents(peer: HatPeer): number {
  return peer.events.filter((e) => e.type[0] === PREFIX[0] && e.type[1] === PREFIX[1]).length;
}

function tsOf(e: Event | undefined): Timestamp {
  assert.ok(e !== undefined);
  return e.timestamp;
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

describe('event backend recovery from a noisy Hat', { timeout: 60_000 }, () => {
  let peer: HatPeer;
  let proxy: RecordingProxy;
  before(async () => {
    peer = await startPeer();
    proxy = await startRecordingProxy(peer);
  });
  after(async () => {
    await proxy.close();
    await peer.close();
  });

  /** 20 models, 10 updates and a delete among 20k unrelated events. */
  function seedNoisy(): void {
    peer.resetStore();
    noise(peer, NOISE / 4);
    peer.register(Array.from({ length: 20 }, (_, i) => aimmEvent(i + 1, `v1-${i + 1}`)));
    noise(peer, NOISE / 4);
    for (let id = 1; id <= 10; id++) peer.register([aimmEvent(id, `v2-${id}`)]);
    noise(peer, NOISE / 4);
    peer.register([tombstone(3)]);
    noise(peer, NOISE / 4);
  }

  it('full replay: auto reads only the prefix from the time series; server reads everything; same models and revisions', async () => {
    seedNoisy();
    assert.equal(prefixEvents(peer), 31);

    const ctx = peerContext(proxy);
    const bytes0 = proxy.receivedBytes;
    let b = await openHistory(ctx);
    const autoBytes = proxy.receivedBytes - bytes0;
    try {
      const rec = recovered(ctx);
      // received: the 31 prefix events, then the `latest` check (one event per id, 20 ids).
      assert.deepEqual(
        [rec.mode, rec.via, rec.events, rec.received],
        ['history', 'timeseries', 31, 51],
      );
      assert.equal(
        metricValue(ctx, 'event_recovery_received_events_total', 'query="timeseries"'),
        31,
      );
      assert.equal(metricValue(ctx, 'event_recovery_received_events_total', 'query="server"'), 0);
      await assertMatchesHat(b, peer, 'auto');
    } finally {
      await b.close();
    }

    const ctx2 = peerContext(proxy);
    const bytes1 = proxy.receivedBytes;
    b = await openHistory(ctx2, { catch_up: 'server' });
    const serverBytes = proxy.receivedBytes - bytes1;
    try {
      const rec = recovered(ctx2);
      assert.deepEqual([rec.mode, rec.via, rec.events], ['history', 'server', 31]);
      assert.ok(rec.received > NOISE, `server queries read every event (${rec.received})`);
      await assertMatchesHat(b, peer, 'server');
    } finally {
      await b.close();
    }
    // Independent of our own counting: what crossed the socket.
    assert.ok(autoBytes < 32 * 1024, `auto received ${autoBytes} bytes`);
    assert.ok(serverBytes > 20 * autoBytes, `server ${serverBytes} bytes vs auto ${autoBytes}`);
  });

  it('snapshot restart: catch-up reads only the prefix’s events; server reads all since the checkpoint', async () => {
    seedNoisy();
    const { dir, remove } = tempDir();
    const snapshot = { path: join(dir, 'event.db') };
    const copy = { path: join(dir, 'copy.db') };
    try {
      let b = await openHistory(peerContext(peer), { snapshot });
      await b.close();
      // While the daemon is down: 20k unrelated events, 4 updates and 2 new models among them.
      noise(peer, NOISE / 2);
      for (const id of [1, 2, 21, 5]) peer.register([aimmEvent(id, `down-${id}`)]);
      noise(peer, NOISE / 2);
      peer.register([aimmEvent(22, 'down-22'), aimmEvent(1, 'down-1b')]);
      noise(peer, 100);
      copySnapshot(snapshot.path, copy.path);

      const ctx = peerContext(proxy);
      const bytes0 = proxy.receivedBytes;
      b = await openHistory(ctx, { snapshot, catch_up_page_size: 4 });
      const autoBytes = proxy.receivedBytes - bytes0;
      try {
        const rec = recovered(ctx);
        assert.deepEqual(
          [rec.mode, rec.via, rec.rebuilt, rec.events],
          ['catch_up', 'timeseries', false, 6],
        );
        // The checkpoint check (1 event), then the 6 (the checkpoint is the sentinel).
        assert.equal(rec.received, 1 + 6);
        assert.ok(autoBytes < 16 * 1024, `auto received ${autoBytes} bytes`);
        await assertMatchesHat(b, peer, 'auto catch-up');
        assert.equal(str((await b.getModel(1))?.instance ?? new Uint8Array()), 'down-1b');
      } finally {
        await b.close();
      }

      // Nothing new under the prefix (only unrelated events): the check and one probe.
      noise(peer, 1000);
      const ctx1 = peerContext(peer);
      b = await openHistory(ctx1, { snapshot });
      try {
        const rec = recovered(ctx1);
        assert.deepEqual(
          [rec.mode, rec.via, rec.events, rec.received],
          ['catch_up', 'timeseries', 0, 2],
        );
        await assertMatchesHat(b, peer, 'nothing new');
      } finally {
        await b.close();
      }

      // The same snapshot state with server queries: the same result, every event read.
      const ctx2 = peerContext(peer);
      b = await openHistory(ctx2, { snapshot: copy, catch_up: 'server' });
      try {
        const rec = recovered(ctx2);
        assert.deepEqual([rec.mode, rec.via, rec.rebuilt], ['catch_up', 'server', false]);
        assert.equal(rec.events, 6);
        assert.ok(rec.received > NOISE, `server read everything since (${rec.received})`);
        await assertMatchesHat(b, peer, 'server catch-up');
      } finally {
        await b.close();
      }
    } finally {
      remove();
    }
  });

  it('a reconnect after an outage catches up only the prefix’s events', async () => {
    seedNoisy();
    const ctx = peerContext(peer);
    const b = await openHistory(ctx);
    try {
      await assertMatchesHat(b, peer, 'start');
      await peer.stop();
      await waitFor(() => !b.status().connected, 'disconnected');
      noise(peer, NOISE / 2);
      peer.register([aimmEvent(7, 'outage-7'), tombstone(8), aimmEvent(24, 'outage-24')]);
      noise(peer, NOISE / 2);
      peer.register([aimmEvent(7, 'outage-7b')]);
      const received0 = metricValue(
        ctx,
        'event_recovery_received_events_total',
        'query="timeseries"',
      );
      const server0 = metricValue(ctx, 'event_recovery_received_events_total', 'query="server"');
      await peer.start();
      await waitFor(() => ctx.logs.find(/recovered from Hat/).length === 2, 'second recovery');
      await waitFor(() => b.status().ready, 'ready again');
      const rec = recovered(ctx);
      assert.deepEqual([rec.mode, rec.via, rec.events], ['catch_up', 'timeseries', 4]);
      const viaTimeseries =
        metricValue(ctx, 'event_recovery_received_events_total', 'query="timeseries"') - received0;
      const viaServer =
        metricValue(ctx, 'event_recovery_received_events_total', 'query="server"') - server0;
      assert.equal(viaTimeseries, 4, 'the 4 model events of the outage, nothing else');
      assert.equal(viaServer, 1, 'only the checkpoint check');
      await assertMatchesHat(b, peer, 'after the outage');
      assert.equal((await b.getModel(7))?.revision, 4);
    } finally {
      await b.close();
    }
  });

  it('sessions split across pages (equal timestamps): every event applied once, exact revisions', async () => {
    peer.resetStore();
    const { dir, remove } = tempDir();
    const snapshot = { path: join(dir, 'event.db') };
    try {
      // Sessions of 25 model events (one timestamp each), mixed with other types in one session.
      for (let round = 0; round < 3; round++) peer.register(mixedSession(round, 25, 5));
      const ctx = peerContext(peer);
      let b = await openHistory(ctx, { snapshot, catch_up_page_size: 7 });
      assert.deepEqual(
        [recovered(ctx).via, recovered(ctx).events],
        ['timeseries', 75],
        '75 events in pages of at most 7 (sessions of 25 share a timestamp)',
      );
      await assertMatchesHat(b, peer, 'full replay');
      await b.close();
      for (let round = 3; round < 6; round++) peer.register(mixedSession(round, 25, 5));
      const ctx2 = peerContext(peer);
      b = await openHistory(ctx2, { snapshot, catch_up_page_size: 7 });
      try {
        assert.deepEqual(
          [recovered(ctx2).mode, recovered(ctx2).via, recovered(ctx2).events],
          ['catch_up', 'timeseries', 75],
        );
        await assertMatchesHat(b, peer, 'catch-up');
        assert.equal((await b.getModel(25))?.revision, 6);
      } finally {
        await b.close();
      }
    } finally {
      remove();
    }
  });

  it('every timeseries page starts at its sentinel’s timestamp (LMDB walks from tFrom to the sentinel)', async () => {
    peer.resetStore();
    for (let round = 0; round < 6; round++) {
      peer.register(Array.from({ length: 20 }, (_, i) => aimmEvent(i + 1, `r${round}`)));
      noise(peer, 200);
    }
    const ctx = peerContext(peer);
    const paged: QueryTimeseriesParams[] = [];
    interceptQueries(ctx, (params, client) => {
      if (params.kind === 'timeseries' && params.lastEventId !== null) paged.push(params);
      return client.query(params);
    });
    const b = await openHistory(ctx, { catch_up_page_size: 8 });
    try {
      assert.equal(recovered(ctx).events, 120);
      assert.ok(paged.length >= 10, `${paged.length} pages with a sentinel`);
      for (const p of paged) {
        const id = p.lastEventId;
        const sentinel = peer.events.find(
          (e) =>
            e.id.server === id?.server &&
            e.id.session === id.session &&
            e.id.instance === id.instance,
        );
        assert.deepEqual(p.tFrom, sentinel?.timestamp);
      }
    } finally {
      await b.close();
    }
  });

  it('two server ids: auto replays and catches up both; server follows one, the latest check completes it', async () => {
    peer.resetStore();
    const { dir, remove } = tempDir();
    const snapshot = { path: join(dir, 'event.db') };
    try {
      noise(peer, 2000);
      peer.register([aimmEvent(1, 's1-a'), aimmEvent(2, 's1-b')]);
      peer.register([aimmEvent(3, 's2-a'), aimmEvent(1, 's2-b')], { serverId: 2 });
      noise(peer, 2000);
      peer.register([aimmEvent(2, 's1-c')]);
      peer.register([aimmEvent(4, 's2-c')], { serverId: 2 }); // the last: the checkpoint's server is 2

      const ctx = peerContext(peer);
      let b = await openHistory(ctx, { snapshot });
      assert.deepEqual([recovered(ctx).via, recovered(ctx).events], ['timeseries', 6]);
      await assertMatchesHat(b, peer, 'two servers, full replay');
      await b.close();

      // While down: both servers write; the checkpoint (server 2's event) is checked on server 2.
      peer.register([aimmEvent(5, 's1-d')]);
      noise(peer, 2000);
      peer.register([aimmEvent(3, 's2-d'), tombstone(4)], { serverId: 2 });
      const ctx2 = peerContext(peer);
      b = await openHistory(ctx2, { snapshot });
      try {
        const rec = recovered(ctx2);
        assert.deepEqual(
          [rec.mode, rec.via, rec.rebuilt, rec.events],
          ['catch_up', 'timeseries', false, 3],
        );
        await assertMatchesHat(b, peer, 'two servers, catch-up');
      } finally {
        await b.close();
      }

      // catch_up: server follows the server id that wrote last (2) and misses server 1's models;
      // the `latest` check after the replay sees it and rebuilds from `latest` (revisions of
      // server 1's models then count only what server 2's history holds: lower bounds).
      const ctx3 = peerContext(peer);
      b = await openHistory(ctx3, { catch_up: 'server' });
      try {
        assert.deepEqual(
          [recovered(ctx3).mode, recovered(ctx3).via, recovered(ctx3).rebuilt],
          ['latest_then_history', 'latest', true],
        );
        assert.deepEqual(
          (await b.getModels()).map((m) => m.instanceId),
          [1, 2, 3, 5],
          "both servers' models",
        );
      } finally {
        await b.close();
      }
    } finally {
      remove();
    }
  });

  it('a checkpoint of another type (after a server-query catch-up): auto goes on with the time series', async () => {
    seedNoisy();
    const { dir, remove } = tempDir();
    const snapshot = { path: join(dir, 'event.db') };
    try {
      let b = await openHistory(peerContext(peer), { snapshot, catch_up: 'server' });
      await b.close(); // its checkpoint is the last (unrelated) event it scanned
      noise(peer, 5000);
      peer.register([aimmEvent(2, 'later-2')]);
      noise(peer, 5000);
      const ctx = peerContext(peer);
      b = await openHistory(ctx, { snapshot });
      try {
        const rec = recovered(ctx);
        assert.deepEqual([rec.mode, rec.via, rec.events], ['catch_up', 'timeseries', 1]);
        // checkpoint check + oldest-event probe + the one event
        assert.equal(rec.received, 3);
        await assertMatchesHat(b, peer, 'after a non-prefix checkpoint');
      } finally {
        await b.close();
      }
    } finally {
      remove();
    }
  });

  it('a time series that does not reach back to the checkpoint: auto falls back to server queries', async () => {
    seedNoisy();
    const { dir, remove } = tempDir();
    const snapshot = { path: join(dir, 'event.db') };
    const copy = { path: join(dir, 'copy.db') };
    try {
      let b = await openHistory(peerContext(peer), { snapshot });
      await b.close();
      peer.register([aimmEvent(30, 'pruned-30')]);
      noise(peer, 1000);
      const [kept] = peer.register([aimmEvent(31, 'kept-31')]);
      noise(peer, 1000);
      copySnapshot(snapshot.path, copy.path);
      // A partition that has dropped everything before event 31 (its retention limit).
      const horizon = tsOf(kept);
      const pruned = (ctx: TestContext) =>
        interceptQueries(ctx, (params, client) => {
          if (params.kind !== 'timeseries') return client.query(params);
          const p: QueryTimeseriesParams = { ...params };
          const from = p.tFrom;
          if (from === null || from.s < horizon.s || (from.s === horizon.s && from.us < horizon.us))
            p.tFrom = horizon;
          return client.query(p);
        });

      const ctx = peerContext(peer);
      pruned(ctx);
      b = await openHistory(ctx, { snapshot });
      try {
        const rec = recovered(ctx);
        assert.deepEqual([rec.mode, rec.via, rec.events], ['catch_up', 'server', 2]);
        assert.equal(ctx.logs.find(/does not hold the checkpoint event/).length, 1);
        await assertMatchesHat(b, peer, 'fallback');
      } finally {
        await b.close();
      }

      // catch_up: timeseries trusts the series: it warns, and model 30 is missing.
      const ctx2 = peerContext(peer);
      pruned(ctx2);
      b = await openHistory(ctx2, { snapshot: copy, catch_up: 'timeseries' });
      try {
        assert.deepEqual([recovered(ctx2).via, recovered(ctx2).events], ['timeseries', 1]);
        assert.equal(ctx2.logs.find(/events since the checkpoint may be missing/).length, 1);
        assert.equal(await b.getModel(30), null);
        assert.equal(str((await b.getModel(31))?.instance ?? new Uint8Array()), 'kept-31');
      } finally {
        await b.close();
      }
    } finally {
      remove();
    }
  });

  it('a sentinel the time series lost between two pages: the read goes on from its timestamp', async () => {
    peer.resetStore();
    for (let round = 0; round < 4; round++) {
      peer.register(Array.from({ length: 30 }, (_, i) => aimmEvent(i + 1, `r${round}`)));
      noise(peer, 500);
    }
    const ctx = peerContext(peer);
    let lost = 0;
    interceptQueries(ctx, (params, client) => {
      // The second page with a sentinel: answer as Hat does for an id it no longer has.
      if (params.kind === 'timeseries' && params.lastEventId !== null && ++lost === 2)
        return Promise.resolve({ events: [], moreFollows: false });
      return client.query(params);
    });
    const b = await openHistory(ctx, { catch_up_page_size: 8 });
    try {
      assert.ok(lost > 2, 'paging went on after the lost sentinel');
      assert.equal(ctx.logs.find(/lost the event the catch-up paged from/).length, 1);
      assert.deepEqual([recovered(ctx).via, recovered(ctx).events], ['timeseries', 120]);
      await assertMatchesHat(b, peer, 'lost sentinel');
    } finally {
      await b.close();
    }
  });
});

describe('recover() from a checkpoint inside a session', { timeout: 30_000 }, () => {
  it('prefix or other-type checkpoint mid-session, small pages: exactly the prefix events after it, once', async () => {
    const peer = await startPeer({ engineEvents: false });
    const client = await connect(
      { host: peer.host, port: peer.port },
      { clientName: 'recover-test', subscriptions: [[...PREFIX, '*']] },
    );
    try {
      // Three mixed sessions (one timestamp each): models 1..12 with other types in between.
      for (let round = 0; round < 3; round++) peer.register(mixedSession(round, 12, 4));
      noise(peer, 50);
      const all = [...peer.events];
      const isModel = (e: Event) => e.type[0] === PREFIX[0];
      const middle = all.filter((e) => e.id.session === 2);
      const prefixCp = middle.find((e) => isModel(e) && e.type[2] === '7');
      const otherCp = middle.find((e) => !isModel(e) && e.id.instance > 5);
      assert.ok(prefixCp !== undefined && otherCp !== undefined);
      for (const cpEvent of [prefixCp, otherCp]) {
        const cp = refOf(cpEvent);
        const expected = all
          .filter(
            (e) =>
              isModel(e) &&
              (e.id.session > cp.session ||
                (e.id.session === cp.session && e.id.instance > cp.instance)),
          )
          .map((e) => refKey(e.id));
        for (const mode of ['auto', 'timeseries', 'server'] as const) {
          const applied: string[] = [];
          const report = await recover({
            client,
            checkpoint: cp,
            subscription: [[...PREFIX, '*']],
            pageSize: 3,
            pageBytes: 1 << 20,
            timeoutMs: 5000,
            history: true,
            catchUp: mode,
            logger: pino({ level: 'silent' }),
            apply: (events) => {
              for (const e of events) applied.push(refKey(e.id));
            },
            rebuild: () => assert.fail('no rebuild'),
            progress: () => {},
          });
          const what = `${mode} from ${refKey(cp)}`;
          assert.equal(report.mode, 'catch_up', what);
          assert.equal(report.via, mode === 'server' ? 'server' : 'timeseries', what);
          assert.deepEqual(applied, expected, what);
          assert.equal(report.events, expected.length, what);
        }
      }
    } finally {
      await client.close();
      await peer.close();
    }
  });
});
