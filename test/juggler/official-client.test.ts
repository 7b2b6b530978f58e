/**
 * The official Juggler client from npm (`@hat-open/juggler` 0.7, 0.7 framing, pings) drives our
 * control: login, add/update/get/remove/list, state diffs (`change` events), `model_change`
 * notifications, segmented messages both ways and pings both ways. It expects a browser, so it
 * gets `ws`'s WebSocket and a minimal document/window (juggler.md).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { ADMIN, ADMIN_HASH, type Harness, sleep, startJuggler, until } from './support/harness.js';

type State = { models: Record<string, Record<string, unknown>>; actions: unknown } | null;
interface OfficialConnection extends EventTarget {
  readonly state: State;
  readonly readyState: number;
  send(name: string, data: unknown): Promise<unknown>;
  close(): void;
}
type ConnectionCtor = new (
  address: string,
  pingDelay?: number | null,
  pingTimeout?: number,
  maxSegmentSize?: number,
) => OfficialConnection;

let Connection: ConnectionCtor;
/** Every text the official client received (its WebSocket is a recording subclass of ws's). */
const received: string[] = [];

class SpyWebSocket extends WebSocket {
  constructor(address: string) {
    super(address);
    this.on('message', (data) => received.push(String(data)));
  }
}

before(async () => {
  const g = globalThis as Record<string, unknown>;
  g.WebSocket = SpyWebSocket;
  const noop = () => {};
  g.document ??= { addEventListener: noop, removeEventListener: noop, body: null };
  g.window ??= { addEventListener: noop, removeEventListener: noop };
  const mod = (await import('@hat-open/juggler')) as unknown as { Connection: ConnectionCtor };
  Connection = mod.Connection;
});

async function open(
  url: string,
  pingDelay: number | null = 5000,
  pingTimeout = 5000,
  maxSegmentSize = 64 * 1024,
): Promise<OfficialConnection> {
  const conn = new Connection(url, pingDelay, pingTimeout, maxSegmentSize);
  await new Promise((resolve) => conn.addEventListener('open', resolve, { once: true }));
  return conn;
}

/** The client's state (read through a function: assertions must not narrow it). */
function stateOf(conn: OfficialConnection): State {
  return conn.state;
}

function closed(conn: OfficialConnection): Promise<void> {
  return new Promise((resolve) => {
    if (conn.readyState === WebSocket.CLOSED) resolve();
    else conn.addEventListener('close', () => resolve(), { once: true });
  });
}

describe('@hat-open/juggler (npm) against our control', () => {
  let h: Harness;
  before(async () => {
    h = await startJuggler({ users: [ADMIN] });
  });
  after(() => h.close());

  test('login, writes, reads, deletes; state diffs and notifications', async () => {
    const conn = await open(h.url);
    const notes: { name: string; data: Record<string, unknown> }[] = [];
    conn.addEventListener('notify', (e) => notes.push((e as CustomEvent).detail));
    let changes = 0;
    conn.addEventListener('change', () => changes++);

    // Silent 0.7 client: the first push comes once the framing wait has passed.
    await until(() => conn.state !== null, 'first state');
    assert.deepEqual(conn.state, { models: {}, actions: {} });
    assert.deepEqual(await conn.send('login', { username: 'admin', password: ADMIN_HASH }), {
      success: true,
    });

    const added = (await conn.send('add_instance', {
      model_type: 'text.Model',
      instance_b64: Buffer.from('hello').toString('base64'),
    })) as Record<string, unknown>;
    assert.deepEqual(added, { instance_id: 1, model_type: 'text.Model', instance: 'aGVsbG8=' });
    await until(() => stateOf(conn)?.models['1'] !== undefined, 'model 1 in state');
    const entry = stateOf(conn)?.models['1'] as Record<string, unknown>;
    assert.equal(entry.revision, 1);
    assert.equal(entry.size, 5);
    assert.equal(entry.instance, undefined, 'metadata only by default');

    const updated = (await conn.send('update_instance', {
      model_type: 'text.Model',
      instance_id: 1,
      instance_b64: Buffer.from('hello2').toString('base64'),
      expected_revision: 1,
    })) as Record<string, unknown>;
    assert.equal(updated.instance, 'aGVsbG8y');
    await assert.rejects(
      conn.send('update_instance', {
        model_type: 'text.Model',
        instance_id: 1,
        instance_b64: 'eA==',
        expected_revision: 1,
      }),
      (err: unknown) => typeof err === 'string' && /revision/.test(err),
    );
    const got = (await conn.send('get_instance', { instance_id: 1 })) as Record<string, unknown>;
    assert.equal(Buffer.from(String(got.instance), 'base64').toString(), 'hello2');
    assert.equal(got.revision, 2);
    const list = (await conn.send('list_instances', null)) as Record<string, unknown>[];
    assert.deepEqual(
      list.map((m) => [m.instance_id, m.model_type, m.revision, m.size]),
      [[1, 'text.Model', 2, 6]],
    );
    await until(() => stateOf(conn)?.models['1']?.revision === 2, 'revision 2 in state');
    const removed = (await conn.send('remove_instance', { instance_id: 1 })) as Record<
      string,
      unknown
    >;
    assert.deepEqual([removed.instance_id, removed.revision], [1, 3]);
    await until(() => stateOf(conn)?.models['1'] === undefined, 'model 1 removed from state');
    await until(() => notes.length === 3, 'three notifications');
    assert.deepEqual(
      notes.map((n) => [n.name, n.data.change, n.data.instance_id, n.data.revision, n.data.origin]),
      [
        ['model_change', 'created', 1, 1, 'local'],
        ['model_change', 'updated', 1, 2, 'local'],
        ['model_change', 'deleted', 1, 3, 'local'],
      ],
    );
    assert.ok(changes >= 4);
    conn.close();
    await closed(conn);
  });

  test('messages over 64 KiB travel as segments both ways', async () => {
    const conn = await open(h.url);
    await conn.send('login', { username: 'admin', password: ADMIN_HASH });
    received.length = 0;
    const big = Buffer.alloc(300_000, 7);
    const r = (await conn.send('add_instance', {
      model_type: 'blob',
      instance_b64: big.toString('base64'),
    })) as Record<string, unknown>;
    const got = (await conn.send('get_instance', { instance_id: r.instance_id })) as Record<
      string,
      unknown
    >;
    assert.ok(Buffer.from(String(got.instance), 'base64').equals(big));
    // Our response came as 1-frames of exactly 65 536 characters, then a 0-frame.
    const segs = received.filter((t) => t[0] === '1');
    assert.ok(segs.length >= 6);
    for (const s of segs) assert.equal(s.length, 65537);
    conn.close();
    await closed(conn);
  });

  test('the client pings after 50 ms of silence; our pongs keep it open', async () => {
    const conn = await open(h.url, 50, 200);
    await sleep(600);
    assert.equal(conn.readyState, WebSocket.OPEN);
    conn.close();
    await closed(conn);
  });
});

describe('server pings reach the official client', () => {
  test('our ping after 100 ms idle is answered; the connection stays open', async () => {
    const h = await startJuggler({ ping_delay: 0.1, ping_timeout: 0.2 });
    try {
      received.length = 0;
      const conn = await open(h.url, null);
      await sleep(700);
      assert.equal(conn.readyState, WebSocket.OPEN);
      assert.ok(received.filter((t) => t === '2').length >= 3, `pings: ${received}`);
      assert.deepEqual(conn.state, { models: {}, actions: {} });
      conn.close();
      await closed(conn);
    } finally {
      await h.close();
    }
  });
});
