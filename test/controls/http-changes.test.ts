/**
 * GET /changes on the HTTP control in-process, over a real socket, with a backend whose listing
 * can be held back: the windows between subscribing, listing and going live are driven by the
 * test, not by timing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import type { ModelMeta } from '../../src/backend/types.js';
import { MetricsRegistry } from '../../src/common/metrics.js';
import { create } from '../../src/controls/http.js';
import type { Control, ControlContext } from '../../src/controls/types.js';
import { httpRequest } from '../daemon/harness.js';
import { MemoryBackend } from '../support/memory-backend.js';
import { SseClient, type SseEvent } from '../support/sse.js';

/** A memory backend whose next listing waits for `release()`, read before or after the wait. */
class GatedBackend extends MemoryBackend {
  private gate: { read: 'early' | 'late'; opened: Promise<void>; open: () => void } | null = null;
  listingsAsked = 0;

  hold(read: 'early' | 'late'): void {
    let open = () => {};
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    this.gate = { read, opened, open };
  }

  release(): void {
    this.gate?.open();
    this.gate = null;
  }

  override async getModels(): Promise<ModelMeta[]> {
    this.listingsAsked++;
    const gate = this.gate;
    if (gate === null) return super.getModels();
    if (gate.read === 'early') {
      const models = await super.getModels();
      await gate.opened;
      return models;
    }
    await gate.opened;
    return super.getModels();
  }
}

const bytes = (s: string) => new TextEncoder().encode(s);
const json = (e: SseEvent) => JSON.parse(e.data) as Record<string, unknown>;
const names = (es: SseEvent[]) => es.map((e) => e.event);
const synced = (es: SseEvent[]) => es.some((e) => e.event === 'synced');

describe('GET /changes (in-process)', () => {
  const backend = new GatedBackend();
  let ready = false;
  const metrics = new MetricsRegistry();
  const context: ControlContext = {
    name: 'test',
    logger: pino({ level: 'silent' }),
    metrics,
    backend,
    status: () => ({ ready, backend: { ready } }),
  };
  let control: Control;
  let port: number;
  const clients: SseClient[] = [];
  const open = (path = '/changes', headers: Record<string, string> = {}) => {
    const c = new SseClient(port, path, headers);
    clients.push(c);
    return c;
  };

  before(async () => {
    control = await create(
      {
        module: 'aimm-store/controls/http',
        server: { host: '127.0.0.1', port: 0 },
        changes_buffer: 4,
        changes_retry: 0.5,
        changes_heartbeat: 0.05,
      },
      context,
    );
    port = control.address.port;
    await backend.createModel('a.Model', bytes('one'));
    await backend.createModel('b.Model', bytes('two'));
  });
  after(async () => {
    for (const c of clients) c.close();
    await control.close();
  });

  test('503 before the daemon is ready, like /models', async () => {
    const res = await httpRequest(port, '/changes');
    assert.equal(res.status, 503);
    assert.equal(res.headers['retry-after'], '1');
    ready = true;
  });

  test('headers, retry hint, one model event per model, synced, then live changes with ids', async () => {
    const c = open();
    const res = await c.opened;
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.equal(res.headers['x-accel-buffering'], 'no');
    const first = await c.until(synced);
    assert.equal(c.parser.retry, 500);
    assert.deepEqual(names(first), ['model', 'model', 'synced']);
    assert.deepEqual(
      first.slice(0, 2).map((e) => [json(e).instance_id, json(e).model_type, e.id]),
      [
        [1, 'a.Model', undefined],
        [2, 'b.Model', undefined],
      ],
    );
    assert.deepEqual(Object.keys(json(first[0] as SseEvent)), [
      'instance_id',
      'model_type',
      'revision',
      'size',
      'sha256',
      'updated',
    ]);
    const sync = first[2] as SseEvent;
    assert.deepEqual(json(sync), { models: 2 });
    assert.match(sync.id ?? '', /^[0-9a-f]{16}-2$/);

    await backend.updateModel(1, 'a.Model', bytes('one, again'));
    const live = await c.next('change', 3);
    const boot = (sync.id ?? '').split('-')[0];
    assert.equal(live.id, `${boot}-3`);
    const data = json(live);
    assert.deepEqual(
      { ...data, sha256: typeof data.sha256, updated: typeof data.updated },
      {
        change: 'updated',
        instance_id: 1,
        model_type: 'a.Model',
        revision: 2,
        origin: 'local',
        size: 10,
        sha256: 'string',
        updated: 'string',
      },
    );
    c.close();
  });

  test('changes during a listing that already holds them are not sent twice', async () => {
    const gone = await backend.createModel('a.Model', bytes('four'));
    backend.hold('late');
    const asked = backend.listingsAsked;
    const c = open();
    await c.until(() => backend.listingsAsked > asked, 'the listing');
    await backend.updateModel(2, 'b.Model', bytes('two, again')); // in the listing
    const created = await backend.createModel('a.Model', bytes('three')); // in the listing
    await backend.deleteModel(gone.meta.instanceId); // gone before the listing: never sent
    backend.release();
    const events = await c.until(synced);
    assert.deepEqual(names(events), ['model', 'model', 'model', 'synced']);
    assert.deepEqual(
      events.slice(0, 3).map((e) => [json(e).instance_id, json(e).revision]),
      [
        [1, 2],
        [2, 2],
        [created.meta.instanceId, 1],
      ],
    );
    c.close();
  });

  test('changes after a listing was read come after it, before synced, without ids', async () => {
    backend.hold('early');
    const asked = backend.listingsAsked;
    const c = open();
    await c.until(() => backend.listingsAsked > asked, 'the listing');
    const models = (await MemoryBackend.prototype.getModels.call(backend)).length;
    await backend.updateModel(1, 'a.Model', bytes('one, third'));
    const created = await backend.createModel('b.Model', bytes('five'));
    backend.release();
    const events = await c.until(synced);
    assert.deepEqual(names(events), [...Array(models).fill('model'), 'change', 'change', 'synced']);
    const changes = events.slice(models, models + 2);
    assert.deepEqual(
      changes.map((e) => [json(e).change, json(e).instance_id, json(e).revision, e.id]),
      [
        ['updated', 1, 3, undefined],
        ['created', created.meta.instanceId, 1, undefined],
      ],
    );
    // synced names the position after both: a resume from it repeats neither.
    const sync = events.at(-1) as SseEvent;
    const resumed = open('/changes', { 'Last-Event-ID': sync.id ?? '' });
    assert.deepEqual(names(await resumed.until(synced)), ['synced']);
    assert.deepEqual(json(resumed.events[0] as SseEvent), { replayed: 0 });
    c.close();
    resumed.close();
  });

  test('Last-Event-ID (or ?after=) replays exactly the missed changes, then live', async () => {
    const c = open();
    const sync = await c.next('synced');
    c.close();
    await backend.updateModel(2, 'b.Model', bytes('missed 1'));
    await backend.deleteModel(1);
    for (const how of ['header', 'query']) {
      const r =
        how === 'header'
          ? open('/changes', { 'Last-Event-ID': sync.id ?? '' })
          : open(`/changes?after=${encodeURIComponent(sync.id ?? '')}`);
      const events = await r.until(synced);
      assert.deepEqual(names(events), ['change', 'change', 'synced'], how);
      assert.deepEqual(
        events.map((e) => json(e).change ?? json(e).replayed),
        ['updated', 'deleted', 2],
      );
      const [boot, seq] = (sync.id ?? '').split('-');
      assert.deepEqual(
        events.map((e) => e.id),
        [`${boot}-${Number(seq) + 1}`, `${boot}-${Number(seq) + 2}`, `${boot}-${Number(seq) + 2}`],
      );
      r.close();
    }
  });

  test('an id from another boot, too old or malformed: reset, then the listing', async () => {
    const c = open();
    const sync = await c.next('synced');
    c.close();
    const [boot] = (sync.id ?? '').split('-');
    for (let i = 0; i < 5; i++) await backend.createModel('c.Model', bytes(`filler ${i}`));
    const cases: [string, string][] = [
      [sync.id ?? '', 'too_old'], // five changes since, the ring holds four
      ['0000000000000000-1', 'unknown_boot'],
      [`${boot}-999`, 'invalid'],
      ['garbage', 'invalid'],
    ];
    const models = (await backend.getModels()).length;
    for (const [id, reason] of cases) {
      const r = open('/changes', { 'Last-Event-ID': id });
      const events = await r.until(synced);
      assert.deepEqual(names(events), ['reset', ...Array(models).fill('model'), 'synced'], id);
      assert.deepEqual(json(events[0] as SseEvent), { reason });
      assert.equal(events[0]?.id, undefined);
      r.close();
    }
    // The header wins over ?after= (a browser reconnects with both).
    const both = open(`/changes?after=garbage`, { 'Last-Event-ID': `${boot}-${await seqNow()}` });
    assert.deepEqual(names(await both.until(synced)), ['synced']);
    both.close();
  });

  test('?type= lists and streams one type; a model leaving the type is sent once more', async () => {
    const d1 = await backend.createModel('d.Model', bytes('d1'));
    const c = open('/changes?type=d.Model');
    const first = await c.until(synced);
    assert.deepEqual(
      first.map((e) => [e.event, json(e).instance_id ?? null]),
      [
        ['model', d1.meta.instanceId],
        ['synced', null],
      ],
    );
    await backend.createModel('other.Model', bytes('x'));
    const d2 = await backend.createModel('d.Model', bytes('d2'));
    await backend.updateModel(d1.meta.instanceId, 'e.Model', bytes('moved away'));
    await backend.updateModel(d1.meta.instanceId, 'e.Model', bytes('no longer ours'));
    await backend.deleteModel(d2.meta.instanceId);
    const events = await c.until((es) => es.filter((e) => e.event === 'change').length >= 3);
    assert.deepEqual(
      events
        .filter((e) => e.event === 'change')
        .map((e) => [json(e).change, json(e).instance_id, json(e).model_type]),
      [
        ['created', d2.meta.instanceId, 'd.Model'],
        ['updated', d1.meta.instanceId, 'e.Model'],
        ['deleted', d2.meta.instanceId, 'd.Model'],
      ],
    );
    c.close();
  });

  test('a quiet stream gets keepalive comments', async () => {
    const c = open();
    await c.next('synced');
    await c.until(() => c.parser.comments.includes('keepalive'), 'a keepalive');
    c.close();
  });

  test('bad query parameters get 400; HEAD gets the headers only', async () => {
    for (const path of ['/changes?foo=1', '/changes?type=a&type=b']) {
      const res = await httpRequest(port, path);
      assert.equal(res.status, 400, path);
      assert.match(JSON.parse(res.body.toString()).error, /query parameter/);
    }
    const head = await httpRequest(port, '/changes', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(head.body.length, 0);
    const post = await httpRequest(port, '/changes', { method: 'POST' });
    assert.equal(post.status, 405);
  });

  test('close() ends every stream with a final comment', async () => {
    const a = open();
    const b = open('/changes?type=a.Model');
    await a.next('synced');
    await b.next('synced');
    await control.close();
    await a.whenEnded();
    await b.whenEnded();
    assert.match(metrics.render(), /^aimm_store_http_sse_clients 0$/m);
    assert.equal(a.parser.comments.at(-1), 'server shutting down');
    assert.equal(b.parser.comments.at(-1), 'server shutting down');
  });

  async function seqNow(): Promise<number> {
    const c = open();
    const s = await c.next('synced');
    c.close();
    return Number((s.id ?? '').split('-')[1]);
  }
});
