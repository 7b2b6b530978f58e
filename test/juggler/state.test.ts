/**
 * State sync and notifications: open mode, the full state pushed at login (with models that
 * existed before), logout clearing it, remote changes, `state_instances`, fan-out to many sessions
 * with one diff each, our own requests' replies, and shutdown.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyPatch } from '../../src/client/patch.js';
import { ADMIN, type Harness, sleep, startJuggler, until } from './support/harness.js';
import { RawClient } from './support/raw-client.js';
import { RemoteCapableBackend, SlowReadBackend } from './support/test-backends.js';

type Msg = Record<string, unknown>;
type State = { models: Record<string, Msg>; actions: Msg };

function stateOf(c: RawClient): State | null {
  return c
    .ofType('state')
    .reduce<unknown>((s, m) => applyPatch(s, m.diff as never), null) as State | null;
}

async function withHarness(
  conf: Parameters<typeof startJuggler>[0],
  fn: (h: Harness) => Promise<void>,
  backend?: Parameters<typeof startJuggler>[1],
): Promise<void> {
  const h = await startJuggler(conf, backend);
  try {
    await fn(h);
  } finally {
    await h.close();
  }
}

describe('state and notifications', () => {
  test('open mode: everything visible without login; login accepts anyone; logout changes nothing', () =>
    withHarness({}, async (h) => {
      await h.backend.createModel('t', Buffer.from('x'));
      const c = await RawClient.open(h.url, '0.7');
      c.sendFrame('2');
      await until(() => stateOf(c) !== null, 'first push');
      assert.deepEqual(Object.keys(stateOf(c)?.models ?? {}), ['1']);
      const r = await c.request('login', { username: 'anyone', password: 'whatever' });
      assert.deepEqual(r.data, { success: true });
      assert.equal((await c.request('logout', null)).success, true);
      await c.request('add_instance', { model_type: 't', instance_b64: 'eQ==' });
      await until(() => Object.keys(stateOf(c)?.models ?? {}).length === 2, 'second model');
      await c.close();
    }));

  test('login pushes the models that already exist; logout clears them and stops notifications', () =>
    withHarness({ users: [ADMIN] }, async (h) => {
      await h.backend.createModel('seed', Buffer.from('seed'));
      const c = await RawClient.open(h.url, '0.6');
      c.sendRequest('login', { username: 'admin', password: ADMIN.password });
      await until(() => stateOf(c)?.models['1'] !== undefined, 'model 1 after login');
      const entry = stateOf(c)?.models['1'] as Msg;
      assert.deepEqual(Object.keys(entry), [
        'instance_id',
        'model_type',
        'revision',
        'size',
        'sha256',
        'updated',
      ]);
      assert.deepEqual(
        [entry.instance_id, entry.model_type, entry.revision, entry.size],
        [1, 'seed', 1, 4],
      );
      assert.equal(
        entry.sha256,
        '19b25856e1c150ca834cffc8b59b23adbd0ec0389e58eb22b3b64768098d002b',
      );
      assert.match(String(entry.updated), /^\d{4}-\d\d-\d\dT/);
      const logout = await c.request('logout', null);
      assert.deepEqual([logout.success, logout.data], [true, null]);
      await until(() => Object.keys(stateOf(c)?.models ?? { x: 1 }).length === 0, 'state cleared');
      await h.backend.createModel('later', Buffer.from('z'));
      await sleep(100);
      assert.equal(c.ofType('notify').length, 0);
      assert.deepEqual(stateOf(c), { models: {}, actions: {} });
      assert.equal((await c.request('list_instances', null)).data, 'unauthorized action');
      await c.close();
    }));

  test('changes by another writer reach every session as state and origin "remote"', () => {
    const backend = new RemoteCapableBackend();
    return withHarness(
      {},
      async (h) => {
        const clients = await Promise.all([1, 2, 3].map(() => RawClient.open(h.url, '0.7')));
        for (const c of clients) c.sendFrame('2');
        await until(() => clients.every((c) => stateOf(c) !== null), 'first pushes');
        await backend.remote(() => backend.createModel('aimm.Model', Buffer.from('from aimm')));
        await until(() => clients.every((c) => c.ofType('notify').length === 1), 'notifications');
        for (const c of clients) {
          const n = c.ofType('notify')[0] as Msg;
          assert.equal(n.name, 'model_change');
          const d = n.data as Msg;
          assert.deepEqual(
            [d.change, d.instance_id, d.model_type, d.revision, d.origin, d.size],
            ['created', 1, 'aimm.Model', 1, 'remote', 9],
          );
          assert.equal(c.ofType('state').length, 2, 'one diff per change');
          assert.equal(stateOf(c)?.models['1']?.model_type, 'aimm.Model');
        }
        // One diff text shared by all sessions.
        const texts = clients.map((c) => c.frames.find((f) => f.includes('"op": "add"')));
        assert.equal(new Set(texts).size, 1);
        await Promise.all(clients.map((c) => c.close()));
      },
      backend,
    );
  });

  test('writes while no session is ready, then a session: it gets every model, then diffs that keep it equal', () =>
    withHarness({}, async (h) => {
      const first = await RawClient.open(h.url, '0.7');
      first.sendFrame('2');
      await until(() => stateOf(first) !== null, 'first push');
      const a = await h.backend.createModel('t', Buffer.from('a'));
      await until(() => stateOf(first)?.models['1'] !== undefined, 'a seen');
      await first.close();
      // Several flush periods with nobody connected: writes, an update, a delete.
      const b = await h.backend.createModel('t', Buffer.from('b'));
      await h.backend.updateModel(a.meta.instanceId, 't2', Buffer.from('a2'));
      await sleep(60);
      const c = await h.backend.createModel('t', Buffer.from('c'));
      await h.backend.deleteModel(b.meta.instanceId);
      await sleep(60);
      const late = await RawClient.open(h.url, '0.7');
      late.sendFrame('2');
      const stored = async () =>
        Object.fromEntries(
          (await h.backend.getModels()).map((m) => [
            String(m.instanceId),
            [m.modelType, m.revision],
          ]),
        );
      const seen = () =>
        Object.fromEntries(
          Object.entries(stateOf(late)?.models ?? {}).map(([k, e]) => [
            k,
            [e.model_type, e.revision],
          ]),
        );
      await until(() => stateOf(late) !== null, 'late push');
      assert.deepEqual(seen(), await stored());
      assert.deepEqual(Object.keys(seen()), ['1', '3']);
      // Then changes again: each reaches it as a diff.
      await h.backend.updateModel(c.meta.instanceId, 't3', Buffer.from('c2'));
      await h.backend.createModel('t', Buffer.from('d'));
      await until(() => Object.keys(seen()).length === 3 && seen()['3']?.[0] === 't3', 'diffs');
      assert.deepEqual(seen(), await stored());
      await late.close();
    }));

  test('state_instances: entries carry the base64 instance, also for models stored before start', async () => {
    const backend = new RemoteCapableBackend();
    await backend.createModel('t', Buffer.from('before'));
    await withHarness(
      { state_instances: true },
      async (h) => {
        const c = await RawClient.open(h.url, '0.6');
        await c.request('update_instance', {
          model_type: 't',
          instance_id: 1,
          instance_b64: 'YWZ0ZXI=',
        });
        await until(() => stateOf(c)?.models['1']?.instance === 'YWZ0ZXI=', 'updated instance');
        await h.backend.deleteModel(1);
        await until(() => stateOf(c)?.models['1'] === undefined, 'deleted');
        await c.close();
      },
      backend,
    );
    const h2 = await startJuggler({ state_instances: true });
    try {
      await h2.backend.createModel('t', Buffer.from('hello'));
      const c = await RawClient.open(h2.url, '0.7');
      c.sendFrame('2');
      await until(() => stateOf(c)?.models['1']?.instance === 'aGVsbG8=', 'instance');
      await c.close();
    } finally {
      await h2.close();
    }
  });

  test('state_instances: a notification waits until its change is in the state', () => {
    const backend = new SlowReadBackend();
    return withHarness(
      { state_instances: true, users: [ADMIN] },
      async (h) => {
        const a = await RawClient.open(h.url, '0.7');
        await a.request('login', { username: 'admin', password: ADMIN.password });
        await until(() => a.ofType('state').length === 1, 'first push');
        backend.holding = true;
        await h.backend.createModel('slow', Buffer.from('bytes'));
        // A second client's login push proves a flush ran after the change.
        const b = await RawClient.open(h.url, '0.6');
        await b.request('login', { username: 'admin', password: ADMIN.password });
        await until(() => b.ofType('state').length === 1, 'push to the second client');
        assert.equal(a.ofType('notify').length, 0, 'no notification before the state has it');
        backend.release();
        await until(() => a.ofType('notify').length === 1, 'notification');
        const kinds = a.messages.map((m) => m.type);
        assert.ok(kinds.lastIndexOf('state') < kinds.indexOf('notify'), kinds.join());
        assert.equal(stateOf(a)?.models['1']?.instance, 'Ynl0ZXM=');
        await Promise.all([a.close(), b.close()]);
      },
      backend,
    );
  });

  test('our requests: meta_only writes, get_instance, list, remove with compare-and-set', () =>
    withHarness({}, async (h) => {
      const c = await RawClient.open(h.url, '0.7');
      const add = await c.request('add_instance', {
        model_type: 'm',
        instance_b64: 'AAEC',
        meta_only: true,
      });
      const meta = add.data as Msg;
      assert.deepEqual(Object.keys(meta), [
        'instance_id',
        'model_type',
        'revision',
        'size',
        'sha256',
        'updated',
        'ack',
      ]);
      assert.deepEqual(
        [meta.instance_id, meta.revision, meta.size, meta.ack],
        [1, 1, 3, 'committed'],
      );
      const upd = await c.request('update_instance', {
        model_type: 'm2',
        instance_id: 1,
        instance_b64: 'AAECAw==',
        expected_revision: 1,
        meta_only: true,
      });
      assert.deepEqual([(upd.data as Msg).revision, (upd.data as Msg).model_type], [2, 'm2']);
      const conflict = await c.request('update_instance', {
        model_type: 'm',
        instance_id: 1,
        instance_b64: '',
        expected_revision: 1,
      });
      assert.equal(conflict.success, false);
      assert.match(String(conflict.data), /revision 2, expected 1/);
      const got = (await c.request('get_instance', { instance_id: 1 })).data as Msg;
      assert.deepEqual(Object.keys(got), [
        'instance_id',
        'model_type',
        'instance',
        'revision',
        'size',
        'sha256',
        'updated',
      ]);
      assert.equal(got.instance, 'AAECAw==');
      const metaOnly = (await c.request('get_instance', { instance_id: 1, meta_only: true }))
        .data as Msg;
      assert.equal(metaOnly.instance, undefined);
      assert.equal(metaOnly.sha256, got.sha256);
      const list = (await c.request('list_instances', null)).data as Msg[];
      assert.deepEqual(
        list.map((m) => m.instance_id),
        [1],
      );
      const badRemove = await c.request('remove_instance', {
        instance_id: 1,
        expected_revision: 7,
      });
      assert.equal(badRemove.success, false);
      const removed = await c.request('remove_instance', { instance_id: 1, expected_revision: 2 });
      assert.deepEqual(removed.data, {
        instance_id: 1,
        model_type: 'm2',
        revision: 3,
        ack: 'committed',
      });
      const again = await c.request('remove_instance', { instance_id: 1 });
      assert.deepEqual([again.success, again.data], [false, 'model 1 not found']);
      await c.close();
    }));

  test('close: clients get 1001, new connections are refused, close is idempotent', async () => {
    const h = await startJuggler({});
    const c = await RawClient.open(h.url, '0.7');
    await Promise.all([h.control.close(), h.control.close()]);
    await c.waitClosed();
    assert.equal(c.closeCode, 1001);
    await assert.rejects(RawClient.open(h.url, '0.7'));
    await h.close();
    const listening = h.logLines.map((l) => JSON.parse(l)).find((l) => l.msg === 'listening');
    assert.deepEqual(
      [listening.control, listening.host, listening.port],
      ['juggler', '127.0.0.1', h.port],
    );
  });

  test('auto framing: the first push waits for the client to speak; a 0.6 client gets 0.6', () =>
    withHarness({ framing_wait: 60 }, async (h) => {
      const silent = await RawClient.open(h.url, '0.7');
      const aimm = await RawClient.open(h.url, '0.6');
      aimm.sendRequest('list_instances', null);
      await until(() => aimm.ofType('state').length === 1, 'push to the 0.6 client');
      for (const f of aimm.frames) assert.equal(f[0], '{');
      // That flush reached every session that could receive; the silent one was held back.
      assert.equal(silent.frames.length, 0);
      silent.sendFrame('2');
      await until(() => silent.ofType('state').length === 1, 'push after the client spoke');
      assert.deepEqual(silent.frames.slice(0, 1), ['3']);
      assert.ok(silent.frames[1]?.startsWith('0{"type": "state"'));
      await Promise.all([silent.close(), aimm.close()]);
    }));

  test('auto framing: a client silent for framing_wait is assumed to speak 0.7', () =>
    withHarness({ framing_wait: 0.05 }, async (h) => {
      const silent = await RawClient.open(h.url, '0.7');
      await until(() => silent.ofType('state').length === 1, 'push to the silent client');
      assert.ok(silent.frames[0]?.startsWith('0{"type": "state"'));
      await silent.close();
    }));
});
