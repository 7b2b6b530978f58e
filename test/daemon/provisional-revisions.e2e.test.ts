/**
 * `serve` with the event backend started without a snapshot (the default `full_replay:
 * latest_then_history`, issue 15): ready from Hat's `latest`, with every revision served marked
 * provisional — HTTP header, weak ETag (If-Match with it: 412), `revision_provisional` in JSON, the
 * Juggler replies and the change stream — until the history has been counted; then an `updated`
 * change carries the exact revision and the marks are gone. The Hat test peer holds its history
 * queries until the test lets them go.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { JugglerClient } from '../../src/client/client.js';
import { type HatPeer, startHatPeer } from '../peer/hat-peer.js';
import { SseClient, type SseEvent } from '../support/sse.js';
import { DaemonProcess, httpRequest, tempDir, until, writeJson } from './harness.js';

const T = { timeout: 60_000 };
const PREFIX = ['aimm', 'prov'];

const model = (id: number, text: string) => ({
  type: [...PREFIX, String(id)],
  sourceTimestamp: null,
  payload: {
    kind: 'json' as const,
    text: JSON.stringify({ type: 'text.Model', instance: Buffer.from(text).toString('base64') }),
  },
});
const json = (e: SseEvent) => JSON.parse(e.data) as Record<string, unknown>;

describe('provisional revisions after a start without a snapshot (daemon e2e)', () => {
  const { dir, cleanup } = tempDir('aimm-prov-');
  let peer: HatPeer;
  let daemon: DaemonProcess | undefined;
  let sse: SseClient | undefined;
  let client: JugglerClient | undefined;

  before(async () => {
    peer = await startHatPeer({ flushDelayMs: 10 });
    // Model 1: three events (revision 3); model 2: one event (revision 1).
    peer.register([model(1, 'one')]);
    peer.register([model(2, 'two')]);
    peer.register([model(1, 'one, again')]);
    peer.register([model(1, 'one, third')]);
  });
  after(async () => {
    sse?.close();
    await client?.close();
    await daemon?.stop();
    await peer.close();
    cleanup();
  });

  test('marked while the history is counted, then exact with an updated change', T, async () => {
    const config = writeJson(join(dir, 'config.json'), {
      name: 'prov',
      backend: { module: 'aimm-store/backends/event', model_prefix: PREFIX },
      hat: { eventer_server: { host: peer.host, port: peer.port } },
      control: [
        { module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 0 } },
        { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } },
      ],
    });
    peer.holdHistoryQueries(true);
    daemon = new DaemonProcess(['serve', '--conf', config]);
    const http = await daemon.port('http');
    await until('ready', async () => (await httpRequest(http, '/readyz')).status === 200);

    // HTTP: the lower bound, marked; a weak ETag that no If-Match matches.
    const got = await httpRequest(http, '/models/1');
    assert.equal(got.body.toString(), 'one, third');
    assert.equal(got.headers['x-model-revision'], '1');
    assert.equal(got.headers['x-model-revision-provisional'], 'true');
    const weak = String(got.headers.etag);
    assert.match(weak, /^W\/"1-[0-9a-f]{64}"$/);
    const cached = await httpRequest(http, '/models/1', { headers: { 'If-None-Match': weak } });
    assert.equal(cached.status, 304, 'the weak ETag still validates a cached copy');
    const cas = await httpRequest(http, '/models/1', {
      method: 'PUT',
      headers: { 'If-Match': weak, 'X-Model-Type': 'text.Model', 'Content-Length': '0' },
    });
    assert.equal(cas.status, 412, cas.body.toString());
    assert.match(JSON.parse(cas.body.toString()).error, /weak ETag.*provisional/);
    const list = JSON.parse((await httpRequest(http, '/models')).body.toString()) as Record<
      string,
      unknown
    >[];
    const listed = list.map((m) => [m.instance_id, m.revision, m.revision_provisional]);
    assert.deepEqual(listed, [
      [1, 1, true],
      [2, 1, true],
    ]);

    // Juggler: the same mark; the change stream: the listing marked, then the exact revisions.
    client = await JugglerClient.connect(`ws://127.0.0.1:${await daemon.port('juggler')}/`);
    const meta = await client.getMeta(1);
    assert.deepEqual([meta.revision, meta.revisionProvisional], [1, true]);
    sse = new SseClient(http, '/changes');
    const synced = await sse.until((es) => es.some((e) => e.event === 'synced'));
    assert.deepEqual(
      synced
        .filter((e) => e.event === 'model')
        .map((e) => [json(e).revision, json(e).revision_provisional]),
      [
        [1, true],
        [1, true],
      ],
    );

    peer.holdHistoryQueries(false);
    const changes = await sse.until(
      (es) => es.filter((e) => e.event === 'change').length >= 2,
      'the exact revisions',
    );
    const exact = changes.filter((e) => e.event === 'change').map(json);
    assert.deepEqual(
      exact.map((c) => [c.change, c.instance_id, c.revision, c.revision_provisional]),
      [
        ['updated', 1, 3, undefined],
        ['updated', 2, 1, undefined],
      ],
    );
    const after = await httpRequest(http, '/models/1');
    assert.equal(after.headers['x-model-revision'], '3');
    assert.equal(after.headers['x-model-revision-provisional'], undefined);
    assert.match(String(after.headers.etag), /^"3-[0-9a-f]{64}"$/);
    assert.equal((await client.getMeta(1)).revisionProvisional, undefined);
    // Compare-and-set with the exact ETag works.
    const put = await httpRequest(http, '/models/1', {
      method: 'PUT',
      headers: {
        'If-Match': String(after.headers.etag),
        'X-Model-Type': 'text.Model',
        'Content-Length': '0',
      },
    });
    assert.equal(put.status, 200, put.body.toString());
    assert.equal(JSON.parse(put.body.toString()).revision, 4);
  });
});
