/** The test peer's server semantics (§5 queries, flush, sessions, lifecycle controls). */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { firstValueFrom, take, toArray } from 'rxjs';
import { connect } from '../../src/hat/eventer/client.js';
import {
  type EventerClient,
  type EventPayloadJson,
  jsonPayload,
  serverQuery,
  timeseriesQuery,
} from '../../src/hat/eventer/common.js';
import { type HatPeer, startHatPeer } from './hat-peer.js';

const clients: EventerClient[] = [];
after(async () => {
  for (const c of clients) await c.close();
});

async function client(
  peer: HatPeer,
  options: Parameters<typeof connect>[1] = { clientName: 'peer-test' },
) {
  const c = await connect({ host: peer.host, port: peer.port }, options);
  clients.push(c);
  return c;
}

const ids = (events: { id: { session: number; instance: number } }[]) =>
  events.map((e) => `${e.id.session}.${e.id.instance}`);

describe('peer queries', { timeout: 20_000 }, () => {
  let peer: HatPeer;
  let c: EventerClient;
  before(async () => {
    peer = await startHatPeer({
      engineEvents: false,
      timeseriesMaxResults: 4,
      latestSubscriptions: [['q', '*']],
    });
    c = await client(peer);
    // sessions 2..6 (session 1 is the client's CONNECTED event); source times 5,4,3,null,1
    for (const [i, src] of [5, 4, 3, null, 1].entries()) {
      await c.register([
        {
          type: ['q', String(i)],
          sourceTimestamp: src === null ? null : { s: src, us: 0 },
          payload: jsonPayload(i),
        },
      ]);
    }
    await c.register([
      { type: ['q', '0'], sourceTimestamp: { s: 9, us: 0 }, payload: jsonPayload('again') },
    ]);
  });
  after(() => peer.close());

  test('latest: one per type, first-insertion order, only latestSubscriptions', async () => {
    const r = await c.query({ kind: 'latest', eventTypes: null });
    assert.deepEqual(
      r.events.map((e) => e.type.join('/')),
      ['q/0', 'q/1', 'q/2', 'q/3', 'q/4'],
    );
    assert.equal(
      (r.events[0]?.payload as EventPayloadJson | undefined)?.text,
      '"again"',
      'the newer event replaced it in place',
    );
    assert.deepEqual(await c.query({ kind: 'latest', eventTypes: [] }), {
      events: [],
      moreFollows: false,
    });
    assert.equal(
      (await c.query({ kind: 'latest', eventTypes: [['event', '*']] })).events.length,
      0,
    );
  });

  test('timeseries: order, source-time filters, paging sentinel, caps', async () => {
    const desc = await c.query(timeseriesQuery({ eventTypes: [['q', '*']], maxResults: 10 }));
    assert.deepEqual(
      ids(desc.events),
      ['7.1', '6.1', '5.1', '4.1'],
      'capped at timeseriesMaxResults',
    );
    assert.equal(desc.moreFollows, true);
    const bySource = await c.query(
      timeseriesQuery({ orderBy: 'sourceTimestamp', order: 'ascending' }),
    );
    assert.deepEqual(
      ids(bySource.events),
      ['6.1', '4.1', '3.1', '2.1'],
      'events without source time excluded',
    );
    const ranged = await c.query(
      timeseriesQuery({
        orderBy: 'sourceTimestamp',
        sourceTFrom: { s: 3, us: 0 },
        sourceTTo: { s: 5, us: 0 },
      }),
    );
    assert.deepEqual(ids(ranged.events), ['2.1', '3.1', '4.1'], 'inclusive bounds, descending');
    const page2 = await c.query(
      timeseriesQuery({
        eventTypes: [['q', '*']],
        maxResults: 2,
        lastEventId: { server: 1, session: 6, instance: 1 },
      }),
    );
    assert.deepEqual(ids(page2.events), ['5.1', '4.1']);
    assert.equal(page2.moreFollows, true);
    const unknown = await c.query(
      timeseriesQuery({ lastEventId: { server: 1, session: 99, instance: 1 } }),
    );
    assert.deepEqual(unknown, { events: [], moreFollows: false });
    assert.deepEqual(await c.query(timeseriesQuery({ maxResults: 0 })), {
      events: [],
      moreFollows: true,
    });
    const t = desc.events[1]?.timestamp;
    assert.ok(t !== undefined);
    const byTime = await c.query(timeseriesQuery({ tFrom: t, tTo: t }));
    assert.deepEqual(ids(byTime.events), ['6.1']);
  });

  test('server: id order, lastEventId exclusive, persisted only after the flush', async () => {
    const p = await startHatPeer({ flushDelayMs: 60_000 });
    try {
      const w = await client(p);
      await w.register([{ type: ['s'], sourceTimestamp: null, payload: null }]);
      assert.deepEqual(ids((await w.query(serverQuery(1))).events), ['1.1', '2.1', '3.1']);
      assert.deepEqual(ids((await w.query(serverQuery(1, { persisted: true }))).events), []);
      p.flush();
      assert.deepEqual(ids((await w.query(serverQuery(1, { persisted: true }))).events), [
        '1.1',
        '2.1',
        '3.1',
      ]);
      const after2 = await w.query(
        serverQuery(1, { lastEventId: { server: 1, session: 2, instance: 1 }, maxResults: 5 }),
      );
      assert.deepEqual(ids(after2.events), ['3.1']);
      assert.deepEqual(
        ids((await w.query(serverQuery(2))).events),
        [],
        'no events of another server',
      );
      await assert.rejects(
        w.query(serverQuery(1, { lastEventId: { server: 2, session: 1, instance: 1 } })),
      );
      assert.equal(w.isOpen, false, 'lastEventId of another server closes the connection');
    } finally {
      await p.close();
    }
  });

  test('register with another server id: own sessions, in server and timeseries queries, notified', async () => {
    const p = await startHatPeer({ engineEvents: false });
    try {
      const w = await client(p, { clientName: 'peer-test', subscriptions: [['m', '*']] });
      const notified = firstValueFrom(w.events$.pipe(take(3), toArray()));
      const ev = (n: string) => ({ type: ['m', n], sourceTimestamp: null, payload: null });
      p.register([ev('a')]);
      const synced = p.register([ev('b'), ev('c')], { serverId: 2 });
      p.register([ev('d')], { serverId: 2 });
      assert.deepEqual(
        synced.map((e) => [e.id.server, e.id.session, e.id.instance]),
        [
          [2, 1, 1],
          [2, 1, 2],
        ],
      );
      assert.deepEqual(ids((await w.query(serverQuery(2))).events), ['1.1', '1.2', '2.1']);
      assert.deepEqual(
        ids((await w.query(serverQuery(1))).events),
        ['1.1', '2.1'],
        "server 1: the client's CONNECTED event and 'a' only",
      );
      const ts = await w.query(timeseriesQuery({ eventTypes: [['m', '*']], order: 'ascending' }));
      assert.deepEqual(
        ts.events.map((e) => `${e.id.server}:${e.type[1]}`),
        ['1:a', '2:b', '2:c', '2:d'],
      );
      assert.deepEqual(
        (await notified).map((batch) => batch.map((e) => e.type[1])),
        [['a'], ['b', 'c'], ['d']],
      );
    } finally {
      await p.close();
    }
  });

  test('a query type with * not last closes the connection', async () => {
    const p = await startHatPeer();
    try {
      const w = await client(p);
      await assert.rejects(w.query({ kind: 'latest', eventTypes: [['*', 'x']] }));
      assert.equal(w.isOpen, false);
    } finally {
      await p.close();
    }
  });
});

describe('peer notifications and lifecycle', { timeout: 20_000 }, () => {
  test('persisted subscribers get one notify per batch after the flush; serverId filters', async () => {
    const peer = await startHatPeer({ flushDelayMs: 60_000, engineEvents: false });
    try {
      const persisted = await client(peer, {
        clientName: 'p',
        subscriptions: [['n', '*']],
        persisted: true,
      });
      const other = await client(peer, {
        clientName: 'o',
        subscriptions: [['n', '*']],
        serverId: 2,
      });
      const live = await client(peer, { clientName: 'l', subscriptions: [['n', '*']] });
      const liveGot = firstValueFrom(live.events$.pipe(take(2), toArray()));
      const w = await client(peer, { clientName: 'w' });
      await w.register([{ type: ['n', '1'], sourceTimestamp: null, payload: null }]);
      await w.register([
        { type: ['n', '2'], sourceTimestamp: null, payload: null },
        { type: ['n', '3'], sourceTimestamp: null, payload: null },
      ]);
      assert.equal((await liveGot).length, 2);
      const got = firstValueFrom(persisted.events$.pipe(take(2), toArray()));
      peer.flush();
      assert.deepEqual(
        (await got).map((b) => b.map((e) => e.type[1])),
        [['1'], ['2', '3']],
      );
      let otherGot = 0;
      other.events$.subscribe(() => otherGot++);
      await other.query({ kind: 'latest', eventTypes: [] });
      assert.equal(otherGot, 0, 'serverId 2 sees nothing of server 1');
    } finally {
      await peer.close();
    }
  });

  test('connected/disconnected events only when operational; register() normalises JSON', async () => {
    const peer = await startHatPeer({ status: 'standby' });
    try {
      const a = await client(peer, { clientName: 'quiet' });
      assert.equal(a.status, 'standby');
      assert.equal(peer.events.length, 0);
      assert.throws(
        () => peer.register([{ type: ['x'], sourceTimestamp: null, payload: null }]),
        /not operational/,
      );
      peer.setStatus('operational');
      const b = await client(peer, { clientName: 'loud' });
      await b.close();
      const types = () => peer.events.map((e) => e.type.join('/'));
      for (let i = 0; i < 100 && types().length < 3; i++)
        await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(types(), ['event/1/engine', 'event/1/eventer/loud', 'event/1/eventer/loud']);
      assert.deepEqual(
        peer.events.map((e) => (e.payload as EventPayloadJson).text),
        ['"STARTED"', '"CONNECTED"', '"DISCONNECTED"'],
      );
      const [e] = peer.register([
        { type: ['j'], sourceTimestamp: null, payload: { kind: 'json', text: '{"b":1,"a":2.50}' } },
      ]);
      assert.equal((e?.payload as EventPayloadJson | undefined)?.text, '{"b": 1, "a": 2.5}');
      assert.throws(() =>
        peer.register([
          { type: ['j'], sourceTimestamp: null, payload: { kind: 'json', text: '{' } },
        ]),
      );
    } finally {
      await peer.close();
    }
  });

  test('stop/start keeps the store and the port; resetStore restarts sessions', async () => {
    const peer = await startHatPeer();
    try {
      const port = peer.port;
      const c1 = await client(peer, { clientName: 'r' });
      await c1.register([{ type: ['keep'], sourceTimestamp: null, payload: null }]);
      await peer.stop();
      assert.equal(peer.connectionCount(), 0);
      assert.ok((await c1.closed) !== null);
      await peer.start();
      assert.equal(peer.port, port);
      const c2 = await client(peer, { clientName: 'r2' });
      assert.equal((await c2.query({ kind: 'latest', eventTypes: [['keep']] })).events.length, 1);
      peer.resetStore();
      assert.deepEqual(
        ids(peer.events.slice()),
        ['1.1'],
        'only the engine event of the new database',
      );
      const [e] =
        (await c2.register([{ type: ['new'], sourceTimestamp: null, payload: null }])) ?? [];
      assert.equal(e?.id.session, 2);
      assert.equal((await c2.query({ kind: 'latest', eventTypes: [['keep']] })).events.length, 0);
    } finally {
      await peer.close();
    }
  });

  test('one timestamp per session, never decreasing', async () => {
    const peer = await startHatPeer();
    try {
      const c = await client(peer, { clientName: 't' });
      let prev: { s: number | bigint; us: number } = { s: 0, us: 0 };
      for (let i = 0; i < 20; i++) {
        const created =
          (await c.register(
            [0, 1, 2].map((n) => ({
              type: ['t', String(n)],
              sourceTimestamp: null,
              payload: null,
            })),
          )) ?? [];
        assert.equal(new Set(created.map((e) => JSON.stringify(e.timestamp))).size, 1);
        const t = created[0]?.timestamp as typeof prev;
        assert.ok(t.s > prev.s || (t.s === prev.s && t.us >= prev.us));
        prev = t;
      }
    } finally {
      await peer.close();
    }
  });
});

describe('peer executor (LMDB: history queries beside the event loop)', { timeout: 30_000 }, () => {
  test('a long walk answers after a later latest query and register; it sees its start', async () => {
    const peer = await startHatPeer({ engineEvents: false, executor: true });
    try {
      const noise = Array.from({ length: 40_000 }, (_, i) => ({
        type: ['noise', String(i % 50)],
        sourceTimestamp: null,
        payload: { kind: 'json' as const, text: String(i) },
      }));
      for (let i = 0; i < noise.length; i += 2000) peer.register(noise.slice(i, i + 2000));
      const c = await client(peer);
      const order: string[] = [];
      // Walks all 40 000 entries (nothing matches) in slices.
      const walk = c
        .query({
          kind: 'timeseries',
          eventTypes: [['model', '*']],
          tFrom: null,
          tTo: null,
          sourceTFrom: null,
          sourceTTo: null,
          order: 'ascending',
          orderBy: 'timestamp',
          maxResults: null,
          lastEventId: null,
        })
        .then((r) => {
          order.push('walk');
          return r;
        });
      // Once the walk began (its first slice), a register and a latest query.
      while (peer.walked === 0) await new Promise((r) => setImmediate(r));
      const reg = c
        .register([{ type: ['model', '1'], sourceTimestamp: null, payload: null }])
        .then(() => order.push('register'));
      const latest = c
        .query({ kind: 'latest', eventTypes: [['noise', '1']] })
        .then(() => order.push('latest'));
      const [res] = await Promise.all([walk, reg, latest]);
      assert.deepEqual(order, ['register', 'latest', 'walk']);
      // The model event registered during the walk is not in it (its read transaction began first).
      assert.deepEqual(res.events, []);
      assert.ok(peer.walked >= 40_000, `walked ${peer.walked}`);
    } finally {
      await peer.close();
    }
  });
});
