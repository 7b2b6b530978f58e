/**
 * Roles on the Juggler control: a `read` user reads models and receives the state, and each of its
 * writes is refused with the code `forbidden` (even in AIMM's form, as AIMM has no roles), storing
 * nothing; a user without `role` (write) gets AIMM's replies unchanged. Real sockets, in-process.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hashPassword } from '../../src/controls/juggler/auth.js';
import { validateConf } from '../../src/controls/juggler.js';
import { MemoryBackend } from '../support/memory-backend.js';
import { ADMIN, type Harness, startJuggler } from './support/harness.js';
import { RawClient } from './support/raw-client.js';

const READER = { username: 'reader', password: hashPassword('reader pw'), role: 'read' as const };
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('Juggler roles', () => {
  let h: Harness;
  const backend = new MemoryBackend();

  before(async () => {
    await backend.createModel('seed.Model', Buffer.from('seed'));
    h = await startJuggler({ users: [ADMIN, READER] }, backend);
  });
  after(() => h.close());

  test('the schema takes read and write, and names the path of anything else', () => {
    const base = { module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 0 } };
    assert.deepEqual(validateConf({ ...base, users: [READER, { ...ADMIN, role: 'write' }] }), []);
    const issues = validateConf({ ...base, users: [{ ...ADMIN, role: 'admin' }] }, '$.control[0]');
    assert.equal(issues[0]?.path, '$.control[0].users[0].role');
    assert.equal(issues[0]?.rule, 'enum');
  });

  test('a read user reads and gets the state; every write is forbidden, with the code', async () => {
    const c = await RawClient.open(h.url, '0.7');
    try {
      const login = await c.request('login', { username: 'reader', password: READER.password });
      assert.deepEqual(login.data, { success: true });
      const list = await c.request('list_instances', null);
      assert.equal(list.success, true);
      assert.equal((list.data as unknown[]).length, 1);
      const get = await c.request('get_instance', { instance_id: 1 });
      assert.equal(get.success, true);
      await c.waitFor(
        (msgs) => msgs.some((m) => m.type === 'state' && JSON.stringify(m).includes('seed.Model')),
        'the state with the model',
      );

      const writes: [string, unknown][] = [
        ['add_instance', { model_type: 'x.M', instance_b64: b64('a') }], // AIMM's form
        ['add_instance', { model_type: 'x.M', instance_b64: b64('a'), meta_only: true }],
        ['update_instance', { model_type: 'x.M', instance_id: 1, instance_b64: b64('b') }],
        ['remove_instance', { instance_id: 1 }],
      ];
      for (const [name, data] of writes) {
        const r = await c.request(name, data);
        assert.equal(r.success, false, name);
        assert.equal(r.code, 'forbidden', name);
        assert.match(String(r.data), /needs the role write/, name);
      }
      const models = await backend.getModels();
      assert.deepEqual(
        models.map((m) => [m.instanceId, m.revision]),
        [[1, 1]],
      );
    } finally {
      await c.close();
    }
  });

  test('a user without role writes, and AIMM-form replies stay without a code', async () => {
    const c = await RawClient.open(h.url, '0.6');
    try {
      await c.request('login', { username: 'admin', password: ADMIN.password });
      const add = await c.request('add_instance', { model_type: 'x.M', instance_b64: b64('a') });
      assert.deepEqual(add, {
        type: 'response',
        id: add.id,
        success: true,
        data: { instance_id: 2, model_type: 'x.M', instance: b64('a') },
      });
      const bad = await c.request('add_instance', { model_type: '', instance_b64: b64('a') });
      assert.equal(bad.success, false);
      assert.ok(!('code' in bad), JSON.stringify(bad));
      await backend.deleteModel(2);
    } finally {
      await c.close();
    }
  });

  test('the role is logged at login, never the password', () => {
    const logs = h.logLines.join('\n');
    assert.match(logs, /"user":"reader","role":"read","msg":"login"/);
    assert.ok(!logs.includes(READER.password));
  });
});
