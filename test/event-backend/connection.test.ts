/**
 * The event backend when Hat goes away and comes back: fail-fast writes, reconnect with backoff
 * (and catch-up of what happened meanwhile), queued writes in the snapshot flushed in order,
 * register failures, stalled servers, server status, acknowledgement level `persisted`.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BackendError } from '../../src/backend/types.js';
import { createHatConnector } from '../../src/hat/eventer/connector.js';
import type { HatPeer } from '../peer/hat-peer.js';
import {
  aimmEvent,
  ChangeLog,
  metricValue,
  openBackend,
  PREFIX,
  peerContext,
  sleep,
  startPeer,
  str,
  tempDir,
  text,
  waitFor,
  withTimeout,
} from './support.js';

const isCode = (code: string) => (e: unknown) => e instanceof BackendError && e.code === code;

function modelTexts(peer: HatPeer): string[] {
  return peer.events
    .filter((e) => e.type[0] === PREFIX[0] && e.type[1] === PREFIX[1])
    .map((e) => `${e.type[2]}:${e.payload?.kind === 'json' ? e.payload.text : 'tombstone'}`);
}

describe('event backend connection handling', () => {
  let peer: HatPeer;
  before(async () => {
    peer = await startPeer();
  });
  after(async () => {
    await peer.close();
  });

  it('fails fast while Hat is down, reconnects, and catches up with what happened meanwhile', async () => {
    peer.resetStore();
    const ctx = peerContext(peer);
    const b = await openBackend(ctx);
    try {
      await b.createModel('t', text('one'));
      const log = new ChangeLog(b);
      await peer.stop();
      await waitFor(() => !b.status().ready, 'not ready');
      assert.equal(b.status().connected, false);
      assert.match(b.status().detail ?? '', /unreachable/);
      await assert.rejects(b.createModel('t', text('two')), (e: unknown) => {
        assert.ok(isCode('unavailable')(e));
        assert.match((e as Error).message, /Hat event server unavailable/);
        return true;
      });
      await assert.rejects(b.updateModel(1, 't', text('x')), isCode('unavailable'));
      // Reads still work from the last known state.
      assert.equal(str((await b.getModel(1))?.instance ?? new Uint8Array()), 'one');
      // Another writer changes model 1 while we are away.
      peer.register([aimmEvent(1, 'remote', 't')]);
      await sleep(50);
      await peer.start();
      await waitFor(() => b.status().ready, 'ready again');
      const ch = await log.waitFor((c) => c.instanceId === 1, 'remote update');
      assert.deepEqual([ch.change, ch.revision, ch.origin], ['updated', 2, 'remote']);
      assert.equal(str((await b.getModel(1))?.instance ?? new Uint8Array()), 'remote');
      const c = await b.createModel('t', text('three'));
      assert.equal(c.meta.instanceId, 2);
      assert.ok(ctx.metrics.render().includes('aimm_store_event_disconnects_total'));
      assert.ok(ctx.logs.find(/lost the Hat connection/).length >= 1);
    } finally {
      await b.close();
    }
  });

  it('is not ready until Hat is reachable at start; retries with backoff', async () => {
    peer.resetStore();
    await peer.stop();
    const ctx = peerContext(peer);
    const b = await openBackend(ctx, {}, false);
    try {
      let ready = false;
      void b.whenReady().then(() => {
        ready = true;
      });
      await waitFor(() => ctx.logs.find(/cannot connect to Hat/).length >= 3, 'several attempts');
      assert.equal(ready, false);
      assert.equal(b.status().ready, false);
      const attempts = ctx.logs.find(/cannot connect to Hat/).map((l) => l.retryInMs as number);
      // Capped at max_delay_ms (200 in tests), at least half the exponential step.
      for (const d of attempts) assert.ok(d >= 10 && d <= 200, `delay ${d}`);
      await peer.start();
      await withTimeout(b.whenReady(), 5000, 'ready');
      assert.equal(b.status().ready, true);
    } finally {
      await b.close();
      await peer.start();
    }
  });

  it('queues writes durably in the snapshot while Hat is down and flushes them in order', async () => {
    peer.resetStore();
    const { dir, remove } = tempDir();
    const conf = { snapshot: { path: join(dir, 'event.db') }, queue_when_disconnected: true };
    try {
      let b = await openBackend(peerContext(peer), conf);
      await b.createModel('t', text('base'));
      await peer.stop();
      await waitFor(() => b.status().connected === false, 'disconnected');
      // Ready stays true: writes are accepted into the queue.
      assert.equal(b.status().ready, true);
      const q1 = await b.createModel('t', text('q1'));
      assert.equal(q1.ack, 'queued');
      assert.equal(q1.meta.instanceId, 2);
      const q2 = await b.updateModel(1, 't', text('base-2'), { expectedRevision: 1 });
      assert.equal(q2.ack, 'queued');
      assert.equal(q2.meta.revision, 2);
      await assert.rejects(
        b.updateModel(1, 't', text('stale'), { expectedRevision: 1 }),
        isCode('revision_conflict'),
      );
      const q3 = await b.deleteModel(2);
      assert.equal(q3.ack, 'queued');
      // Reads see the queued writes.
      assert.equal(str((await b.getModel(1))?.instance ?? new Uint8Array()), 'base-2');
      assert.equal(await b.getModel(2), null);
      assert.deepEqual(
        (await b.getModels()).map((m) => [m.instanceId, m.revision]),
        [[1, 2]],
      );
      // The queue survives a restart of the daemon.
      await b.close();
      const ctx = peerContext(peer);
      b = await openBackend(ctx, conf, false);
      await withTimeout(b.whenReady(), 5000, 'ready from the snapshot while Hat is down');
      assert.equal(b.status().connected, false);
      const q4 = await b.createModel('t', text('q4'));
      assert.equal(q4.meta.instanceId, 3);
      assert.match(ctx.metrics.render(), /aimm_store_event_snapshot_queue_depth 4/);
      const log = new ChangeLog(b);
      await peer.start();
      await log.waitFor((c) => c.instanceId === 3, 'queue flushed');
      assert.deepEqual(modelTexts(peer), [
        '1:{"type": "t", "instance": "YmFzZQ=="}',
        '2:{"type": "t", "instance": "cTE="}',
        '1:{"type": "t", "instance": "YmFzZS0y"}',
        '2:tombstone',
        '3:{"type": "t", "instance": "cTQ="}',
      ]);
      assert.deepEqual(
        log.changes.map((c) => [c.change, c.instanceId, c.revision, c.origin]),
        [
          ['created', 2, 1, 'local'],
          ['updated', 1, 2, 'local'],
          ['deleted', 2, 2, 'local'],
          ['created', 3, 1, 'local'],
        ],
      );
      await waitFor(
        () => /aimm_store_event_snapshot_queue_depth 0/.test(ctx.metrics.render()),
        'queue empty',
      );
      await b.close();
      // Nothing is sent twice after another restart.
      b = await openBackend(peerContext(peer), conf);
      await sleep(50);
      assert.equal(modelTexts(peer).length, 5);
      await b.close();
    } finally {
      remove();
      await peer.start();
    }
  });

  it('queued writes are sent exactly once even when the server status flaps during the flush', async () => {
    peer.resetStore();
    const { dir, remove } = tempDir();
    const conf = { snapshot: { path: join(dir, 'event.db') }, queue_when_disconnected: true };
    const b = await openBackend(peerContext(peer), conf);
    try {
      peer.setStatus('stopping');
      await waitFor(() => /stopping/.test(b.status().detail ?? ''), 'standby');
      assert.equal(b.status().ready, true, 'queueing keeps the backend ready');
      const acks = [];
      for (let i = 0; i < 5; i++) acks.push((await b.createModel('t', text(`q${i}`))).ack);
      assert.deepEqual(new Set(acks), new Set(['queued']));
      peer.stall(true); // the flush's register request stays in flight
      peer.setStatus('operational');
      await sleep(30);
      peer.setStatus('stopping');
      peer.setStatus('operational');
      await sleep(30);
      peer.stall(false);
      await waitFor(() => modelTexts(peer).length >= 5, 'flushed');
      await sleep(100);
      assert.deepEqual(
        modelTexts(peer).map((t) => t.split(':')[0]),
        ['1', '2', '3', '4', '5'],
      );
    } finally {
      peer.stall(false);
      peer.setStatus('operational');
      await b.close();
      remove();
    }
  });

  it('with queueing, a snapshot that never synced with Hat refuses offline writes', async () => {
    peer.resetStore();
    await peer.stop();
    const { dir, remove } = tempDir();
    try {
      const b = await openBackend(
        peerContext(peer),
        { snapshot: { path: join(dir, 'e.db') }, queue_when_disconnected: true },
        false,
      );
      try {
        await waitFor(() => b.status().connected === false && !b.status().ready, 'offline');
        await assert.rejects(b.createModel('t', text('x')), (e: unknown) => {
          assert.ok(isCode('unavailable')(e));
          assert.match((e as Error).message, /never synchronised/);
          return true;
        });
      } finally {
        await b.close();
      }
    } finally {
      remove();
      await peer.start();
    }
  });

  it('a register failure fails the whole batch with a clear error and stores nothing', async () => {
    peer.resetStore();
    const b = await openBackend(peerContext(peer));
    try {
      peer.failRegisters(true);
      const results = await Promise.allSettled([
        b.createModel('t', text('a')),
        b.createModel('t', text('b')),
        b.createModel('t', text('c')),
      ]);
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        const err = (r as PromiseRejectedResult).reason as BackendError;
        assert.equal(err.code, 'unavailable');
        assert.match(err.message, /refused the register request/);
      }
      assert.deepEqual(modelTexts(peer), []);
      assert.deepEqual(await b.getModels(), []);
      peer.failRegisters(false);
      const ok = await b.createModel('t', text('d'));
      assert.equal(ok.meta.instanceId, 4, 'ids of failed creates are not reused');
    } finally {
      peer.failRegisters(false);
      await b.close();
    }
  });

  it('a stalled server times the write out, and the backend reconnects', async () => {
    peer.resetStore();
    const ctx = peerContext(peer);
    const b = await openBackend(ctx, { request_timeout_ms: 1000 });
    const connects = () => metricValue(ctx, 'event_connects_total');
    try {
      peer.stall(true);
      await assert.rejects(b.createModel('t', text('x')), (e: unknown) => {
        assert.ok(isCode('unavailable')(e));
        assert.match((e as Error).message, /may or may not be stored/);
        return true;
      });
      assert.equal(b.status().ready, false, 'a timed-out connection is not used again');
      const before = connects();
      peer.stall(false);
      await waitFor(() => connects() > before && b.status().ready, 'reconnected');
      // A loaded machine may time a request out again; the backend keeps recovering.
      let ack = '';
      for (let i = 0; i < 20 && ack === ''; i++) {
        try {
          ack = (await b.createModel('t', text('y'))).ack;
        } catch {
          await waitFor(() => b.status().ready, 'ready');
        }
      }
      assert.equal(ack, 'registered');
    } finally {
      peer.stall(false);
      await b.close();
    }
  });

  it('a server stalled on a large write is busy, not dead: the write succeeds (issue 16)', async () => {
    // Short pings and a short request timeout; a 3 MB model (4 MB of JSON) gives Hat 4 s more.
    // The stall outlasts both the ping budget and request_timeout_ms, as a real Hat decoding a big
    // register request does, and the connection and the write survive it.
    peer.resetStore();
    const ctx = {
      ...peerContext(peer),
      hat: createHatConnector({
        addresses: [{ host: peer.host, port: peer.port }],
        clientName: 'aimm-store/busy',
        pingDelay: 50,
        pingTimeout: 100,
        connectTimeout: 2000,
      }),
    };
    const b = await openBackend(ctx, { request_timeout_ms: 300 });
    const connects = () => metricValue(ctx, 'event_connects_total');
    try {
      const before = connects();
      peer.stall(true);
      const model = new Uint8Array(3_000_000).fill(7);
      const write = b.createModel('big.Model', model);
      await sleep(800);
      assert.equal(b.status().ready, true, 'still connected while Hat works');
      peer.stall(false);
      const res = await write;
      assert.equal(res.ack, 'registered');
      assert.equal((await b.getModel(res.meta.instanceId))?.instance.length, model.length);
      assert.equal(connects(), before, 'no reconnect');
    } finally {
      peer.stall(false);
      await b.close();
    }
  });

  it('follows the server status: not operational → not ready, writes fail fast', async () => {
    peer.resetStore();
    const b = await openBackend(peerContext(peer));
    try {
      peer.setStatus('stopping');
      await waitFor(() => !b.status().ready, 'not ready');
      assert.match(b.status().detail ?? '', /stopping/);
      await assert.rejects(b.createModel('t', text('x')), isCode('unavailable'));
      peer.setStatus('operational');
      await waitFor(() => b.status().ready, 'ready');
      const c = await b.createModel('t', text('y'));
      assert.equal(c.ack, 'registered');
    } finally {
      peer.setStatus('operational');
      await b.close();
    }
  });

  it('with several addresses: leaves a server that stays in standby for the operational one', async () => {
    const first = await startPeer({ serverId: 2 });
    const second = await startPeer({ serverId: 3, status: 'standby' });
    const ctx = peerContext([first, second]);
    const named = (p: HatPeer) => p.clients().some((i) => i.clientName === 'aimm-store/test');
    const b = await openBackend(ctx, { standby_switch_ms: 200 });
    try {
      assert.ok(named(first) && !named(second));
      // The active server of a redundant Hat moves to the other address.
      first.setStatus('standby');
      second.setStatus('operational');
      await waitFor(() => named(second) && b.status().ready, 'on the operational server');
      assert.equal(ctx.logs.find(/still not operational/).length, 1);
      const c = await b.createModel('t', text('x'));
      assert.ok(second.events.some((e) => e.type[2] === String(c.meta.instanceId)));
      assert.ok(!first.events.some((e) => e.type[2] === String(c.meta.instanceId)));
    } finally {
      await b.close();
      await first.close();
      await second.close();
    }
  });

  it('with one address, a server in standby is waited for, not left', async () => {
    const only = await startPeer({ serverId: 4 });
    const ctx = peerContext(only);
    const b = await openBackend(ctx, { standby_switch_ms: 50 });
    try {
      only.setStatus('standby');
      await waitFor(() => !b.status().ready, 'not ready');
      await sleep(300);
      assert.equal(ctx.logs.find(/still not operational/).length, 0);
      assert.equal(ctx.logs.find(/lost the Hat connection/).length, 0);
      only.setStatus('operational');
      await waitFor(() => b.status().ready, 'ready again');
    } finally {
      await b.close();
      await only.close();
    }
  });

  it("ack 'persisted' resolves only after Hat reports the events flushed", async () => {
    const slow = await startPeer({ flushDelayMs: 60_000 });
    const b = await openBackend(peerContext(slow), { ack: 'persisted' });
    try {
      let settled = false;
      const p = b.createModel('t', text('durable')).finally(() => {
        settled = true;
      });
      await waitFor(() => modelTexts(slow).length === 1, 'registered in Hat');
      await sleep(50);
      assert.equal(settled, false, 'not acknowledged before the flush');
      slow.flush();
      const r = await withTimeout(p, 5000, 'persisted ack');
      assert.equal(r.ack, 'persisted');
      assert.equal(r.meta.instanceId, 1);
      // Concurrent writes in one batch, all persisted.
      const many = b.createModel('t', text('a'));
      const more = b.createModel('t', text('b'));
      await waitFor(() => modelTexts(slow).length === 3, 'registered');
      slow.flush();
      const rs = await withTimeout(Promise.all([many, more]), 5000, 'persisted acks');
      assert.deepEqual(
        rs.map((x) => x.ack),
        ['persisted', 'persisted'],
      );
    } finally {
      await b.close();
      await slow.close();
    }
  });

  it('close() lets accepted writes finish while Hat answers, then refuses new ones', async () => {
    peer.resetStore();
    const b = await openBackend(peerContext(peer));
    const writes = Array.from({ length: 20 }, (_, i) => b.createModel('t', text(`w${i}`)));
    const settled = Promise.allSettled(writes);
    const closing = b.close();
    await assert.rejects(b.createModel('t', text('late')), isCode('closed'));
    await closing;
    const results = await settled;
    assert.ok(results.every((r) => r.status === 'fulfilled' && r.value.ack === 'registered'));
    assert.equal(modelTexts(peer).length, 20);
  });

  it('close() fails waiting writes with closed, and later calls are refused', async () => {
    peer.resetStore();
    const b = await openBackend(peerContext(peer), { close_timeout_ms: 0 });
    peer.stall(true);
    const settled = Promise.allSettled([
      b.createModel('t', text('a')),
      b.createModel('t', text('b')),
    ]);
    await sleep(20);
    await b.close();
    peer.stall(false);
    const results = await settled;
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      const code = ((r as PromiseRejectedResult).reason as BackendError).code;
      assert.ok(code === 'closed' || code === 'unavailable', code);
    }
    await assert.rejects(b.createModel('t', text('c')), isCode('closed'));
    await b.close(); // idempotent
  });
});
