/**
 * createMonitorHatConnector fed with component lists (the MsgServer states hat.event.component saw
 * in monitor-vectors c, c2, c3, their eventer ports pointed at local servers): it connects to the
 * active event server with the MsgInitReq the recordings show, follows a failover, waits for a
 * server and gives up with a ConnectError after connectTimeout, and rejects once closed.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { BehaviorSubject } from 'rxjs';
import { ConnectError } from '../../src/hat/chatter/errors.js';
import type { EventerClient } from '../../src/hat/eventer/common.js';
import {
  createMonitorHatConnector,
  type EventServerSelection,
  type MonitorHatConnector,
  type MonitorHatConnectorOptions,
} from '../../src/hat/eventer/monitor-connector.js';
import { type ComponentInfo, isActive } from '../../src/hat/monitor/common.js';
import { type HatPeer, startHatPeer } from '../peer/hat-peer.js';
import { recordedServerMsgs, sleep, until } from './monitor-support.js';
import { isFrame, loadMonitorConversation, type MonitorConversation } from './monitor-vectors.js';
import { RawFrames } from './replay.js';

type Components = readonly ComponentInfo[] | null;

const cleanups: (() => Promise<unknown> | undefined)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** The recorded eventer ports, and the server ids behind them. */
const RECORDED_PORTS: Record<number, number> = { 23112: 1, 23113: 2 };

/** The component lists of the recorded MsgServer messages to `label`, eventer ports replaced. */
function recordedStates(
  conv: MonitorConversation,
  label: string,
  ports: Record<number, number>,
): ComponentInfo[][] {
  return recordedServerMsgs(conv, label).map((m) =>
    m.components.map((c) => ({
      ...c,
      data: c.data.replace(/"port": (\d+)/, (all, p: string) => {
        const serverId = RECORDED_PORTS[Number(p)];
        const port = serverId === undefined ? undefined : ports[serverId];
        return port === undefined ? all : `"port": ${port}`;
      }),
    })),
  );
}

const activeIn = (state: readonly ComponentInfo[], name: string) =>
  state.some((c) => c.name === name && c.group === 'event' && isActive(c));

function connector(
  components$: BehaviorSubject<Components>,
  options: Partial<MonitorHatConnectorOptions> = {},
): { connector: MonitorHatConnector; selections: EventServerSelection[] } {
  const selections: EventServerSelection[] = [];
  const c = createMonitorHatConnector({
    components$,
    serverGroup: 'event',
    clientName: 'aimm',
    pingDelay: 0,
    onSelection: (s) => selections.push(s),
    ...options,
  });
  cleanups.push(() => c.close());
  return { connector: c, selections };
}

async function peer(serverId: number, serverToken: string | null = null): Promise<HatPeer> {
  const p = await startHatPeer({ serverId, serverToken, engineEvents: false });
  cleanups.push(() => p.close());
  return p;
}

function track(client: EventerClient): EventerClient {
  cleanups.push(() => client.close());
  return client;
}

/**
 * A raw eventer port: records the first frame each client sends and answers it with the recorded
 * MsgInitRes frame.
 */
async function rawEventer(initResHex: string) {
  const firstFrames: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const frames = new RawFrames(socket);
    void frames
      .next(5000, 'MsgInitReq')
      .then((f) => {
        if (f === null) return;
        firstFrames.push(f);
        socket.write(Buffer.from(initResHex, 'hex'));
      })
      .catch(() => socket.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return { port, firstFrames };
}

function recordedInit(conv: MonitorConversation, label: string) {
  const steps = conv.steps.filter(isFrame).filter((s) => s.conn === label);
  const req = steps.find((s) => s.dir === 'c2s' && s.decoded.data.type === 'HatEventer.MsgInitReq');
  const res = steps.find((s) => s.dir === 's2c' && s.decoded.data.type === 'HatEventer.MsgInitRes');
  assert.ok(req !== undefined && res !== undefined);
  return { req: req.frame_hex, res: res.frame_hex, payload: req.decoded.payload };
}

/**
 * A connector fed the first state hat.event.component saw in recording c (server 1's eventer port
 * pointed at a local server), and a client it opened.
 */
async function connectedOnFirstState() {
  const p1 = await peer(1);
  const states = recordedStates(loadMonitorConversation('c'), 'C', { 1: p1.port });
  const subject = new BehaviorSubject<Components>(states[0] ?? null);
  const { connector: c } = connector(subject);
  const client = track(await c.connect({ subscriptions: [] }));
  return { p1, subject, c, client };
}

describe('createMonitorHatConnector', { timeout: 30_000 }, () => {
  for (const [prefix, clientToken] of [
    ['c', undefined],
    ['c3', 'tok'],
  ] as const) {
    test(`${prefix}: connects to the active server with the recorded MsgInitReq, byte for byte`, async () => {
      const conv = loadMonitorConversation(prefix);
      const init = recordedInit(conv, 'D');
      const raw = await rawEventer(init.res);
      const states = recordedStates(conv, 'C', { 1: raw.port });
      const first = states[0];
      assert.ok(first !== undefined && activeIn(first, 'event1'));
      const subject = new BehaviorSubject<Components>(first);
      const { connector: c } = connector(subject, clientToken === undefined ? {} : { clientToken });
      assert.equal(c.current?.serverId, 1);
      assert.deepEqual(c.addresses, [{ host: '127.0.0.1', port: raw.port }]);
      const client = track(await c.connect({ subscriptions: [], nameSuffix: 'x' }));
      assert.equal(client.status, 'operational');
      assert.equal(raw.firstFrames.length, 1);
      assert.equal(raw.firstFrames[0]?.toString('hex'), init.req, JSON.stringify(init.payload));
    });
  }

  test('subscriptions, persisted and the name suffix reach the server; serverId = server_id', async () => {
    const p1 = await peer(1);
    const p2 = await peer(2);
    const conv = loadMonitorConversation('c');
    const states = recordedStates(conv, 'C', { 1: p1.port, 2: p2.port });
    const subject = new BehaviorSubject<Components>(states[0] ?? null);
    const { connector: c } = connector(subject);
    track(
      await c.connect({ subscriptions: [['aimm', '*']], persisted: true, nameSuffix: 'models' }),
    );
    track(await c.connect({ subscriptions: [] }));
    assert.deepEqual(
      p1.clients().sort((a, b) => a.clientName.localeCompare(b.clientName)),
      [
        {
          clientName: 'aimm',
          clientToken: null,
          subscriptions: [],
          serverId: 1,
          persisted: false,
        },
        {
          clientName: 'aimm/models',
          clientToken: null,
          subscriptions: [['aimm', '*']],
          serverId: 1,
          persisted: true,
        },
      ],
    );
    assert.equal(p2.connectionCount(), 0, 'nothing to the standby server');
  });

  test('failover (c): the open client is closed and the next connect() goes to event2', async () => {
    const p1 = await peer(1);
    const p2 = await peer(2);
    const conv = loadMonitorConversation('c');
    const states = recordedStates(conv, 'C', { 1: p1.port, 2: p2.port });
    const subject = new BehaviorSubject<Components>(states[0] ?? null);
    const { connector: c, selections } = connector(subject);
    const client1 = track(await c.connect({ subscriptions: [], nameSuffix: 'x' }));
    assert.equal(p1.clients()[0]?.serverId, 1);
    // Every recorded state while event1 stays active (stale and repeated ones included): no change.
    const lost = states.findIndex((s) => !activeIn(s, 'event1'));
    assert.ok(lost > 0);
    for (const s of states.slice(0, lost)) subject.next(s);
    await sleep(50);
    assert.equal(client1.isOpen, true, 'unchanged server data keeps the client');
    // event1 gone, event2 blessed but not yet answered: no server, the client is closed.
    const failover = states[lost];
    assert.ok(failover !== undefined && !activeIn(failover, 'event2'));
    subject.next(failover);
    await client1.closed;
    assert.equal(c.current, null);
    await until(() => p1.clients().length === 0, 'event1 to see the client gone');
    const pending = c.connect({ subscriptions: [], nameSuffix: 'x' });
    const early = await Promise.race([
      pending.then(
        () => 'resolved',
        () => 'rejected',
      ),
      sleep(100).then(() => 'pending'),
    ]);
    assert.equal(early, 'pending', 'connect() waits for an active server');
    const rest = states.slice(lost + 1);
    assert.ok(rest.length > 0 && rest.every((s) => !activeIn(s, 'event1')));
    for (const s of rest) subject.next(s);
    const client2 = track(await pending);
    assert.equal(client2.isOpen, true);
    assert.deepEqual(p2.clients(), [
      { clientName: 'aimm/x', clientToken: null, subscriptions: [], serverId: 2, persisted: false },
    ]);
    // (c.current was narrowed to null above.)
    const selected = c.selection;
    assert.equal(selected.kind === 'server' && selected.server.serverId, 2);
    assert.deepEqual(
      selections.map((s) => (s.kind === 'server' ? `server ${s.server.serverId}` : s.reason)),
      ['server 1', 'no_active_server', 'server 2'],
    );
  });

  test('no active server: connect() waits, then fails with a ConnectError after connectTimeout', async () => {
    const p1 = await peer(1);
    const p2 = await peer(2);
    const conv = loadMonitorConversation('c');
    const states = recordedStates(conv, 'C', { 1: p1.port, 2: p2.port });
    const none = states.find((s) => !activeIn(s, 'event1') && !activeIn(s, 'event2'));
    assert.ok(none !== undefined);
    const subject = new BehaviorSubject<Components>(none);
    const { connector: c } = connector(subject, { connectTimeout: 300 });
    await assert.rejects(
      c.connect({ subscriptions: [] }),
      (e: unknown) => e instanceof ConnectError && e.code === 'connect_timeout',
    );
    // Before any monitor state at all, too.
    const { connector: c2 } = connector(new BehaviorSubject<Components>(null), {
      connectTimeout: 200,
    });
    await assert.rejects(
      c2.connect({ subscriptions: [] }),
      (e: unknown) => e instanceof ConnectError && e.code === 'connect_timeout',
    );
    assert.equal(p1.connectionCount() + p2.connectionCount(), 0);
  });

  test('a waiting connect() succeeds once a server becomes active', async () => {
    const p1 = await peer(1);
    const conv = loadMonitorConversation('c');
    const states = recordedStates(conv, 'C', { 1: p1.port });
    const subject = new BehaviorSubject<Components>(null);
    const { connector: c } = connector(subject, { connectTimeout: 5000 });
    const pending = c.connect({ subscriptions: [] });
    await sleep(50);
    assert.equal(p1.connectionCount(), 0);
    subject.next(states[0] ?? null);
    const client = track(await pending);
    assert.equal(client.isOpen, true);
    assert.equal(p1.clients()[0]?.serverId, 1);
  });

  test('c2: a client token the active server does not publish → no connection at all', async () => {
    const p1 = await peer(1);
    const p2 = await peer(2);
    const conv = loadMonitorConversation('c2');
    const states = recordedStates(conv, 'C', { 1: p1.port, 2: p2.port });
    const subject = new BehaviorSubject<Components>(states.at(-1) ?? null);
    const { connector: c } = connector(subject, { clientToken: 'tok', connectTimeout: 300 });
    assert.equal(c.selection.kind === 'none' && c.selection.reason, 'token_mismatch');
    await assert.rejects(
      c.connect({ subscriptions: [] }),
      (e: unknown) => e instanceof ConnectError && e.code === 'connect_timeout',
    );
    assert.equal(p1.connectionCount() + p2.connectionCount(), 0);
  });

  test('c3: client token "tok" against servers publishing "tok" is sent in MsgInitReq', async () => {
    const p1 = await peer(1, 'tok');
    const conv = loadMonitorConversation('c3');
    const states = recordedStates(conv, 'C', { 1: p1.port });
    const subject = new BehaviorSubject<Components>(states[0] ?? null);
    const { connector: c } = connector(subject, { clientToken: 'tok' });
    track(await c.connect({ subscriptions: [], nameSuffix: 'x' }));
    assert.deepEqual(p1.clients(), [
      {
        clientName: 'aimm/x',
        clientToken: 'tok',
        subscriptions: [],
        serverId: 1,
        persisted: false,
      },
    ]);
    assert.equal(c.current?.serverToken, 'tok');
  });

  test('losing the monitor state (null) closes the open client', async () => {
    const { subject, c, client } = await connectedOnFirstState();
    subject.next(null);
    await client.closed;
    assert.equal(c.current, null);
  });

  test('a closed connector rejects, closes what it handed out and fails waiting connects', async () => {
    const { p1, c, client } = await connectedOnFirstState();
    const { connector: waiting } = connector(new BehaviorSubject<Components>(null), {
      connectTimeout: 10_000,
    });
    const pending = waiting.connect({ subscriptions: [] });
    await sleep(20);
    await waiting.close();
    await assert.rejects(pending, (e: unknown) => e instanceof ConnectError);
    await c.close();
    assert.equal(client.isOpen, false, 'the handed-out client is closed');
    await assert.rejects(
      c.connect({ subscriptions: [] }),
      (e: unknown) => e instanceof ConnectError,
    );
    await until(() => p1.connectionCount() === 0, 'the server to see the client gone');
  });

  test('the same server registering again (another cid, e.g. a monitor restart) keeps the client', async () => {
    const { subject, c, client } = await connectedOnFirstState();
    const state = subject.value ?? [];
    subject.next(state.map((x) => ({ ...x, cid: x.cid + 100 })));
    await sleep(50);
    assert.equal(client.isOpen, true, 'same server_id, address and token: not a new server');
    assert.equal(
      c.current?.cid,
      (state.find((x) => isActive(x) && x.group === 'event')?.cid ?? 0) + 100,
    );
  });

  test('a selected server that refuses is retried until the selection moves to a live one', async () => {
    const p2 = await peer(2);
    // A port nobody listens on: the "dead" event1 the monitor still shows active.
    const dead = await new Promise<number>((resolve) => {
      const srv = createServer();
      srv.listen(0, '127.0.0.1', () => {
        const port = (srv.address() as { port: number }).port;
        srv.close(() => resolve(port));
      });
    });
    const states = recordedStates(loadMonitorConversation('c'), 'C', { 1: dead, 2: p2.port });
    const first = states[0];
    const moved = states.find((st) => activeIn(st, 'event2'));
    assert.ok(first !== undefined && moved !== undefined);
    const subject = new BehaviorSubject<Components>(first);
    const { connector: c } = connector(subject, { connectTimeout: 5000 });
    const pending = c.connect({ subscriptions: [] });
    await sleep(300);
    subject.next(moved);
    const client = track(await pending);
    assert.equal(client.isOpen, true);
    assert.equal(p2.clients().length, 1, 'connected to event2 once the monitor moved');
  });
});
