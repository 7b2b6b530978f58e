/**
 * The TypeScript client (`aimm-store/client`) against the Juggler control: login (clear password
 * hashed by the client), put/get/getMeta/list/remove with compare-and-set, watch, state sync, both
 * framings, errors, and a round trip on the real sqlite backend.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { firstValueFrom, take, toArray } from 'rxjs';
import { openSqliteBackend } from '../../src/backends/sqlite.js';
import {
  AuthenticationError,
  ConnectionClosedError,
  JugglerClient,
  type ModelChangeEvent,
  RequestFailedError,
} from '../../src/client/index.js';
import { ADMIN, type Harness, startJuggler, until } from '../juggler/support/harness.js';
import { RemoteCapableBackend } from '../juggler/support/test-backends.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('JugglerClient', () => {
  let h: Harness;
  const backend = new RemoteCapableBackend();
  before(async () => {
    h = await startJuggler({ users: [ADMIN] }, backend);
  });
  after(() => h.close());

  const login = { username: 'admin', password: 'admin' };

  for (const framing of ['0.7', '0.6'] as const) {
    test(`${framing}: put, get, getMeta, list, remove with compare-and-set`, async () => {
      const client = await JugglerClient.connect(h.url, { ...login, framing });
      const bytes = new Uint8Array([0, 1, 2, 255]);
      const created = await client.put('sklearn.SVC', bytes);
      assert.equal(created.modelType, 'sklearn.SVC');
      assert.equal(created.revision, 1);
      assert.equal(created.size, 4);
      assert.equal(created.sha256, sha(bytes));
      assert.equal(created.ack, 'committed');
      const updated = await client.put('sklearn.SVC', new Uint8Array([9]), {
        instanceId: created.instanceId,
        expectedRevision: 1,
      });
      assert.equal(updated.revision, 2);
      await assert.rejects(
        client.put('x', new Uint8Array(), { instanceId: created.instanceId, expectedRevision: 1 }),
        (err: Error) => err instanceof RequestFailedError && /expected 1/.test(err.message),
      );
      const got = await client.get(created.instanceId);
      assert.deepEqual([...got.instance], [9]);
      assert.equal(got.revision, 2);
      assert.deepEqual(await client.getMeta(created.instanceId), {
        instanceId: created.instanceId,
        modelType: 'sklearn.SVC',
        revision: 2,
        size: 1,
        sha256: sha(new Uint8Array([9])),
        updated: got.updated,
      });
      assert.ok((await client.list()).some((m) => m.instanceId === created.instanceId));
      await assert.rejects(
        client.remove(created.instanceId, { expectedRevision: 1 }),
        RequestFailedError,
      );
      const removed = await client.remove(created.instanceId, { expectedRevision: 2 });
      assert.deepEqual(removed, {
        instanceId: created.instanceId,
        modelType: 'sklearn.SVC',
        revision: 3,
        ack: 'committed',
      });
      await assert.rejects(client.get(created.instanceId), /not found/);
      await assert.rejects(client.put('x', new Uint8Array(), { expectedRevision: 1 }), TypeError);
      await client.close();
    });
  }

  test('watch sees local and remote changes; state follows with sync', async () => {
    const watcher = await JugglerClient.connect(h.url, { ...login, sync: true });
    assert.ok(watcher.state !== null);
    const events = firstValueFrom(watcher.watch().pipe(take(3), toArray()));
    const writer = await JugglerClient.connect(h.url, login);
    const m = await writer.put('local.Model', new Uint8Array([1]));
    await backend.remote(() =>
      backend.updateModel(m.instanceId, 'local.Model', new Uint8Array([2])),
    );
    await writer.remove(m.instanceId);
    const seen: ModelChangeEvent[] = await events;
    assert.deepEqual(
      seen.map((e) => [e.change, e.instanceId, e.revision, e.origin]),
      [
        ['created', m.instanceId, 1, 'local'],
        ['updated', m.instanceId, 2, 'remote'],
        ['deleted', m.instanceId, 3, 'local'],
      ],
    );
    assert.equal(seen[0]?.sha256, sha(new Uint8Array([1])));
    await until(() => watcher.state?.models[String(m.instanceId)] === undefined, 'state follows');
    await Promise.all([writer.close(), watcher.close()]);
  });

  test('state: the models map with metadata, kept in sync', async () => {
    const c = await JugglerClient.connect(h.url, { ...login, sync: true });
    const m = await c.put('s.Model', new Uint8Array([5, 5]));
    await until(() => c.state?.models[String(m.instanceId)] !== undefined, 'model in state');
    const entry = c.state?.models[String(m.instanceId)] as Record<string, unknown>;
    assert.deepEqual(
      [entry.instance_id, entry.model_type, entry.revision, entry.size, entry.sha256],
      [m.instanceId, 's.Model', 1, 2, m.sha256],
    );
    await c.close();
  });

  test('AIMM requests through request()', async () => {
    const c = await JugglerClient.connect(h.url, login);
    const r = (await c.request('add_instance', {
      model_type: 'text.Model',
      instance_b64: 'aGk=',
    })) as Record<string, unknown>;
    assert.deepEqual(Object.keys(r), ['instance_id', 'model_type', 'instance']);
    assert.deepEqual(await c.request('no_such_request', null), { success: false });
    await c.close();
  });

  test('wrong password: AuthenticationError; no login: unauthorized', async () => {
    await assert.rejects(
      JugglerClient.connect(h.url, { username: 'admin', password: 'nope' }),
      AuthenticationError,
    );
    const anon = await JugglerClient.connect(h.url);
    await assert.rejects(anon.list(), (err: Error) => err.message === 'unauthorized action');
    await anon.close();
  });

  test('a server going away rejects pending requests and resolves closed', async () => {
    const h2 = await startJuggler({});
    const c = await JugglerClient.connect(h2.url);
    await h2.close();
    const info = await c.closed;
    assert.ok(info instanceof ConnectionClosedError);
    assert.equal(info.code, 1001);
    await assert.rejects(c.list(), ConnectionClosedError);
  });

  test('sync gives up when no state comes (a silent 0.6 client, server waiting for it)', async () => {
    const h2 = await startJuggler({ framing_wait: 60 });
    try {
      await assert.rejects(
        JugglerClient.connect(h2.url, { framing: '0.6', sync: true, connectTimeout: 200 }),
        /the server sent no state within 200 ms/,
      );
      // Speaking first (here: logging in) is what tells the server the framing.
      const c = await JugglerClient.connect(h2.url, { framing: '0.6', username: 'u', sync: true });
      assert.deepEqual(c.state, { models: {}, actions: {} });
      await c.close();
    } finally {
      await h2.close();
    }
  });

  test('connecting to nothing fails with the address', async () => {
    const h2 = await startJuggler({});
    const url = h2.url;
    await h2.close();
    await assert.rejects(JugglerClient.connect(url), new RegExp(`cannot connect to ${url}`));
  });
});

describe('JugglerClient on the sqlite backend', () => {
  test('round trip of a 3 MB model, and persistence across a restart of the control', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aimm-juggler-'));
    try {
      const path = join(dir, 'models.db');
      const bytes = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 7) % 256);
      let h = await startJuggler({}, await openSqliteBackend({ path }));
      let c = await JugglerClient.connect(h.url);
      const m = await c.put('big.Model', bytes);
      assert.equal(m.sha256, sha(bytes));
      await c.close();
      await h.close();
      h = await startJuggler({ state_instances: true }, await openSqliteBackend({ path }));
      c = await JugglerClient.connect(h.url, { sync: true });
      const got = await c.get(m.instanceId);
      assert.ok(Buffer.from(got.instance).equals(Buffer.from(bytes)));
      const entry = c.state?.models[String(m.instanceId)] as Record<string, unknown>;
      assert.equal(entry.instance, Buffer.from(bytes).toString('base64'));
      await c.close();
      await h.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
