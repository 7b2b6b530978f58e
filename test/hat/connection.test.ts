/** The chatter connection over real loopback sockets: ids, conversations, pings, typed closes. */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Connection, type ReceivedMsg } from '../../src/hat/chatter/connection.js';
import {
  ConnectionClosedError,
  FrameTooLargeError,
  PingTimeoutError,
  ProtocolError,
} from '../../src/hat/chatter/errors.js';
import { type ChatterMsg, decodeBody, encodeFrame } from '../../src/hat/chatter/message.js';
import { RawFrames } from './replay.js';

let server: Server;
let port = 0;
const accepted: Socket[] = [];
let waiting: ((s: Socket) => void) | null = null;

before(async () => {
  server = createServer((s) => {
    if (waiting !== null) {
      const w = waiting;
      waiting = null;
      w(s);
    } else accepted.push(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** A connection under test (client side) and the raw socket of its peer. */
async function pair(options: Partial<ConstructorParameters<typeof Connection>[1]> = {}) {
  const received: ReceivedMsg[] = [];
  const remote = new Promise<Socket>((resolve) => {
    waiting = resolve;
  });
  const socket = tcpConnect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const conn = new Connection(socket, { onMessage: (m) => received.push(m), ...options });
  const raw = await remote;
  return { conn, raw, frames: new RawFrames(raw), received };
}

const frame = (m: Partial<ChatterMsg>): Buffer =>
  encodeFrame({
    id: 1,
    first: 1,
    owner: true,
    token: true,
    last: true,
    type: 'X.Msg',
    data: new Uint8Array(0),
    ...m,
  });

const decodeRaw = (f: Buffer | null): ChatterMsg => {
  assert.ok(f !== null, 'expected a frame');
  return decodeBody(f.subarray(1 + (f[0] as number)));
};

const until = async (cond: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('chatter connection', () => {
  test('ids count every message sent, pongs included; replies carry the peer conversation', async () => {
    const { conn, raw, frames, received } = await pair({ pingDelay: 0 });
    const c1 = conn.send('X.Req', Uint8Array.of(1), { last: false });
    assert.deepEqual(c1, { owner: true, first: 1 });
    raw.write(frame({ id: 1, first: 1, owner: true, last: false, type: 'HatChatter.Ping' }));
    raw.write(frame({ id: 2, first: 1, owner: false, type: 'X.Res', data: Uint8Array.of(7) }));
    await until(() => received.length === 1);
    const res = received[0] as ReceivedMsg;
    assert.deepEqual(res.conv, { owner: true, first: 1 }, 'response maps to our conversation');
    assert.equal(res.first, false);
    assert.deepEqual([...res.data], [7]);
    const c3 = conn.send('X.Req', Uint8Array.of(2));
    assert.deepEqual(c3, { owner: true, first: 3 }, 'the pong took id 2');
    const sent = [
      decodeRaw(await frames.next(1000)),
      decodeRaw(await frames.next(1000)),
      decodeRaw(await frames.next(1000)),
    ];
    assert.deepEqual(
      sent.map((m) => [m.id, m.first, m.owner, m.last, m.token, m.type]),
      [
        [1, 1, true, false, true, 'X.Req'],
        [2, 1, false, true, true, 'HatChatter.Pong'],
        [3, 3, true, true, true, 'X.Req'],
      ],
    );
    raw.write(frame({ id: 3, first: 3, owner: true, type: 'X.Notify' }));
    await until(() => received.length === 2);
    assert.equal(received[1]?.first, true, 'a message starting its conversation');
    assert.deepEqual(received[1]?.conv, { owner: false, first: 3 });
    await conn.close();
    assert.equal(await conn.closed, null);
    assert.throws(() => conn.send('X.Req', new Uint8Array(0)), ConnectionClosedError);
    raw.destroy();
  });

  test('pings after the idle delay, closes with PingTimeoutError when nothing answers', async () => {
    const { conn, raw, frames } = await pair({ pingDelay: 60, pingTimeout: 120 });
    const ping = decodeRaw(await frames.next(2000));
    assert.deepEqual(
      [ping.id, ping.first, ping.owner, ping.last, ping.type],
      [1, 1, true, false, 'HatChatter.Ping'],
    );
    const reason = await conn.closed;
    assert.ok(reason instanceof PingTimeoutError, String(reason));
    assert.equal(await frames.next(2000), null, 'socket closed');
    raw.destroy();
  });

  test('any message after a ping keeps the connection; crossing pings are both answered', async () => {
    const { conn, raw, frames } = await pair({ pingDelay: 60, pingTimeout: 150 });
    let pings = 0;
    for (let i = 0; i < 3; i++) {
      const m = decodeRaw(await frames.next(2000));
      assert.equal(m.type, 'HatChatter.Ping');
      pings++;
      // Our own ping crosses theirs: answer it and ping back in the same breath.
      raw.write(
        Buffer.concat([
          frame({ id: 10 + 2 * i, first: m.id, owner: false, type: 'HatChatter.Pong' }),
          frame({
            id: 11 + 2 * i,
            first: 11 + 2 * i,
            owner: true,
            last: false,
            type: 'HatChatter.Ping',
          }),
        ]),
      );
      const pong = decodeRaw(await frames.next(2000));
      assert.deepEqual(
        [pong.type, pong.first, pong.owner, pong.last],
        ['HatChatter.Pong', 11 + 2 * i, false, true],
      );
    }
    assert.equal(pings, 3);
    assert.equal(conn.isOpen, true);
    await conn.close();
    raw.destroy();
  });

  test('a peer busy with our large request is not dead: the wait grows with what it owes', async () => {
    // Short pings; 4 MB owed gives the peer 4 s more at the assumed 1 MB/s. Its silence (well
    // over pingDelay + pingTimeout, well under the allowance) is a peer working through our frame.
    const { conn, raw, frames, received } = await pair({ pingDelay: 30, pingTimeout: 60 });
    const big = new Uint8Array(4_000_000).fill(0x41);
    const c = conn.send('X.Req', big, { last: false });
    assert.ok(conn.owedBytes > 4_000_000);
    assert.equal(decodeRaw(await frames.next(5000)).type, 'X.Req');
    const ping = decodeRaw(await frames.next(5000));
    assert.equal(ping.type, 'HatChatter.Ping', 'we did ping the silent peer');
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(conn.isOpen, true, 'still open long after pingDelay + pingTimeout');
    raw.write(frame({ id: 1, first: c.first, owner: false, type: 'X.Res' }));
    await until(() => received.length === 1);
    assert.deepEqual(received[0]?.conv, c, 'the answer reached the handler');
    assert.equal(conn.owedBytes, 0, 'an answered request is owed no more');
    // Idle again, the peer now owes nothing: a silent peer is dead after the plain timeout.
    const reason = await conn.closed;
    assert.ok(reason instanceof PingTimeoutError, String(reason));
    assert.equal(reason.owedBytes, 0);
    assert.match(reason.message, /within 60 ms after a ping$/);
    raw.destroy();
  });

  test('bytes sent since the peer last spoke count too (a message without a response)', async () => {
    const { conn, raw, frames } = await pair({ pingDelay: 30, pingTimeout: 60 });
    conn.send('X.Notify', new Uint8Array(4_000_000), { last: true });
    assert.equal(decodeRaw(await frames.next(5000)).type, 'X.Notify');
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(conn.isOpen, true);
    raw.write(frame({ id: 1, first: 1, owner: true, type: 'X.Other' }));
    await until(() => conn.owedBytes === 0);
    assert.ok((await conn.closed) instanceof PingTimeoutError, 'then idle and dead');
    raw.destroy();
  });

  test('a dead peer that owes us bytes is found after the ping timeout plus their allowance', async () => {
    // 2 MB at 20 MB/s: 100 ms more; the error says what was allowed.
    const { conn, raw } = await pair({
      pingDelay: 30,
      pingTimeout: 60,
      busyBytesPerSecond: 20_000_000,
    });
    conn.send('X.Req', new Uint8Array(2_000_000), { last: false });
    const reason = await conn.closed;
    assert.ok(reason instanceof PingTimeoutError, String(reason));
    assert.ok(reason.owedBytes > 2_000_000);
    assert.equal(reason.extraMs, 101);
    assert.match(
      reason.message,
      /within 161 ms after a ping \(the ping timeout of 60 ms plus 101 ms for the 2000\d+ bytes it had not answered yet\)/,
    );
    raw.destroy();
  });

  test('an answer already waiting on the socket counts, even when our own work delayed its read', async () => {
    const { conn, raw, frames } = await pair({ pingDelay: 30, pingTimeout: 1000 });
    const ping = decodeRaw(await frames.next(5000));
    assert.equal(ping.type, 'HatChatter.Ping');
    raw.write(frame({ id: 1, first: ping.first, owner: false, type: 'HatChatter.Pong' }));
    // Busy for longer than the ping timeout (as when decoding a large message): the pong sits
    // unread in the socket when the ping timer fires.
    const end = Date.now() + 1500;
    while (Date.now() < end) {
      // spin
    }
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(conn.isOpen, true, String(conn.reason));
    await conn.close();
    raw.destroy();
  });

  test('pingDelay 0 never pings but still answers', async () => {
    const { conn, raw, frames } = await pair({ pingDelay: 0 });
    raw.write(frame({ id: 5, first: 5, owner: true, last: false, type: 'HatChatter.Ping' }));
    const pong = decodeRaw(await frames.next(1000));
    assert.equal(pong.type, 'HatChatter.Pong');
    await assert.rejects(frames.next(200), /timed out/, 'no ping of our own');
    await conn.close();
    raw.destroy();
  });

  test('a paused connection neither pings nor times out; resume restarts the clock', async () => {
    const { conn, raw, frames } = await pair({ pingDelay: 40, pingTimeout: 40 });
    conn.pause();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(conn.isOpen, true);
    await assert.rejects(frames.next(10), /timed out/);
    conn.resume();
    assert.equal(decodeRaw(await frames.next(1000)).type, 'HatChatter.Ping');
    await conn.closed;
    raw.destroy();
  });

  test('a frame over the maximum closes with FrameTooLargeError before its body arrives', async () => {
    const { conn, raw } = await pair({ pingDelay: 0, maxFrameSize: 1000 });
    raw.write(Buffer.from([0x02, 0x03, 0xe9])); // announces 1001 bytes, sends none
    const reason = await conn.closed;
    assert.ok(reason instanceof FrameTooLargeError);
    assert.equal(reason.size, 1001);
    raw.destroy();
  });

  test('malformed bodies and handler exceptions close with ProtocolError', async () => {
    const a = await pair({ pingDelay: 0 });
    a.raw.write(Buffer.from([0x01, 0x02, 0x81, 0x81]));
    const r1 = await a.conn.closed;
    assert.ok(r1 instanceof ProtocolError);
    assert.match(r1.message, /malformed chatter message: SBS .* at byte \d+/);
    a.raw.destroy();

    const b = await pair({
      pingDelay: 0,
      onMessage: () => {
        throw new Error('boom');
      },
    });
    b.raw.write(frame({}));
    const r2 = await b.conn.closed;
    assert.ok(r2 instanceof ProtocolError);
    assert.match(r2.message, /boom/);
    b.raw.destroy();
  });

  test('the peer closing gives ConnectionClosedError', async () => {
    const { conn, raw } = await pair({ pingDelay: 0 });
    raw.end();
    const reason = await conn.closed;
    assert.ok(reason instanceof ConnectionClosedError);
    assert.equal(conn.isOpen, false);
  });
});
