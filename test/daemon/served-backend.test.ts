import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BackendError } from '../../src/backend/types.js';
import { MetricsRegistry } from '../../src/common/metrics.js';
import { createLogger } from '../../src/daemon/logger.js';
import { ServedBackend } from '../../src/daemon/served-backend.js';
import { MemoryBackend } from '../support/memory-backend.js';

const bytes = new Uint8Array([1, 2, 3]);

/** A MemoryBackend whose recovery the test completes by hand. */
function recovering() {
  const inner = new MemoryBackend();
  let finish: () => void = () => {};
  let fail: (e: Error) => void = () => {};
  const recovery = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  inner.whenReady = () => recovery;
  return { inner, finish, fail };
}

describe('the backend as controls see it', () => {
  test('calls made during recovery wait for it, then go through', async () => {
    const { inner, finish } = recovering();
    const served = new ServedBackend(inner, new MetricsRegistry());
    let done = false;
    const write = served.createModel('t', bytes).then((r) => {
      done = true;
      return r;
    });
    for (let i = 0; i < 10; i++) await Promise.resolve();
    assert.equal(done, false, 'still recovering: still waiting');
    assert.equal(served.operationsInFlight, 1);
    assert.deepEqual(await inner.getModels(), [], 'nothing reached the backend');
    finish();
    const result = await write;
    assert.equal(result.meta.instanceId, 1);
    assert.equal((await served.getModel(1))?.revision, 1);
  });

  test('a failed recovery fails the waiting calls with its error', async () => {
    const { inner, fail } = recovering();
    const served = new ServedBackend(inner, new MetricsRegistry());
    const read = served.getModels();
    fail(new Error('snapshot corrupt'));
    await assert.rejects(read, /snapshot corrupt/);
  });

  test('stopping refuses new calls and fails waiting ones with closed; drain waits for in-flight', async () => {
    const { inner, finish } = recovering();
    const metrics = new MetricsRegistry();
    const served = new ServedBackend(inner, metrics);
    const waiting = served.getModels();
    served.stopAccepting();
    await assert.rejects(waiting, (e: unknown) => e instanceof BackendError && e.code === 'closed');
    await assert.rejects(
      served.createModel('t', bytes),
      (e: unknown) => e instanceof BackendError && e.code === 'closed',
    );
    await served.drain();
    finish();

    // In flight when the stop comes: the call finishes, and drain resolves only after it.
    const { inner: inner2, finish: finish2 } = recovering();
    const served2 = new ServedBackend(inner2, metrics);
    finish2();
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const create = inner2.createModel.bind(inner2);
    inner2.createModel = async (t, b) => {
      await gate;
      return create(t, b);
    };
    const write = served2.createModel('t', bytes);
    await Promise.resolve();
    served2.stopAccepting();
    let drained = false;
    const drain = served2.drain().then(() => {
      drained = true;
    });
    await Promise.resolve();
    assert.equal(drained, false);
    release();
    assert.equal((await write).meta.instanceId, 1, 'the in-flight write completes');
    await drain;
    assert.equal(drained, true);
  });

  test('operations are counted by op and result', async () => {
    const metrics = new MetricsRegistry();
    const served = new ServedBackend(new MemoryBackend(), metrics);
    await served.createModel('t', bytes);
    await served.getModel(1);
    await assert.rejects(served.updateModel(9, 't', bytes));
    await assert.rejects(served.deleteModel(1, { expectedRevision: 7 }));
    const text = metrics.render();
    assert.match(text, /^aimm_store_operations_total\{op="create",result="ok"\} 1$/m);
    assert.match(text, /^aimm_store_operations_total\{op="get",result="ok"\} 1$/m);
    assert.match(text, /^aimm_store_operations_total\{op="update",result="not_found"\} 1$/m);
    assert.match(
      text,
      /^aimm_store_operations_total\{op="delete",result="revision_conflict"\} 1$/m,
    );
    assert.match(text, /^aimm_store_operations_in_flight 0$/m);
  });
});

describe('logger', () => {
  test('secrets are censored wherever a log call puts them', () => {
    const lines: string[] = [];
    const logger = createLogger({
      level: 'info',
      name: 'x',
      destination: { write: (s: string) => lines.push(s) },
    });
    logger.info({ password: 'p1', conf: { client_token: 't1', users: [{ password: 'p2' }] } }, 'a');
    logger.info({ hat: { clientToken: 't2' }, nested: { a: { token: 't3' } } }, 'b');
    const out = lines.join('');
    for (const secret of ['p1', 't1', 'p2', 't2', 't3']) {
      assert.ok(!out.includes(`"${secret}"`), `${secret} leaked: ${out}`);
    }
    assert.match(out, /\[redacted\]/);
  });

  test('the level comes from the config', () => {
    const lines: string[] = [];
    const logger = createLogger({
      level: 'warn',
      name: 'x',
      destination: { write: (s: string) => lines.push(s) },
    });
    logger.info('hidden');
    logger.warn('shown');
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? '', /"msg":"shown"/);
  });
});

describe('the write gate (a redundant daemon’s role)', () => {
  test('refuses writes while closed, lets reads through, counts the refusal', async () => {
    const inner = new MemoryBackend();
    const metrics = new MetricsRegistry();
    const served = new ServedBackend(inner, metrics);
    await served.createModel('t', bytes);
    let open = false;
    served.setWriteGate(() => (open ? null : new BackendError('not_active', 'a standby')));
    await assert.rejects(
      served.createModel('t', bytes),
      (e: unknown) => e instanceof BackendError && e.code === 'not_active',
    );
    await assert.rejects(served.updateModel(1, 't', bytes), /a standby/);
    await assert.rejects(served.deleteModel(1), /a standby/);
    assert.equal((await served.getModels()).length, 1, 'reads are served');
    assert.equal((await served.getModel(1))?.revision, 1, 'nothing was written');
    assert.match(metrics.render(), /operations_total\{op="create",result="not_active"\} 1/);
    open = true;
    assert.equal((await served.updateModel(1, 't', bytes)).meta.revision, 2);
  });

  test('createModelAt and maxInstanceBytes pass through; the gate refuses createModelAt', async () => {
    const inner = new MemoryBackend();
    Object.defineProperty(inner, 'maxInstanceBytes', { value: 1234 });
    const metrics = new MetricsRegistry();
    const served = new ServedBackend(inner, metrics);
    assert.equal(served.maxInstanceBytes, 1234);
    assert.ok(served.createModelAt !== undefined);
    let open = false;
    served.setWriteGate(() => (open ? null : new BackendError('not_active', 'a standby')));
    await assert.rejects(
      served.createModelAt(7, 't', bytes),
      (e: unknown) => e instanceof BackendError && e.code === 'not_active',
    );
    assert.equal(await served.getModel(7), null, 'nothing was written');
    open = true;
    assert.equal((await served.createModelAt(7, 't', bytes)).meta.instanceId, 7);
    assert.match(metrics.render(), /operations_total\{op="create",result="ok"\} 1/);

    const bare = new MemoryBackend();
    Object.defineProperty(bare, 'createModelAt', { value: undefined });
    const plain = new ServedBackend(bare, new MetricsRegistry());
    assert.equal(plain.createModelAt, undefined, 'absent when the backend lacks it');
    assert.equal(plain.maxInstanceBytes, undefined);
  });

  test('drainWrites waits for the writes that passed the gate, not for reads', async () => {
    const inner = new MemoryBackend();
    const served = new ServedBackend(inner, new MetricsRegistry());
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const create = inner.createModel.bind(inner);
    inner.createModel = async (t, b) => {
      await gate;
      return create(t, b);
    };
    const write = served.createModel('t', bytes);
    await served.getModels();
    for (let i = 0; i < 10; i++) await Promise.resolve();
    let drained = false;
    const drain = served.drainWrites().then(() => {
      drained = true;
    });
    for (let i = 0; i < 10; i++) await Promise.resolve();
    assert.equal(drained, false, 'a write is still in flight');
    release();
    await write;
    await drain;
    assert.equal(drained, true);
    await served.drainWrites();
  });
});
