/**
 * The recorded real sessions of `hat-vectors/conversations/`, replayed both ways:
 *
 * 1. Our client faces a fake server that plays the recorded server frames; driven with the
 *    recorded `client_actions`, it must send the recorded client frames byte for byte (same ids,
 *    flags, payloads).
 * 2. Our test peer is fed the recorded client frames and must answer with the recorded server
 *    frames: ids, flags, types and payloads equal, event timestamps masked (checked for
 *    consistency instead). The sessions of the reference server's instance are replayed in their
 *    recorded order against one peer, so even session numbers must match.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { after, describe, test } from 'node:test';
import { type ConnectOptions, connect } from '../../src/hat/eventer/client.js';
import {
  type Event,
  type EventerClient,
  type EventPayloadJson,
  type Status,
  serverQuery,
  timeseriesQuery,
} from '../../src/hat/eventer/common.js';
import { JsonTextError } from '../../src/hat/eventer/json.js';
import { type HatPeer, startHatPeer } from '../peer/hat-peer.js';
import {
  type Conversation,
  decodeFrame,
  eventsIn,
  maskTimestamps,
  RawFrames,
  type Step,
} from './replay.js';
import { conversationFiles, hex, loadVectors, unhex } from './vectors.js';

const conversations = new Map<string, Conversation>(
  conversationFiles().map((f) => [
    f.replace(/\.json$/, ''),
    loadVectors<Conversation>(`conversations/${f}`),
  ]),
);

test('all 20 recorded conversations are present', () => {
  assert.equal(conversations.size, 20);
});

const json = (text: string): EventPayloadJson => ({ kind: 'json', text });
const FRAME_TIMEOUT = 5000;

// ---------------------------------------------------------------------------------------------
// 1. our client against a server playing the recording

interface FakeServer {
  address: { host: string; port: number };
  /** Resolves when every step of `conn` before its client EOF has been replayed. */
  atClientEof(conn: string): Promise<void>;
  /** Resolves when all connections' steps are done; rejects on the first mismatch. */
  done: Promise<void>;
  close(): Promise<void>;
}

/** Connections whose client the recording made with raw chatter, not the client library. */
const RAW_CLIENTS = new Set([
  'c1-init-error-wrong-token:B',
  'g4-ping-unanswered-server-closes:A',
  'l-protocol-error-first-message:A',
]);

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

async function fakeServer(conv: Conversation, conns: string[]): Promise<FakeServer> {
  const byConn = new Map(conns.map((c) => [c, conv.steps.filter((s) => s.conn === c)]));
  const eofReached = new Map(conns.map((c) => [c, deferred()]));
  const finished = conns.map(() => deferred());
  let accepted = 0;
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => {
    sockets.push(socket);
    const index = accepted++;
    const conn = conns[index];
    if (conn === undefined) {
      socket.destroy();
      return;
    }
    const steps = byConn.get(conn) as Step[];
    const frames = new RawFrames(socket);
    const run = async () => {
      for (const [i, step] of steps.entries()) {
        const where: string = `${conn} step ${i} (${step.dir}${step.eof ? ' eof' : ` ${step.decoded.data.type}`})`;
        if (step.dir === 's2c') {
          if (step.eof) socket.end();
          else socket.write(unhex(step.frame_hex));
          continue;
        }
        if (step.eof) {
          eofReached.get(conn)?.resolve();
          const f = await frames.next(FRAME_TIMEOUT, `client EOF at ${where}`);
          assert.equal(f === null ? null : hex(f), null, `${where}: expected the client to close`);
          continue;
        }
        const f = await frames.next(FRAME_TIMEOUT, where);
        assert.ok(f !== null, `${where}: client closed, expected ${step.decoded.data.type}`);
        assert.equal(hex(f), step.frame_hex, `${where}: client frame differs`);
      }
      eofReached.get(conn)?.resolve();
    };
    run().then(finished[index]?.resolve, (err) => {
      finished[index]?.reject(err);
      eofReached.get(conn)?.reject(err);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    address: { host: '127.0.0.1', port },
    atClientEof: (conn) => (eofReached.get(conn) as ReturnType<typeof deferred<void>>).promise,
    done: Promise.all(finished.map((f) => f.promise)).then(() => undefined),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

type Script = (ctx: {
  connect(name: string, options?: Partial<ConnectOptions>): Promise<EventerClient>;
  atClientEof(conn: string): Promise<void>;
}) => Promise<void>;

const firstEvents = (client: EventerClient): Promise<Event[]> =>
  new Promise((resolve) => {
    const sub = client.events$.subscribe((events) => {
      resolve(events);
      queueMicrotask(() => sub.unsubscribe());
    });
  });

const scripts: Record<string, Script> = {
  'a-init-register-query': async ({ connect, atClientEof }) => {
    const c = await connect('vectors/a');
    const events = await c.register([
      {
        type: ['vec', 'a', '1'],
        sourceTimestamp: { s: 1700000000, us: 123456 },
        payload: json('{"k": "v", "n": 1}'),
      },
    ]);
    assert.deepEqual(
      events?.map((e) => e.id),
      [{ server: 1, session: 3, instance: 1 }],
    );
    const result = await c.query({ kind: 'latest', eventTypes: [['vec', 'a', '*']] });
    assert.equal(result.events.length, 1);
    await atClientEof('A');
    await c.close();
  },
  'b-notify-before-register-response': async ({ connect, atClientEof }) => {
    const c = await connect('vectors/b', { subscriptions: [['vec', 'b', '*']] });
    const order: string[] = [];
    c.events$.subscribe(() => order.push('notify'));
    const events = await c.register([
      {
        type: ['vec', 'b', '1'],
        sourceTimestamp: { s: 1700000000, us: 123456 },
        payload: json('{"n": 1}'),
      },
      {
        type: ['vec', 'b', '2'],
        sourceTimestamp: null,
        payload: { kind: 'binary', type: 'bytes', data: Uint8Array.of(0, 1, 0xfe, 0xff) },
      },
      { type: ['vec', 'b', '3'], sourceTimestamp: null, payload: null },
    ]);
    order.push('response');
    assert.deepEqual(order, ['notify', 'response']);
    assert.equal(events?.length, 3);
    await atClientEof('A');
    await c.close();
  },
  'c1-init-error-wrong-token': async ({ connect }) => {
    await assert.rejects(connect('vectors/c1', { clientToken: 'wrong-token' }), (err: unknown) => {
      assert.equal((err as { name: string }).name, 'EventerInitError');
      assert.equal((err as { serverMessage: string }).serverMessage, 'invalid client token');
      return true;
    });
  },
  'c2-init-token-accepted': async ({ connect, atClientEof }) => {
    const a = await connect('vectors/c2', { clientToken: 'secret-token' });
    await atClientEof('A');
    await a.close();
    const b = await connect('vectors/c2-none');
    await atClientEof('B');
    await b.close();
  },
  'c3-init-error-invalid-subscription': async ({ connect }) => {
    await assert.rejects(
      connect('vectors/c3', { subscriptions: [['vec', '*', 'x']] }),
      /invalid query event type/,
    );
  },
  'd-register-without-response': async ({ connect, atClientEof }) => {
    const c = await connect('vectors/d');
    await c.registerNoResponse([
      { type: ['vec', 'd', '1'], sourceTimestamp: null, payload: json('[1, 2, 3]') },
    ]);
    const result = await c.query({ kind: 'latest', eventTypes: [['vec', 'd', '*']] });
    assert.equal(result.events[0]?.payload?.kind, 'json');
    await atClientEof('A');
    await c.close();
  },
  'e-timeseries-pagination': async ({ connect, atClientEof }) => {
    const c = await connect('vectors/e');
    for (let i = 1; i <= 5; i++) {
      await c.register([
        {
          type: ['vec', 'e', String(i)],
          sourceTimestamp: { s: 1700000000 + i, us: 0 },
          payload: json(String(i)),
        },
      ]);
    }
    const pages: number[][] = [];
    for await (const page of c.queryPages(
      timeseriesQuery({ eventTypes: [['vec', 'e', '*']], maxResults: 2 }),
    )) {
      pages.push(page.map((e) => e.id.session));
    }
    assert.deepEqual(pages, [[16, 15], [14, 13], [12]]);
    const asc = await c.query(
      timeseriesQuery({
        eventTypes: [['vec', 'e', '*']],
        sourceTFrom: { s: 1700000002, us: 0 },
        order: 'ascending',
        orderBy: 'sourceTimestamp',
        maxResults: 3,
      }),
    );
    assert.equal(asc.moreFollows, true);
    await atClientEof('A');
    await c.close();
  },
  'f-query-server': async ({ connect, atClientEof }) => {
    const c = await connect('vectors/f');
    let pages = 0;
    for await (const page of c.queryPages(serverQuery(1, { maxResults: 3 }))) {
      assert.equal(page.length, 3);
      if (++pages === 2) break;
    }
    const persisted = await c.query(serverQuery(1, { persisted: true, maxResults: 2 }));
    assert.equal(persisted.moreFollows, true);
    await atClientEof('A');
    await c.close();
  },
  'g1-idle-server-ping': async ({ connect, atClientEof }) => {
    // The recording's 20 s pings, scaled down: the frames do not depend on the delay.
    const c = await connect('vectors/g1', { pingDelay: 300, pingTimeout: 5000 });
    await atClientEof('A');
    await c.close();
  },
  'g2-client-ping': async ({ connect, atClientEof }) => {
    const c = await connect('vectors/g2', { pingDelay: 100 });
    await atClientEof('A');
    await c.close();
  },
  'g3-server-ping-client-pong-only': async ({ connect, atClientEof }) => {
    const c = await connect('vectors/g3', { pingDelay: 0 });
    await atClientEof('A');
    await c.close();
  },
  'h-json-payload-normalisation': async ({ connect, atClientEof }) => {
    const c = await connect('vectors/h', { subscriptions: [['vec', 'h', '*']] });
    const notified = firstEvents(c);
    const sent =
      '{"b":2,"a":[1,2.50,"\u017e"],"c":null,"d":"\ud83d\ude00","e":1E5,"f":-0.0,"g":1e16,"10":"ten","2":"two","h":1.5e-5}';
    const [event] =
      (await c.register([
        { type: ['vec', 'h', '1'], sourceTimestamp: null, payload: json(sent) },
      ])) ?? [];
    assert.equal(event?.payload?.kind, 'json');
    const normalised = (event.payload as EventPayloadJson).text;
    assert.equal((await notified)[0]?.payload?.kind, 'json');
    assert.match(
      normalised,
      /^\{"b": 2, "a": \[1, 2\.5, "\\u017e"\]/,
      'received text kept as the server sent it',
    );
    await c.query({ kind: 'latest', eventTypes: [['vec', 'h', '*']] });
    await atClientEof('A');
    await c.close();
  },
  'i-server-shutdown-status': async ({ connect }) => {
    const c = await connect('vectors/i');
    const statuses: Status[] = [];
    const failed = new Promise<Event[] | null>((resolve, reject) => {
      c.status$.subscribe((s) => {
        statuses.push(s);
        if (s === 'stopping')
          c.register([{ type: ['vec', 'i', '1'], sourceTimestamp: null, payload: null }]).then(
            resolve,
            reject,
          );
      });
    });
    assert.equal(await failed, null, 'register while stopping gets failure');
    const reason = await c.closed;
    assert.equal(reason?.name, 'ConnectionClosedError');
    assert.deepEqual(statuses, ['stopping', 'standby']);
    assert.equal(c.status, 'standby');
  },
  'j-persisted-subscriber': async ({ connect, atClientEof }) => {
    const a = await connect('vectors/j-sub', {
      subscriptions: [['vec', 'j', '*']],
      persisted: true,
    });
    const notified = firstEvents(a);
    const b = await connect('vectors/j-reg');
    await b.register([{ type: ['vec', 'j', '1'], sourceTimestamp: null, payload: json('"x"') }]);
    assert.equal((await notified).length, 1);
    await atClientEof('B');
    await b.close();
    await atClientEof('A');
    await a.close();
  },
  'k-events-notify-with-ack-library': async ({ connect, atClientEof }) => {
    const c = await connect('vectors/k', { subscriptions: [['*']] });
    const events = await firstEvents(c);
    assert.deepEqual(events[0]?.type, ['vec', 'k']);
    await atClientEof('A');
    await c.close();
  },
  'm-invalid-json-payload': async ({ connect }) => {
    const c = await connect('vectors/m', { checkJson: false });
    const bad = [{ type: ['vec', 'm', '1'], sourceTimestamp: null, payload: json('{"a":') }];
    await assert.rejects(c.register(bad), { name: 'ConnectionClosedError' });
  },
  'n-server-eventer-events': async ({ connect, atClientEof }) => {
    const a = await connect('vectors/n-watch', { subscriptions: [['event', '?', 'eventer', '*']] });
    const seen: string[] = [];
    const two = new Promise<void>((resolve) => {
      a.events$.subscribe((events) => {
        for (const e of events) seen.push((e.payload as EventPayloadJson).text);
        if (seen.length === 2) resolve();
      });
    });
    const b = await connect('vectors/n-other');
    await atClientEof('B');
    await b.close();
    await two;
    assert.deepEqual(seen, ['"CONNECTED"', '"DISCONNECTED"']);
    await atClientEof('A');
    await a.close();
  },
  'o-misc-register-and-queries': async ({ connect, atClientEof }) => {
    const c = await connect('vectors/o');
    assert.deepEqual(await c.register([]), []);
    assert.equal((await c.query({ kind: 'latest', eventTypes: null })).events.length, 25);
    assert.deepEqual(await c.query({ kind: 'latest', eventTypes: [] }), {
      events: [],
      moreFollows: false,
    });
    const ts = await c.query(
      timeseriesQuery({
        eventTypes: [['vec', '?', '1']],
        tFrom: { s: 0, us: 0 },
        tTo: { s: 4102444800, us: 0 },
        sourceTFrom: { s: 0, us: 0 },
        sourceTTo: { s: 4102444800, us: 0 },
        order: 'ascending',
        orderBy: 'sourceTimestamp',
        maxResults: 10,
      }),
    );
    assert.equal(ts.events.length, 3);
    await atClientEof('A');
    await c.close();
  },
};

describe('our client replays the recorded client side byte for byte', () => {
  for (const [name, conv] of conversations) {
    const conns = [...new Set(conv.steps.map((s) => s.conn))];
    const script = scripts[name];
    if (script === undefined) {
      test(`${name}: raw-client recording (no library client to replay)`, () => {
        assert.ok(
          conns.every((c) => RAW_CLIENTS.has(`${name}:${c}`)),
          `${name} needs a client script`,
        );
      });
      continue;
    }
    const libraryConns = conns.filter((c) => !RAW_CLIENTS.has(`${name}:${c}`));
    test(name, async () => {
      const server = await fakeServer(conv, libraryConns);
      try {
        await script({
          connect: (clientName, options = {}) =>
            connect(server.address, { clientName, connectTimeout: 5000, ...options }),
          atClientEof: (c) => server.atClientEof(c),
        });
        await server.done;
      } finally {
        await server.close();
      }
    });
  }

  test('m: with the default JSON check the invalid payload is refused locally, nothing sent', async () => {
    const conv = conversations.get('m-invalid-json-payload') as Conversation;
    const server = await fakeServer({ ...conv, steps: conv.steps.slice(0, 2) }, ['A']);
    try {
      const c = await connect(server.address, { clientName: 'vectors/m' });
      await assert.rejects(
        c.register([{ type: ['vec', 'm', '1'], sourceTimestamp: null, payload: json('{"a":') }]),
        JsonTextError,
      );
      assert.equal(c.isOpen, true);
      await c.close();
      await server.done;
    } finally {
      await server.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 2. our peer fed the recorded client frames

interface Hooks {
  /** Runs before the step at this index (global index in the file's steps). */
  before?: Record<number, (peer: HatPeer) => void | Promise<void>>;
}

/** One session timestamp per event session, seen across every compared frame. */
const sessionTimestamps = new Map<string, string>();

async function replayAgainstPeer(
  name: string,
  peer: HatPeer,
  hooks: Hooks = {},
  checkSessions = true,
): Promise<void> {
  const conv = conversations.get(name) as Conversation;
  const sockets = new Map<string, { socket: Socket; frames: RawFrames }>();
  const open = async (conn: string) => {
    let s = sockets.get(conn);
    if (s === undefined) {
      const socket = tcpConnect(peer.port, peer.host);
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
      s = { socket, frames: new RawFrames(socket) };
      sockets.set(conn, s);
    }
    return s;
  };
  let lastT = 0;
  try {
    for (const [i, step] of conv.steps.entries()) {
      // Let real time pass where the recording paused (the server flushed meanwhile).
      if (step.t_ms - lastT > 100) await new Promise((r) => setTimeout(r, 120));
      lastT = step.t_ms;
      await hooks.before?.[i]?.(peer);
      const where: string = `${name} ${step.conn} step ${i} (${step.dir}${step.eof ? ' eof' : ` ${step.decoded.data.type}`})`;
      const s = await open(step.conn);
      if (step.dir === 'c2s') {
        if (step.eof) {
          const before = peer.connectionCount();
          s.socket.end();
          await s.frames.next(FRAME_TIMEOUT, `peer close after ${where}`);
          for (let n = 0; n < 200 && peer.connectionCount() >= before; n++)
            await new Promise((r) => setTimeout(r, 5));
        } else {
          s.socket.write(unhex(step.frame_hex));
        }
        continue;
      }
      const frame = await s.frames.next(FRAME_TIMEOUT, where);
      if (step.eof) {
        assert.equal(
          frame === null ? null : JSON.stringify(decodeFrame(frame)),
          null,
          `${where}: expected the peer to close`,
        );
        continue;
      }
      assert.ok(frame !== null, `${where}: peer closed the connection`);
      const actual = decodeFrame(frame);
      const expected = step.decoded;
      const strip = (d: typeof actual) => ({ ...d, data: { type: d.data.type } });
      if (checkSessions) {
        assert.deepStrictEqual(
          maskTimestamps(strip(actual)),
          maskTimestamps(strip(expected)),
          `${where}: frame differs`,
        );
      } else {
        const noSession = (v: unknown) =>
          JSON.parse(
            JSON.stringify(maskTimestamps(v), (k, x) => (k === 'session' ? '<session>' : x)),
          );
        assert.deepStrictEqual(
          noSession(strip(actual)),
          noSession(strip(expected)),
          `${where}: frame differs`,
        );
      }
      for (const e of eventsIn(actual.payload)) {
        const key = `${peer.port}:${e.id.session}`;
        const ts = JSON.stringify(e.timestamp);
        const known = sessionTimestamps.get(key);
        if (known === undefined) sessionTimestamps.set(key, ts);
        else assert.equal(ts, known, `${where}: one timestamp per session`);
      }
    }
  } finally {
    for (const { socket } of sockets.values()) socket.destroy();
  }
}

describe('our peer answers the recorded client frames like the real server', () => {
  // The recordings of the instance on port 23032, in the order they were made (fresh database):
  // replayed in that order against one peer, every session number must come out the same.
  const chain = [
    'a-init-register-query',
    'b-notify-before-register-response',
    'c3-init-error-invalid-subscription',
    'd-register-without-response',
    'e-timeseries-pagination',
    'f-query-server',
    'h-json-payload-normalisation',
    'j-persisted-subscriber',
    'l-protocol-error-first-message',
    'm-invalid-json-payload',
    'n-server-eventer-events',
    'o-misc-register-and-queries',
  ];
  let chainPeer: HatPeer | undefined;
  after(() => chainPeer?.close());
  for (const name of chain) {
    test(`chain: ${name}`, async () => {
      chainPeer ??= await startHatPeer({ serverId: 1, flushDelayMs: 30 });
      await replayAgainstPeer(name, chainPeer);
    });
  }

  test('c1 and c2 (server_token "secret-token"; B is closed ~0.5 s after the init error)', async () => {
    const peer = await startHatPeer({ serverToken: 'secret-token' });
    try {
      const started = Date.now();
      await replayAgainstPeer('c1-init-error-wrong-token', peer);
      assert.ok(Date.now() - started >= 450, 'the close after an init error is delayed');
      await replayAgainstPeer('c2-init-token-accepted', peer);
    } finally {
      await peer.close();
    }
  });

  test('i: stopping → register failure → standby → close', async () => {
    const peer = await startHatPeer();
    try {
      await replayAgainstPeer('i-server-shutdown-status', peer, {
        before: {
          2: (p) => p.setStatus('stopping'),
          5: (p) => p.setStatus('standby'),
          6: (p) => p.stop(),
        },
      });
    } finally {
      await peer.close();
    }
  });

  test('k: events notify with ack (eventer server library behaviour)', async () => {
    const peer = await startHatPeer({ engineEvents: false });
    const conv = conversations.get('k-events-notify-with-ack-library') as Conversation;
    const step = conv.steps[2] as Extract<Step, { decoded: unknown }>;
    const [event] = step.decoded.payload as {
      id: Event['id'];
      type: string[];
      timestamp: Event['timestamp'];
      payload: [string, string];
    }[];
    let acked: Promise<void> | undefined;
    try {
      await replayAgainstPeer(
        'k-events-notify-with-ack-library',
        peer,
        {
          before: {
            2: (p) => {
              acked = p.notify(
                [
                  {
                    id: event?.id as Event['id'],
                    type: event?.type as string[],
                    timestamp: event?.timestamp as Event['timestamp'],
                    sourceTimestamp: null,
                    payload: json(event?.payload[1] as string),
                  },
                ],
                { withAck: true },
              );
            },
            4: async (p) => {
              await acked;
              p.setStatus('stopping');
            },
          },
        },
        false,
      );
    } finally {
      await peer.close();
    }
  });

  for (const name of [
    'g1-idle-server-ping',
    'g2-client-ping',
    'g3-server-ping-client-pong-only',
    'g4-ping-unanswered-server-closes',
  ]) {
    test(`${name} (peer pings scaled down to 150 ms / 400 ms)`, async () => {
      const peer = await startHatPeer({ pingDelay: 150, pingTimeout: 400 });
      try {
        await replayAgainstPeer(name, peer, {}, false);
      } finally {
        await peer.close();
      }
    });
  }
});
