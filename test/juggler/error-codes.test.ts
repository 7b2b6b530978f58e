/**
 * Machine-readable error codes: every failure of our requests (and of AIMM's requests carrying our
 * fields) has `code` after AIMM's four response keys, and the TypeScript client exposes it as
 * `RequestFailedError.code`; failures of AIMM's requests in AIMM's form keep AIMM's exact reply.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Model } from '../../src/backend/types.js';
import { BackendError } from '../../src/backend/types.js';
import {
  JugglerClient,
  REQUEST_ERROR_CODES,
  type RequestErrorCode,
  RequestFailedError,
} from '../../src/client/index.js';
import { hashPassword } from '../../src/controls/juggler/auth.js';
import { inAimmForm } from '../../src/controls/juggler/handlers.js';
import { MemoryBackend } from '../support/memory-backend.js';
import { ADMIN, type Harness, startJuggler } from './support/harness.js';
import { RawClient } from './support/raw-client.js';

/** getModel(id) fails with the error registered for that id. */
class FailingBackend extends MemoryBackend {
  readonly failures = new Map<number, Error>();
  override async getModel(instanceId: number): Promise<Model | null> {
    const err = this.failures.get(instanceId);
    if (err !== undefined) throw err;
    return super.getModel(instanceId);
  }
}

const FAILING: [number, Error, RequestErrorCode][] = [
  [101, new BackendError('unavailable', 'hat unreachable'), 'unavailable'],
  [102, new BackendError('closed', 'backend is closed'), 'closed'],
  [
    103,
    new BackendError('not_active', 'this instance is a standby; writes go to the active one'),
    'not_active',
  ],
  [104, new BackendError('too_large', 'instance too large'), 'too_large'],
  [105, new BackendError('invalid', 'bad'), 'invalid'],
  [106, new BackendError('internal', 'broken'), 'internal'],
  [107, new Error('a bug'), 'internal'],
];

describe('error codes on the Juggler wire', () => {
  let open: Harness;
  let locked: Harness;
  const backend = new FailingBackend();
  before(async () => {
    for (const [id, err] of FAILING) backend.failures.set(id, err);
    open = await startJuggler({ max_message_size: 4096 }, backend);
    locked = await startJuggler({
      users: [ADMIN, { username: 'reader', password: hashPassword('r'), role: 'read' }],
    });
  });
  after(async () => {
    await open.close();
    await locked.close();
  });

  test('our requests: the code follows success, after AIMM keys, in Python format', async () => {
    const c = await RawClient.open(open.url, '0.6');
    try {
      const id = c.sendRequest('get_instance', { instance_id: 99 });
      await c.response(id);
      const text = c.received.find(
        (r) => r.kind === 'message' && r.msg.type === 'response' && r.msg.id === id,
      );
      assert.equal(
        text?.kind === 'message' ? text.text : '',
        `{"type": "response", "id": ${id}, "data": "model 99 not found", "success": false, "code": "not_found"}`,
      );
      const cases: [string, unknown, string][] = [
        ['get_instance', { instance_id: '1' }, 'invalid'],
        ['remove_instance', { instance_id: 98 }, 'not_found'],
        ['list_instances', null, ''],
        ...FAILING.map(([fid, , code]): [string, unknown, string] => [
          'get_instance',
          { instance_id: fid },
          code,
        ]),
      ];
      for (const [name, data, code] of cases) {
        const r = await c.request(name, data);
        if (code === '') {
          assert.equal(r.success, true);
          assert.equal('code' in r, false, 'a success has no code');
        } else {
          assert.deepEqual([r.success, r.code], [false, code], `${name} ${JSON.stringify(data)}`);
          assert.equal(typeof r.data, 'string', 'the text stays in data');
        }
      }
    } finally {
      await c.close();
    }
  });

  test('compare-and-set, size and unknown-id failures of AIMM requests with our fields', async () => {
    const c = await RawClient.open(open.url, '0.7');
    try {
      const created = await c.request('add_instance', {
        model_type: 't',
        instance_b64: 'aGk=',
        meta_only: true,
      });
      const id = (created.data as { instance_id: number }).instance_id;
      const conflict = await c.request('update_instance', {
        model_type: 't',
        instance_id: id,
        instance_b64: 'aGk=',
        expected_revision: 7,
      });
      assert.deepEqual([conflict.success, conflict.code], [false, 'revision_conflict']);
      const missing = await c.request('update_instance', {
        model_type: 't',
        instance_id: 9999,
        instance_b64: 'aGk=',
        meta_only: true,
      });
      assert.deepEqual([missing.success, missing.code], [false, 'not_found']);
      const big = await c.request('add_instance', {
        model_type: 't',
        instance_b64: 'A'.repeat(8000),
        meta_only: true,
      });
      assert.deepEqual([big.success, big.code], [false, 'too_large']);
      assert.match(String(big.data), /over the limit of 4096/);
    } finally {
      await c.close();
    }
  });

  test("AIMM's requests in AIMM's form: AIMM's exact reply, no code", async () => {
    const c = await RawClient.open(locked.url, '0.6');
    try {
      c.sendFrame(
        '{"type": "request", "id": 1, "name": "add_instance", "data": {"model_type": "text.Model", "instance_b64": "aGVsbG8="}}',
      );
      await c.response(1);
      const reply = c.received.find((r) => r.kind === 'message' && r.msg.id === 1);
      assert.equal(
        reply?.kind === 'message' ? reply.text : '',
        '{"type": "response", "id": 1, "data": "unauthorized action", "success": false}',
      );
      // The same request with one of our fields, and one of our requests: with the code.
      const ours = await c.request('add_instance', {
        model_type: 'text.Model',
        instance_b64: 'aGVsbG8=',
        meta_only: true,
      });
      assert.deepEqual([ours.data, ours.code], ['unauthorized action', 'unauthorized']);
      const list = await c.request('list_instances', null);
      assert.deepEqual([list.data, list.code], ['unauthorized action', 'unauthorized']);
    } finally {
      await c.close();
    }
    const c2 = await RawClient.open(open.url, '0.6');
    try {
      const r = await c2.request('update_instance', {
        model_type: 't',
        instance_id: 9999,
        instance_b64: 'aGk=',
      });
      assert.deepEqual(r, {
        type: 'response',
        id: r.id,
        data: 'model 9999 not found',
        success: false,
      });
      const fit = await c2.request('fit', { instance_id: 1 });
      assert.equal('code' in fit, false);
    } finally {
      await c2.close();
    }
  });

  test('inAimmForm: AIMM names without our fields', () => {
    assert.equal(inAimmForm('add_instance', { model_type: 't', instance_b64: '' }), true);
    assert.equal(inAimmForm('login', { username: 'a', password: 'b' }), true);
    assert.equal(inAimmForm('logout', null), true);
    assert.equal(inAimmForm('update_instance', { expected_revision: null }), false);
    assert.equal(inAimmForm('add_instance', { meta_only: false }), false);
    assert.equal(inAimmForm('get_instance', { instance_id: 1 }), false);
    assert.equal(inAimmForm('list_instances', null), false);
  });

  test('the TypeScript client: RequestFailedError.code for every code', async () => {
    const client = await JugglerClient.connect(open.url);
    const seen = new Set<string>();
    const expectCode = async (p: Promise<unknown>, code: RequestErrorCode | null) => {
      await assert.rejects(p, (err: unknown) => {
        assert.ok(err instanceof RequestFailedError);
        assert.equal(err.code, code, err.message);
        if (code !== null) seen.add(code);
        return true;
      });
    };
    try {
      await expectCode(client.get(424242), 'not_found');
      const meta = await client.put('t', Buffer.from('one'));
      await expectCode(
        client.put('t', Buffer.from('two'), { instanceId: meta.instanceId, expectedRevision: 5 }),
        'revision_conflict',
      );
      await expectCode(client.put('t', Buffer.alloc(6000)), 'too_large');
      await expectCode(client.request('get_instance', { instance_id: 0 }), 'invalid');
      for (const [id, , code] of FAILING) await expectCode(client.getMeta(id), code);
      // One of AIMM's requests in AIMM's form: the server sends no code.
      await expectCode(
        client.request('update_instance', { model_type: 't', instance_id: 9999, instance_b64: '' }),
        null,
      );
    } finally {
      await client.close();
    }
    const anon = await JugglerClient.connect(locked.url);
    try {
      await expectCode(anon.list(), 'unauthorized');
      // AIMM's form gets AIMM's text only; the client still recognises AIMM's text.
      await expectCode(
        anon.request('add_instance', { model_type: 't', instance_b64: 'aGk=' }),
        'unauthorized',
      );
    } finally {
      await anon.close();
    }
    const reader = await JugglerClient.connect(locked.url, { username: 'reader', password: 'r' });
    try {
      await reader.list();
      await expectCode(reader.put('t', Buffer.from('x')), 'forbidden');
    } finally {
      await reader.close();
    }
    assert.deepEqual(
      [...seen].sort(),
      [...REQUEST_ERROR_CODES].sort(),
      'every documented code is produced by some failure',
    );
  });
});
