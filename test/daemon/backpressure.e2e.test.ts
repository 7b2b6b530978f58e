/**
 * Backpressure end to end: the daemon as a child process with the event backend on the Hat test
 * peer, driven by the official `@hat-open/juggler` client. Many requests in flight on one
 * connection are all answered (the window slows the client, it does not refuse it); a stalled Hat
 * fills the write pipeline up to its bound, the Juggler connections stop being read, and every
 * write completes, in order, once Hat reads again. Queue sizes are read from the daemon's
 * metrics, never from timings or RSS.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { type HatPeer, startHatPeer } from '../peer/hat-peer.js';
import { DaemonProcess, httpRequest, tempDir, until, writeJson } from './harness.js';

const T = { timeout: 120_000 };
const WINDOW = 32; // the default max_pending_requests
const QUEUED = 16; // max_queued_writes in this test's config

interface OfficialConnection extends EventTarget {
  send(name: string, data: unknown): Promise<unknown>;
  close(): void;
}
type ConnectionCtor = new (address: string) => OfficialConnection;
let Connection: ConnectionCtor;

const { dir, cleanup } = tempDir('aimm-backpressure-');
let peer: HatPeer;
let daemon: DaemonProcess;
let jugglerUrl: string;
let httpPort: number;

before(async () => {
  const g = globalThis as Record<string, unknown>;
  g.WebSocket = WebSocket;
  const noop = () => {};
  g.document ??= { addEventListener: noop, removeEventListener: noop, body: null };
  g.window ??= { addEventListener: noop, removeEventListener: noop };
  Connection = ((await import('@hat-open/juggler')) as unknown as { Connection: ConnectionCtor })
    .Connection;

  peer = await startHatPeer({ flushDelayMs: 10 });
  const conf = join(dir, 'daemon.json');
  writeJson(conf, {
    name: 'bp',
    backend: {
      module: 'aimm-store/backends/event',
      model_prefix: ['aimm', 'model'],
      max_queued_writes: QUEUED,
    },
    hat: { eventer_server: { host: peer.host, port: peer.port } },
    control: [
      { module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 0 } },
      { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } },
    ],
    log: { level: 'info' },
  });
  daemon = new DaemonProcess(['serve', '--conf', conf]);
  jugglerUrl = `ws://127.0.0.1:${await daemon.port('juggler')}/`;
  httpPort = await daemon.port('http');
});

after(async () => {
  peer.stall(false);
  await daemon.stop();
  await peer.close();
  cleanup();
});

async function open(): Promise<OfficialConnection> {
  const conn = new Connection(jugglerUrl);
  await new Promise((resolve) => conn.addEventListener('open', resolve, { once: true }));
  return conn;
}

async function metric(name: string): Promise<number> {
  const text = (await httpRequest(httpPort, '/metrics')).body.toString();
  const m = new RegExp(`^aimm_store_${name} (\\S+)$`, 'm').exec(text);
  return m?.[1] === undefined ? 0 : Number(m[1]);
}

function writes(conn: OfficialConnection, n: number, tag: string): Promise<unknown>[] {
  return Array.from({ length: n }, (_, i) =>
    conn.send('add_instance', {
      model_type: 'bp.Model',
      instance_b64: Buffer.from(`${tag}-${i}`.padEnd(1024, '.')).toString('base64'),
      meta_only: true,
    }),
  );
}

function ids(results: unknown[]): number[] {
  return results.map((r) => (r as { instance_id: number }).instance_id);
}

function increasing(xs: number[]): boolean {
  return xs.every((x, i) => i === 0 || x > (xs[i - 1] as number));
}

describe('backpressure through the daemon', () => {
  test('256 requests in flight on one connection: every one answered, in order', T, async () => {
    const conn = await open();
    try {
      const results = await Promise.all(writes(conn, 256, 'one'));
      const got = ids(results);
      assert.equal(new Set(got).size, 256);
      assert.ok(increasing(got), 'ids follow the order of the requests');
      assert.equal(await metric('juggler_requests_in_flight'), 0);
    } finally {
      conn.close();
    }
  });

  test(
    'a stalled Hat: the pipeline stays at its bound, connections stop being read, all complete after',
    T,
    async () => {
      const a = await open();
      const b = await open();
      try {
        const pausedBefore = await metric('juggler_paused_total');
        peer.stall(true);
        const pa = writes(a, 150, 'a');
        const pb = writes(b, 150, 'b');
        // Each connection fills its window and is paused; the backend holds QUEUED writes and the
        // rest of the two windows wait for room.
        await until('both windows full', async () => {
          return (await metric('juggler_requests_in_flight')) === 2 * WINDOW;
        });
        await until('writers waiting for room', async () => {
          return (await metric('event_pipeline_waiting_writes')) === 2 * WINDOW - QUEUED;
        });
        assert.equal(await metric('event_pipeline_writes'), QUEUED);
        assert.ok((await metric('event_pipeline_depth')) < QUEUED);
        assert.ok((await metric('juggler_paused_total')) >= pausedBefore + 2);

        peer.stall(false);
        const [ra, rb] = await Promise.all([Promise.all(pa), Promise.all(pb)]);
        assert.ok(increasing(ids(ra)) && increasing(ids(rb)), 'each connection in order');
        assert.equal(new Set([...ids(ra), ...ids(rb)]).size, 300);
        assert.equal(await metric('event_pipeline_writes'), 0);
        assert.equal(await metric('juggler_requests_in_flight'), 0);
      } finally {
        peer.stall(false);
        a.close();
        b.close();
      }
    },
  );
});
