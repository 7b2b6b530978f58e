/** The eventer client against the test peer: requests, notifications, and every way to fail. */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { firstValueFrom, take, toArray } from 'rxjs';
import {
  ConnectError,
  ConnectionClosedError,
  FrameTooLargeError,
  PingTimeoutError,
  ProtocolError,
} from '../../src/hat/chatter/errors.js';
import { type ConnectOptions, connect, EventerInitError } from '../../src/hat/eventer/client.js';
import {
  type Event,
  type EventerClient,
  jsonPayload,
  parseJsonPayload,
  serverQuery,
  timeseriesQuery,
} from '../../src/hat/eventer/common.js';
import { createHatConnector } from '../../src/hat/eventer/connector.js';
import { PartsJsonPayload, ReceivedJsonPayload } from '../../src/hat/eventer/payload.js';
import { type HatPeer, startHatPeer } from '../peer/hat-peer.js';

let peer: HatPeer;
before(async () => {
  peer = await startHatPeer({ flushDelayMs: 20 });
});
after(() => peer.close());

const open: EventerClient[] = [];
after(async () => {
  for (const c of open) await c.close();
});

async function client(
  options: Partial<ConnectOptions> = {},
  p: HatPeer = peer,
): Promise<EventerClient> {
  const c = await connect(
    { host: p.host, port: p.port },
    { clientName: 'test/client', connectTimeout: 3000, ...options },
  );
  open.push(c);
  return c;
}

/** Polls `check` until it holds (a hang guard of 5 s, not a timing assertion). */
async function waitUntil(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A free port nobody listens on. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const ev = (type: string[], payload: unknown = null) => ({
  type,
  sourceTimestamp: null,
  payload: payload === null ? null : jsonPayload(payload),
});

describe('eventer client', { timeout: 20_000 }, () => {
  test('register, notify and query against the peer', async () => {
    const sub = await client({ subscriptions: [['c1', '*']] });
    assert.equal(sub.status, 'operational');
    const w = await client();
    const got = firstValueFrom(sub.events$);
    const created = await w.register([ev(['c1', 'a'], { n: 1 }), ev(['c1', 'b']), ev(['other'])]);
    assert.ok(created !== null);
    assert.equal(created.length, 3);
    assert.deepEqual(
      created.map((e) => e.id.instance),
      [1, 2, 3],
    );
    assert.equal(new Set(created.map((e) => e.id.session)).size, 1);
    const notified = await got;
    assert.deepEqual(
      notified.map((e) => e.type),
      [
        ['c1', 'a'],
        ['c1', 'b'],
      ],
    );
    assert.deepEqual(parseJsonPayload(notified[0]?.payload as never), { n: 1 });
    const latest = await w.query({ kind: 'latest', eventTypes: [['c1', '?']] });
    assert.deepEqual(latest.events.map((e) => e.type.join('/')).sort(), ['c1/a', 'c1/b']);
  });

  test('notifies that arrive before anyone subscribes are kept for the first subscriber', async () => {
    const c = await client({ subscriptions: [['early', '*']] });
    peer.register([ev(['early', '1'])]);
    peer.register([ev(['early', '2'])]);
    // Give the notifies time to arrive with nobody subscribed.
    await c.query({ kind: 'latest', eventTypes: [] });
    const batches = await firstValueFrom(c.events$.pipe(take(2), toArray()));
    assert.deepEqual(
      batches.map((b) => b[0]?.type[1]),
      ['1', '2'],
    );
  });

  test('a notify asking for an ack is acknowledged once delivered', async () => {
    const c = await client({ subscriptions: [['ack', '*']] });
    const event: Event = {
      id: { server: 1, session: 999, instance: 1 },
      type: ['ack', 'x'],
      timestamp: { s: 1, us: 0 },
      sourceTimestamp: null,
      payload: null,
    };
    let acked = false;
    const ack = peer.notify([event], { withAck: true }).then(() => {
      acked = true;
    });
    await c.query({ kind: 'latest', eventTypes: [] });
    assert.equal(acked, false, 'not acknowledged before delivery');
    const got = await firstValueFrom(c.events$);
    await ack;
    assert.deepEqual(got[0]?.id.session, 999);
    assert.equal(acked, true);
  });

  test('status changes are pushed', async () => {
    const p = await startHatPeer({ status: 'starting' });
    try {
      const c = await client({}, p);
      assert.equal(c.status, 'starting');
      p.setStatus('operational');
      assert.equal(await firstValueFrom(c.status$), 'operational');
      assert.equal(c.status, 'operational');
      assert.equal(
        p.events[0]?.type.join('/'),
        'event/1/engine',
        'the engine starts when operational',
      );
      p.setStatus('standby');
      assert.deepEqual(await c.register([ev(['x'])]), null, 'failure when not operational');
    } finally {
      await p.close();
    }
  });

  test('register failure and fire-and-forget register', async () => {
    const c = await client();
    peer.failRegisters(true);
    try {
      assert.equal(await c.register([ev(['fail'])]), null);
    } finally {
      peer.failRegisters(false);
    }
    const before = peer.events.length;
    await c.registerNoResponse([ev(['nr', '1'], 'x')]);
    const r = await c.query({ kind: 'latest', eventTypes: [['nr', '1']] });
    assert.equal(r.events.length, 1);
    assert.equal(peer.events.length, before + 1);
    assert.deepEqual(await c.register([]), [], 'empty register');
    assert.equal(peer.events.length, before + 1, 'no session for an empty register');
  });

  test('queryPages walks every page and stops on an empty one', async () => {
    const c = await client();
    for (let i = 0; i < 7; i++) await c.register([ev(['pages', String(i)])]);
    const seen: string[] = [];
    for await (const page of c.queryPages(
      timeseriesQuery({ eventTypes: [['pages', '*']], maxResults: 3, order: 'ascending' }),
    )) {
      assert.ok(page.length <= 3);
      seen.push(...page.map((e) => e.type[1] as string));
    }
    assert.deepEqual(seen, ['0', '1', '2', '3', '4', '5', '6']);
    const none: Event[][] = [];
    for await (const page of c.queryPages(
      timeseriesQuery({ eventTypes: [['pages', '*']], maxResults: 0 }),
    ))
      none.push(page);
    assert.deepEqual(none, [], 'maxResults 0 ends instead of looping');
    let all = 0;
    for await (const page of c.queryPages(serverQuery(peer.serverId, { maxResults: 5 })))
      all += page.length;
    assert.equal(all, peer.events.length);
  });

  test('bad input is refused locally with a clear error; the connection stays usable', async () => {
    const c = await client();
    const bad = [
      [{ type: ['x'], sourceTimestamp: { s: 1, us: 1_000_000 }, payload: null }, /us must be in/],
      [{ type: ['x'], sourceTimestamp: { s: 2n ** 64n, us: 0 }, payload: null }, /beyond int64/],
      [{ type: ['x', 1], sourceTimestamp: null, payload: null }, /array of strings/],
      [
        { type: ['x'], sourceTimestamp: null, payload: { kind: 'json', text: '{"a": NaN}' } },
        /NaN/,
      ],
      [
        { type: ['x'], sourceTimestamp: null, payload: { kind: 'json', text: '[1e400]' } },
        /float range/,
      ],
      [{ type: ['x'], sourceTimestamp: null, payload: { kind: 'weird' } }, /unknown payload kind/],
    ] as const;
    for (const [event, message] of bad) {
      await assert.rejects(c.register([event as never]), message);
    }
    await assert.rejects(c.query({ kind: 'latest', eventTypes: 'x' } as never), /eventTypes/);
    await assert.rejects(c.query(timeseriesQuery({ maxResults: -1 })), /must not be negative/);
    assert.equal(c.isOpen, true);
    assert.ok(Array.isArray(await c.register([ev(['still', 'fine'])])));
  });

  test('large payloads round-trip', async () => {
    const c = await client();
    const data = new Uint8Array(5 * 1024 * 1024).map((_, i) => i % 256);
    const [created] =
      (await c.register([
        { type: ['big'], sourceTimestamp: null, payload: { kind: 'binary', type: 'blob', data } },
      ])) ?? [];
    const r = await c.query({ kind: 'latest', eventTypes: [['big']] });
    const payload = r.events[0]?.payload;
    assert.equal(payload?.kind, 'binary');
    assert.deepEqual(r.events[0]?.id, created?.id);
    assert.ok(payload?.kind === 'binary' && Buffer.from(payload.data).equals(Buffer.from(data)));
  });

  test('our own large events come back with the payload object we sent; foreign ones intact', async () => {
    const mine = await client({ subscriptions: [['echo', '*']] });
    const other = await client({ subscriptions: [['echo', '*']] });
    const seen: Event[] = [];
    const sub = mine.events$.subscribe((es) => seen.push(...es));
    // (As Python's json.dumps writes it: the server sends back its own encoding of the JSON.)
    const text = (k: number) => `{"k": ${k}, "pad": "${String(k).repeat(2 * 1024 * 1024)}"}`;
    try {
      // Two writes of ours, then one of another client, then ours again: the memory of our echoes
      // is reused for the next message, which must never show through in any event.
      const sent: Event[] = [];
      for (const [c, k] of [
        [mine, 1],
        [mine, 2],
        [other, 3],
        [mine, 4],
      ] as const) {
        const payload = new PartsJsonPayload([text(k)]);
        const [e] =
          (await c.register([{ type: ['echo', String(k)], sourceTimestamp: null, payload }])) ?? [];
        assert.ok(e !== undefined);
        if (c === mine)
          assert.equal(e.payload, payload, 'the response carries our own payload object');
        sent.push(e);
      }
      await waitUntil(() => seen.length === 4);
      for (const [i, e] of seen.entries()) {
        const k = i + 1;
        assert.deepEqual(e.type, ['echo', String(k)]);
        assert.ok(e.payload?.kind === 'json');
        assert.equal(e.payload.text, text(k), `event ${k}: the text`);
        if (k === 3) assert.ok(e.payload instanceof ReceivedJsonPayload, 'foreign: as received');
        else assert.equal(e.payload, sent[i]?.payload, `event ${k}: our own payload object`);
      }
    } finally {
      sub.unsubscribe();
    }
  });

  test('a response over maxFrameSize closes with FrameTooLargeError; the request fails', async () => {
    const c = await client({ maxFrameSize: 4096 });
    peer.register([
      {
        type: ['huge'],
        sourceTimestamp: null,
        payload: { kind: 'binary', type: 'b', data: new Uint8Array(10_000) },
      },
    ]);
    await assert.rejects(c.query({ kind: 'latest', eventTypes: [['huge']] }), (err: unknown) => {
      assert.ok(err instanceof ConnectionClosedError);
      assert.ok(err.cause instanceof FrameTooLargeError);
      return true;
    });
    assert.ok((await c.closed) instanceof FrameTooLargeError);
  });
});

describe('eventer client failures', { timeout: 20_000 }, () => {
  test('refused: ConnectError with the system code', async () => {
    const port = await deadPort();
    await assert.rejects(
      connect({ host: '127.0.0.1', port }, { clientName: 'x' }),
      (err: unknown) => {
        assert.ok(err instanceof ConnectError);
        assert.equal(err.code, 'connect_failed');
        assert.equal(err.syscallCode, 'ECONNREFUSED');
        assert.equal(err.address, `127.0.0.1:${port}`);
        return true;
      },
    );
  });

  test('invalid timing options are refused before connecting', async () => {
    for (const bad of [{ pingTimeout: 0 }, { pingDelay: -1 }, { connectTimeout: 0 }]) {
      await assert.rejects(client(bad), RangeError);
    }
    for (let i = 0; i < 100 && peer.connectionCount() > open.filter((c) => c.isOpen).length; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(
      peer.connectionCount(),
      open.filter((c) => c.isOpen).length,
      'no socket left open',
    );
  });

  test('init refused: EventerInitError with the server text', async () => {
    const p = await startHatPeer({ serverToken: 'right' });
    try {
      await assert.rejects(client({ clientToken: 'wrong' }, p), (err: unknown) => {
        assert.ok(err instanceof EventerInitError);
        assert.equal(err.serverMessage, 'invalid client token');
        return true;
      });
      const ok = await client({ clientToken: 'right' }, p);
      assert.equal(ok.status, 'operational');
    } finally {
      await p.close();
    }
  });

  test('a server that never answers the init: connect_timeout', async () => {
    const p = await startHatPeer();
    p.stall(true);
    try {
      await assert.rejects(
        client({ connectTimeout: 150 }, p),
        (err: unknown) => err instanceof ConnectError && err.code === 'connect_timeout',
      );
    } finally {
      await p.close();
    }
  });

  test('pending requests fail with ConnectionClosedError when the connection is cut', async () => {
    const p = await startHatPeer();
    try {
      const c = await client({}, p);
      p.stall(true);
      const pending = [c.query({ kind: 'latest', eventTypes: null }), c.register([ev(['x'])])];
      await new Promise((r) => setTimeout(r, 30));
      p.cutConnections();
      for (const req of pending) await assert.rejects(req, ConnectionClosedError);
      assert.ok((await c.closed) instanceof ConnectionClosedError);
      assert.equal(c.isOpen, false);
      await assert.rejects(c.query({ kind: 'latest', eventTypes: null }), ConnectionClosedError);
      await assert.rejects(c.registerNoResponse([ev(['x'])]), ConnectionClosedError);
    } finally {
      await p.close();
    }
  });

  test('a cut in the middle of a response frame fails the request', async () => {
    const p = await startHatPeer();
    try {
      const c = await client({}, p);
      p.register([
        {
          type: ['mid'],
          sourceTimestamp: null,
          payload: { kind: 'binary', type: 'b', data: new Uint8Array(50_000) },
        },
      ]);
      p.cutConnections({ afterBytes: 1000 });
      await assert.rejects(
        c.query({ kind: 'latest', eventTypes: [['mid']] }),
        ConnectionClosedError,
      );
    } finally {
      await p.close();
    }
  });

  test('a stalled server is detected by our pings: PingTimeoutError', async () => {
    const p = await startHatPeer();
    try {
      const c = await client({ pingDelay: 50, pingTimeout: 100 }, p);
      p.stall(true);
      const pending = c.query({ kind: 'latest', eventTypes: null });
      await assert.rejects(
        pending,
        (err: unknown) =>
          err instanceof ConnectionClosedError && err.cause instanceof PingTimeoutError,
      );
      assert.ok((await c.closed) instanceof PingTimeoutError);
    } finally {
      await p.close();
    }
  });

  test('a server stalled on our large register request is busy, not dead (issue 16)', async () => {
    // Hat reads a big request whole and works on it before it answers anything, pings included:
    // with short pings, a stall far longer than pingDelay + pingTimeout while 4 MB are owed must
    // not close the connection, and the register succeeds once the server answers.
    const p = await startHatPeer();
    try {
      const c = await client({ pingDelay: 50, pingTimeout: 100 }, p);
      p.stall(true);
      const big = { instance: 'A'.repeat(4_000_000) };
      const pending = c.register([ev(['big', '1'], big)]);
      await new Promise((r) => setTimeout(r, 700));
      assert.equal(c.isOpen, true, 'a busy server is not declared dead');
      p.stall(false);
      const created = await pending;
      const payload = created?.[0]?.payload;
      assert.ok(created?.length === 1 && payload?.kind === 'json');
      assert.deepEqual(parseJsonPayload(payload), big);
      assert.equal(c.isOpen, true);
      // Once nothing is owed, a stalled (dead) server is still found by the plain ping timeout.
      p.stall(true);
      const reason = await c.closed;
      assert.ok(reason instanceof PingTimeoutError, String(reason));
      assert.equal(reason.extraMs, 0);
    } finally {
      await p.close();
    }
  });

  test('the status and events streams complete when the connection closes', async () => {
    const p = await startHatPeer();
    try {
      const c = await client({ subscriptions: [['*']] }, p);
      const statuses = firstValueFrom(c.status$.pipe(toArray()));
      const events = firstValueFrom(c.events$.pipe(toArray()));
      await p.stop();
      assert.deepEqual(await statuses, []);
      assert.deepEqual(await events, []);
    } finally {
      await p.close();
    }
  });

  test('a response in a conversation we never started is a protocol error', async () => {
    const { encodeFrame } = await import('../../src/hat/chatter/message.js');
    const { encodeInitRes, encodeQueryRes } = await import('../../src/hat/eventer/codec.js');
    const server = createServer((s) => {
      s.once('data', () => {
        s.write(
          encodeFrame({
            id: 1,
            first: 1,
            owner: false,
            token: true,
            last: true,
            type: 'HatEventer.MsgInitRes',
            data: encodeInitRes({ kind: 'success', status: 'operational' }),
          }),
        );
        s.write(
          encodeFrame({
            id: 2,
            first: 77,
            owner: false,
            token: true,
            last: true,
            type: 'HatEventer.MsgQueryRes',
            data: encodeQueryRes({ events: [], moreFollows: false }),
          }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const c = await connect(
        { host: '127.0.0.1', port: (server.address() as { port: number }).port },
        { clientName: 'x' },
      );
      const reason = await c.closed;
      assert.ok(reason instanceof ProtocolError);
      assert.match(reason.message, /no pending request/);
    } finally {
      server.close();
    }
  });
});

describe('Hat connector', { timeout: 20_000 }, () => {
  test('fails over in order and names the client', async () => {
    const dead = await deadPort();
    const connector = createHatConnector({
      addresses: [
        { host: '127.0.0.1', port: dead },
        { host: peer.host, port: peer.port },
      ],
      clientName: 'aimm-store/test',
    });
    assert.deepEqual(
      connector.addresses.map((a) => a.port),
      [dead, peer.port],
    );
    const c = await connector.connect({ subscriptions: [['fo', '*']], nameSuffix: 'sub' });
    open.push(c);
    assert.ok(
      peer
        .clients()
        .some((i) => i.clientName === 'aimm-store/test/sub' && i.subscriptions[0]?.[0] === 'fo'),
    );
    const plain = await connector.connect({ subscriptions: [], persisted: true });
    open.push(plain);
    assert.ok(peer.clients().some((i) => i.clientName === 'aimm-store/test' && i.persisted));
  });

  test('prefers an operational server to a standby one; a standby one when none is operational', async () => {
    const standby = await startHatPeer({ status: 'standby', serverId: 2 });
    const other = await startHatPeer({ status: 'standby', serverId: 3 });
    try {
      const at = (...peers: { host: string; port: number }[]) =>
        createHatConnector({
          addresses: peers.map((p) => ({ host: p.host, port: p.port })),
          clientName: 'x',
        });
      const c = await at(standby, peer).connect({ subscriptions: [] });
      open.push(c);
      assert.equal(c.status, 'operational');
      assert.ok(peer.clients().some((i) => i.clientName === 'x'));
      await waitUntil(() => standby.clients().length === 0);

      const s = await at(standby, other).connect({ subscriptions: [] });
      open.push(s);
      assert.equal(s.status, 'standby');
      assert.equal(standby.clients().length, 1);
      await waitUntil(() => other.clients().length === 0);

      // The standby server's status may still change: the connection follows it.
      standby.setStatus('operational');
      await waitUntil(() => s.status === 'operational');
    } finally {
      await standby.close();
      await other.close();
    }
  });

  test('all addresses failing gives one error naming each', async () => {
    const [a, b] = [await deadPort(), await deadPort()];
    const connector = createHatConnector({
      addresses: [
        { host: '127.0.0.1', port: a },
        { host: '127.0.0.1', port: b },
      ],
      clientName: 'x',
    });
    await assert.rejects(connector.connect({ subscriptions: [] }), (err: unknown) => {
      assert.ok(err instanceof ConnectError);
      assert.match(
        err.message,
        new RegExp(`127\\.0\\.0\\.1:${a}: .*refused.*127\\.0\\.0\\.1:${b}`),
      );
      return true;
    });
    const p = await startHatPeer({ serverToken: 't' });
    try {
      const c2 = createHatConnector({
        addresses: [
          { host: p.host, port: p.port },
          { host: p.host, port: p.port },
        ],
        clientName: 'x',
        clientToken: 'bad',
      });
      await assert.rejects(c2.connect({ subscriptions: [] }), EventerInitError);
    } finally {
      await p.close();
    }
  });
});
