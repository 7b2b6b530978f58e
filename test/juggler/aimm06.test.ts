/**
 * A test client speaking hat-juggler 0.6 framing with AIMM's exact texts (aimm-compat.md): what
 * AIMM's own REPL client sends, byte for byte, and the replies it must get.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ADMIN, type Harness, startJuggler } from './support/harness.js';
import { RawClient } from './support/raw-client.js';

const LOGIN =
  '{"type": "request", "id": 1, "name": "login", "data": {"username": "admin", "password": "8c6976e5b5410415bde908bd4dee15dfb167a9c873fc4bb8a81f6f2ab448a918"}}';
const ADD =
  '{"type": "request", "id": 2, "name": "add_instance", "data": {"model_type": "text.Model", "instance_b64": "aGVsbG8="}}';
const UPDATE =
  '{"type": "request", "id": 3, "name": "update_instance", "data": {"model_type": "text.Model", "instance_id": 1, "instance_b64": "aGVsbG8y"}}';

describe('AIMM client messages over 0.6 framing', () => {
  let h: Harness;
  before(async () => {
    h = await startJuggler({ users: [ADMIN], state_instances: true });
  });
  after(() => h.close());

  test('login, add_instance, update_instance: exact replies, state diffs, notifications', async () => {
    const c = await RawClient.open(h.url, '0.6');
    c.sendFrame(LOGIN);
    await c.response(1);
    await c.waitFor((m) => m.some((x) => x.type === 'state'), 'first push');
    c.sendFrame(ADD);
    await c.response(2);
    await c.waitFor((m) => m.some((x) => x.type === 'notify'), 'notification of add');
    c.sendFrame(UPDATE);
    await c.response(3);
    await c.waitFor(
      (m) => m.filter((x) => x.type === 'notify').length === 2,
      'notification of update',
    );
    const texts = c.received.flatMap((r) => (r.kind === 'message' ? [r.text] : []));
    const responses = texts.filter((t) => t.startsWith('{"type": "response"'));
    assert.deepEqual(responses, [
      '{"type": "response", "id": 1, "data": {"success": true}, "success": true}',
      '{"type": "response", "id": 2, "data": {"instance_id": 1, "model_type": "text.Model", "instance": "aGVsbG8="}, "success": true}',
      '{"type": "response", "id": 3, "data": {"instance_id": 1, "model_type": "text.Model", "instance": "aGVsbG8y"}, "success": true}',
    ]);
    // Every frame is one unprefixed JSON text.
    for (const f of c.frames) assert.equal(f[0], '{');
    const states = c.ofType('state');
    assert.deepEqual(states[0], {
      type: 'state',
      diff: [{ op: 'replace', path: '', value: { models: {}, actions: {} } }],
    });
    const add = (states[1]?.diff as Record<string, unknown>[] | undefined)?.[0] ?? {};
    assert.equal(add.op, 'add');
    assert.equal(add.path, '/models/1');
    const entry = add.value as Record<string, unknown>;
    assert.deepEqual(Object.keys(entry), [
      'instance_id',
      'model_type',
      'instance',
      'revision',
      'size',
      'sha256',
      'updated',
    ]);
    assert.equal(entry.instance, 'aGVsbG8=');
    assert.equal(entry.revision, 1);
    assert.equal(entry.size, 5);
    const upd = (states[2]?.diff ?? []) as Record<string, unknown>[];
    assert.deepEqual(
      upd.find((op) => op.path === '/models/1/instance'),
      {
        op: 'replace',
        path: '/models/1/instance',
        value: 'aGVsbG8y',
      },
    );
    assert.deepEqual(
      upd.find((op) => op.path === '/models/1/revision'),
      {
        op: 'replace',
        path: '/models/1/revision',
        value: 2,
      },
    );
    // The response comes before the state diff and the notification caused by the same request.
    const order = c.messages.map((m) => `${m.type}${m.type === 'response' ? m.id : ''}`);
    assert.ok(order.indexOf('response2') < order.indexOf('notify'));
    const notes = c.ofType('notify');
    assert.deepEqual(
      notes.map((n) => {
        const d = n.data as Record<string, unknown>;
        return [n.name, d.change, d.instance_id, d.model_type, d.revision, d.origin];
      }),
      [
        ['model_change', 'created', 1, 'text.Model', 1, 'local'],
        ['model_change', 'updated', 1, 'text.Model', 2, 'local'],
      ],
    );
    await c.close();
    assert.equal(c.closeCode, 1000);
  });

  test('wrong password: {"success": false} in a successful response, then close 1000', async () => {
    const c = await RawClient.open(h.url, '0.6');
    c.sendFrame(
      '{"type": "request", "id": 1, "name": "login", "data": {"username": "admin", "password": "8810ad581e59f2bc3928b261707a71308f7e139eb04820366dc4d5c18d980225"}}',
    );
    await c.waitClosed();
    assert.deepEqual(c.frames, [
      '{"type": "response", "id": 1, "data": {"success": false}, "success": true}',
    ]);
    assert.equal(c.closeCode, 1000);
    assert.ok(!h.logLines.some((l) => l.includes('8810ad581e59')), 'password hash not logged');
  });

  test('before login: "unauthorized action"; unknown names: AIMM quirk {"success": false}', async () => {
    const c = await RawClient.open(h.url, '0.6');
    c.sendFrame(ADD.replace('"id": 2', '"id": 1'));
    c.sendFrame('{"type": "request", "id": 2, "name": "no_such_request", "data": {}}');
    await c.response(2);
    assert.equal(
      c.frames.find((f) => f.includes('"id": 1')),
      '{"type": "response", "id": 1, "data": "unauthorized action", "success": false}',
    );
    assert.equal(
      c.frames.find((f) => f.includes('"id": 2')),
      '{"type": "response", "id": 2, "data": {"success": false}, "success": true}',
    );
    for (const name of ['list_instances', 'get_instance', 'remove_instance', 'logout']) {
      const r = await c.request(name, { instance_id: 1 });
      assert.deepEqual([r.success, r.data], [false, 'unauthorized action'], name);
    }
    // The state before login is empty even though a model exists.
    await c.waitFor((m) => m.some((x) => x.type === 'state'), 'first push');
    assert.deepEqual(c.ofType('state')[0]?.diff, [
      { op: 'replace', path: '', value: { models: {}, actions: {} } },
    ]);
    await c.close();
  });

  test('create_instance, fit, predict are refused: this daemon stores, it does not run', async () => {
    const c = await RawClient.open(h.url, '0.6');
    c.sendFrame(LOGIN);
    await c.response(1);
    for (const name of ['create_instance', 'fit', 'predict']) {
      const r = await c.request(name, {
        model_type: 'text.Model',
        instance_id: 1,
        args: [],
        kwargs: {},
      });
      assert.equal(r.success, false);
      assert.match(String(r.data), /persists models and does not run them/);
      assert.match(String(r.data), new RegExp(name));
    }
    await c.close();
  });
});
