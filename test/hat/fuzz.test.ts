/**
 * Fuzzing with bounded counts: random and mutated bytes into the frame reader, the SBS and eventer
 * decoders, a connected client and the peer. Everything must end in a typed error (or a valid
 * value), never an uncaught exception, a hang, or buffering beyond the maximum frame size.
 */
import assert from 'node:assert/strict';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { HatConnectionError, ProtocolError } from '../../src/hat/chatter/errors.js';
import { FrameReader } from '../../src/hat/chatter/framing.js';
import { decodeBody, encodeFrame } from '../../src/hat/chatter/message.js';
import { connect } from '../../src/hat/eventer/client.js';
import * as codec from '../../src/hat/eventer/codec.js';
import { type HatPeer, startHatPeer } from '../peer/hat-peer.js';
import { loadVectors, unhex } from './vectors.js';

const uncaught: unknown[] = [];
const onUncaught = (err: unknown) => uncaught.push(err);
before(() => {
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
});
after(() => {
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUncaught);
  assert.deepEqual(uncaught, [], 'no uncaught exceptions or unhandled rejections');
});

const messages = loadVectors<{ messages: { name: string; hex: string }[] }>(
  'eventer-messages.json',
).messages;
const validFrames = messages.map((m, i) =>
  encodeFrame({
    id: i + 2,
    first: i + 2,
    owner: true,
    token: true,
    last: true,
    type: m.name,
    data: unhex(m.hex),
  }),
);

/** A byte string mutated a few times: flips, overwrites, inserts, deletions, truncation. */
function mutated(base: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  const op = fc.oneof(
    fc.record({
      k: fc.constant('flip' as const),
      at: fc.nat(),
      bit: fc.integer({ min: 0, max: 7 }),
    }),
    fc.record({
      k: fc.constant('set' as const),
      at: fc.nat(),
      v: fc.integer({ min: 0, max: 255 }),
    }),
    fc.record({
      k: fc.constant('insert' as const),
      at: fc.nat(),
      v: fc.uint8Array({ maxLength: 8 }),
    }),
    fc.record({
      k: fc.constant('delete' as const),
      at: fc.nat(),
      n: fc.integer({ min: 1, max: 8 }),
    }),
    fc.record({ k: fc.constant('truncate' as const), at: fc.nat() }),
  );
  return fc.tuple(base, fc.array(op, { minLength: 1, maxLength: 4 })).map(([b, ops]) => {
    let out = Buffer.from(b);
    for (const o of ops) {
      const at = out.length === 0 ? 0 : o.at % out.length;
      if (o.k === 'flip' && out.length > 0) out[at] = (out[at] as number) ^ (1 << o.bit);
      else if (o.k === 'set' && out.length > 0) out[at] = o.v;
      else if (o.k === 'insert') out = Buffer.concat([out.subarray(0, at), o.v, out.subarray(at)]);
      else if (o.k === 'delete') out = Buffer.concat([out.subarray(0, at), out.subarray(at + o.n)]);
      else if (o.k === 'truncate') out = out.subarray(0, at);
    }
    return out;
  });
}

const anyStream = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  mutated(fc.constantFrom(...validFrames)),
  fc.array(mutated(fc.constantFrom(...validFrames)), { maxLength: 4 }).map((a) => Buffer.concat(a)),
);

const decoders = [
  codec.decodeInitReq,
  codec.decodeInitRes,
  codec.decodeStatusNotify,
  codec.decodeEventsNotify,
  codec.decodeEventsAck,
  codec.decodeRegisterReq,
  codec.decodeRegisterRes,
  codec.decodeQueryReq,
  codec.decodeQueryRes,
];

describe('fuzz: decoders', () => {
  test('frame reader + chatter decoding: typed errors only, bounded buffering', () => {
    const MAX = 4096;
    fc.assert(
      fc.property(
        anyStream,
        fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 20 }),
        (stream, sizes) => {
          const reader = new FrameReader(MAX);
          let i = 0;
          let k = 0;
          try {
            while (i < stream.length) {
              const n = sizes.length === 0 ? stream.length : (sizes[k++ % sizes.length] as number);
              reader.push(stream.subarray(i, i + n), (body) => {
                decodeBody(body);
              });
              i += n;
              assert.ok(reader.buffered <= MAX);
            }
          } catch (err) {
            assert.ok(err instanceof HatConnectionError, `untyped error: ${String(err)}`);
          }
        },
      ),
      { numRuns: 1500 },
    );
  });

  test('eventer payload decoders: a value or a ProtocolError', () => {
    const payloads = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      mutated(fc.constantFrom(...messages.map((m) => unhex(m.hex)))),
    );
    fc.assert(
      fc.property(payloads, (data) => {
        for (const decodeX of decoders) {
          try {
            decodeX(data);
          } catch (err) {
            assert.ok(err instanceof ProtocolError, `untyped error: ${String(err)}`);
          }
        }
      }),
      { numRuns: 1500 },
    );
  });
});

describe('fuzz: live connections', { timeout: 60_000 }, () => {
  test('a client fed garbage after its init closes with a typed error; its request settles', async () => {
    let script: Buffer = Buffer.alloc(0);
    const server = createServer((s: Socket) => {
      s.on('error', () => {});
      s.once('data', () => {
        s.write(
          encodeFrame({
            id: 1,
            first: 1,
            owner: false,
            token: true,
            last: true,
            type: 'HatEventer.MsgInitRes',
            data: codec.encodeInitRes({ kind: 'success', status: 'operational' }),
          }),
        );
        // Garbage once the client's next request arrives, then end the stream.
        s.once('data', () => {
          s.end(script);
        });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      await fc.assert(
        fc.asyncProperty(anyStream, async (stream) => {
          script = Buffer.from(stream);
          const c = await connect(
            { host: '127.0.0.1', port },
            { clientName: 'fuzz', maxFrameSize: 4096, pingDelay: 0 },
          );
          const settled = c.query({ kind: 'latest', eventTypes: null }).then(
            () => 'resolved',
            (err: unknown) => {
              assert.ok(err instanceof HatConnectionError, `untyped: ${String(err)}`);
              return 'rejected';
            },
          );
          const reason = await Promise.race([
            c.closed,
            new Promise((r) => setTimeout(() => r('hang'), 3000)),
          ]);
          assert.notEqual(reason, 'hang', 'the connection must end');
          assert.ok(
            reason instanceof HatConnectionError,
            `typed close reason, got ${String(reason)}`,
          );
          assert.ok(['resolved', 'rejected'].includes(await settled));
        }),
        { numRuns: 150 },
      );
    } finally {
      server.close();
    }
  });

  test('the peer fed garbage after an init closes that connection and keeps serving', async () => {
    const peer: HatPeer = await startHatPeer({ maxFrameSize: 4096, initErrorCloseMs: 20 });
    try {
      const init = encodeFrame({
        id: 1,
        first: 1,
        owner: true,
        token: true,
        last: false,
        type: 'HatEventer.MsgInitReq',
        data: codec.encodeInitReq({
          clientName: 'fuzz',
          clientToken: null,
          subscriptions: [['*']],
          serverId: null,
          persisted: false,
        }),
      });
      await fc.assert(
        fc.asyncProperty(anyStream, fc.boolean(), async (stream, withInit) => {
          const s = tcpConnect(peer.port, peer.host);
          s.on('error', () => {});
          await new Promise((r) => s.once('connect', r));
          s.on('data', () => {});
          s.end(withInit ? Buffer.concat([init, stream]) : stream);
          const ended = await Promise.race([
            new Promise((r) => s.once('close', () => r('closed'))),
            new Promise((r) => setTimeout(() => r('hang'), 3000)),
          ]);
          assert.equal(ended, 'closed');
        }),
        { numRuns: 150 },
      );
      for (let i = 0; i < 200 && peer.connectionCount() > 0; i++)
        await new Promise((r) => setTimeout(r, 5));
      assert.equal(peer.connectionCount(), 0, 'every fuzzed connection is gone');
      const c = await connect({ host: peer.host, port: peer.port }, { clientName: 'after-fuzz' });
      assert.ok((await c.query({ kind: 'latest', eventTypes: null })).events.length > 0);
      await c.close();
    } finally {
      await peer.close();
    }
  });
});
