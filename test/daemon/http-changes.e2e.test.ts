/**
 * GET /changes end to end: the daemon (sqlite, Juggler and HTTP controls) as a child process,
 * writes through the Juggler client, Server-Sent Events read over real sockets. Every wait is for
 * an event, a log line or a socket state, never for a time.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { JugglerClient } from '../../src/client/client.js';
import { SseClient, type SseEvent } from '../support/sse.js';
import { DaemonProcess, httpRequest, tempDir, writeJson } from './harness.js';

const T = { timeout: 120_000 };
const RING = 20;

const bytes = (s: string) => new TextEncoder().encode(s);
const json = (e: SseEvent) => JSON.parse(e.data) as Record<string, unknown>;
const names = (es: SseEvent[]) => es.map((e) => e.event);
const synced = (es: SseEvent[]) => es.some((e) => e.event === 'synced');

function metric(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`aimm_store_${series} `));
  return line === undefined ? Number.NaN : Number(line.split(' ').at(-1));
}

describe('GET /changes (daemon e2e)', () => {
  const { dir, cleanup } = tempDir('aimm-sse-');
  let daemon: DaemonProcess;
  let http: number;
  let client: JugglerClient;
  const streams: SseClient[] = [];
  const open = (path = '/changes', headers: Record<string, string> = {}) => {
    const s = new SseClient(http, path, headers);
    streams.push(s);
    return s;
  };

  before(async () => {
    const config = writeJson(join(dir, 'config.json'), {
      name: 'sse',
      backend: { module: 'aimm-store/backends/sqlite', path: join(dir, 'models.db') },
      control: [
        { module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 0 } },
        {
          module: 'aimm-store/controls/http',
          server: { host: '127.0.0.1', port: 0 },
          changes_buffer: RING,
          // Long enough that the slow reader below is dropped for lagging, not by a clock.
          changes_stall_timeout: 600,
        },
      ],
    });
    daemon = new DaemonProcess(['serve', '--conf', config]);
    await daemon.waitForMsg('ready');
    http = await daemon.port('http');
    client = await JugglerClient.connect(`ws://127.0.0.1:${await daemon.port('juggler')}/`);
    await client.put('a.Model', bytes('one'));
    await client.put('b.Model', bytes('two'));
  });
  after(async () => {
    for (const s of streams) s.close();
    await client?.close();
    await daemon?.stop();
    cleanup();
  });

  test('a listing of the stored models, synced, then a live write through Juggler', T, async () => {
    const s = open();
    const first = await s.until(synced);
    assert.deepEqual(names(first), ['model', 'model', 'synced']);
    assert.deepEqual(
      first.slice(0, 2).map((e) => [json(e).instance_id, json(e).model_type, json(e).revision]),
      [
        [1, 'a.Model', 1],
        [2, 'b.Model', 1],
      ],
    );
    const put = await client.put('a.Model', bytes('one, again'), { instanceId: 1 });
    const change = await s.next('change');
    assert.equal(change.id, `${first[2]?.id?.split('-')[0]}-3`);
    assert.deepEqual(json(change), {
      change: 'updated',
      instance_id: 1,
      model_type: 'a.Model',
      revision: 2,
      origin: 'local',
      size: 10,
      sha256: put.sha256,
      updated: json(change).updated,
    });
    s.close();
  });

  test('a reconnect with Last-Event-ID gets exactly the changes it missed', T, async () => {
    const s = open();
    await s.until(synced);
    const lastId = s.parser.lastEventId;
    s.close();
    await s.whenEnded();
    const created = await client.put('c.Model', bytes('three'));
    await client.put('c.Model', bytes('three, again'), { instanceId: created.instanceId });
    await client.remove(2);
    const r = open('/changes', { 'Last-Event-ID': lastId });
    const events = await r.until(synced);
    assert.deepEqual(
      events.map((e) => [e.event, json(e).change ?? json(e).replayed, json(e).instance_id]),
      [
        ['change', 'created', created.instanceId],
        ['change', 'updated', created.instanceId],
        ['change', 'deleted', 2],
        ['synced', 3, undefined],
      ],
    );
    const [boot, seq] = lastId.split('-');
    assert.deepEqual(
      events.slice(0, 3).map((e) => e.id),
      [1, 2, 3].map((i) => `${boot}-${Number(seq) + i}`),
    );
    r.close();
  });

  test('an id the daemon does not know gets a reset, then the listing', T, async () => {
    const r = open('/changes', { 'Last-Event-ID': '0123456789abcdef-1' });
    const events = await r.until(synced);
    assert.deepEqual(names(events), ['reset', 'model', 'model', 'synced']);
    assert.deepEqual(json(events[0] as SseEvent), { reason: 'unknown_boot' });
    assert.deepEqual(
      events.slice(1, 3).map((e) => json(e).instance_id),
      [1, 3],
    );
    r.close();
  });

  test('a reader that stops reading is dropped; the others get every change', T, async (t) => {
    const reader = open();
    await reader.until(synced);
    const slow = await rawStream(http);
    // Big events (a long model type) fill the socket buffers in a few writes; the ring holds
    // RING changes, so once the slow client is RING changes behind it is dropped.
    const type = `slow.${'x'.repeat(60_000)}`;
    const created = await client.put(type, bytes('0'));
    let writes = 1;
    while (!daemon.lines.some((l) => l.msg === 'change stream client dropped')) {
      assert.ok(writes < 2000, 'the slow client was never dropped');
      await client.put(type, bytes(String(writes)), { instanceId: created.instanceId });
      writes++;
    }
    const drop = await daemon.waitForMsg('change stream client dropped');
    t.diagnostic(`dropped after ${writes} changes of ${type.length} bytes`);
    assert.equal(drop.reason, 'lagging');
    // The reading client got every one of them, in order.
    const changes = await reader.until(
      (es) => es.filter((e) => e.event === 'change').length >= writes,
    );
    assert.deepEqual(
      changes.filter((e) => e.event === 'change').map((e) => json(e).revision),
      Array.from({ length: writes }, (_, i) => i + 1),
    );
    await closed(slow);
    const text = (await httpRequest(http, '/metrics')).body.toString();
    assert.equal(metric(text, 'http_sse_dropped_total{reason="lagging"}'), 1);
    // Down to the reader alone once the daemon has seen the earlier tests' clients go.
    let clients = metric(text, 'http_sse_clients');
    while (clients !== 1) {
      assert.ok(clients > 1, `http_sse_clients ${clients}`);
      clients = metric((await httpRequest(http, '/metrics')).body.toString(), 'http_sse_clients');
    }
    reader.close();
    // The daemon serves on.
    assert.equal((await httpRequest(http, '/readyz')).status, 200);
  });

  test('the daemon stops promptly: every stream ends with a last comment', T, async () => {
    const a = open();
    const b = open('/changes?type=a.Model');
    await a.until(synced);
    await b.until(synced);
    await daemon.stop();
    await a.whenEnded();
    await b.whenEnded();
    assert.equal(a.parser.comments.at(-1), 'server shutting down');
    assert.equal(b.parser.comments.at(-1), 'server shutting down');
    assert.equal((await daemon.exited).code, 0);
    assert.ok(!daemon.lines.some((l) => l.msg === 'shutdown timed out; exiting'));
  });
});

/** A GET /changes on a raw socket that reads the headers' first chunk and then never again. */
function rawStream(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.write('GET /changes HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    });
    socket.once('data', (chunk: Buffer) => {
      assert.match(chunk.toString('latin1'), /^HTTP\/1\.1 200 /);
      socket.pause();
      resolve(socket);
    });
    socket.on('error', () => {});
    socket.once('close', () => reject(new Error('closed before it answered')));
  });
}

/** Resolves once the server has closed the socket (reading what was left to see the end). */
function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    socket.once('close', () => resolve());
    socket.on('data', () => {});
    socket.resume();
  });
}
