/**
 * The register window (`max_registers_in_flight`, issue 11 goal 3): several register requests in
 * flight on one connection. Per-model order and results applied in send order (also when answers
 * arrive out of order), a refused middle batch, a connection cut with several in flight, and the
 * snapshot's queue flushed through the window.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BackendError } from '../../src/backend/types.js';
import type { Event, EventerClient, RegisterEvent } from '../../src/hat/eventer/common.js';
import type { HatPeer } from '../peer/hat-peer.js';
import {
  assertMatchesHat,
  interceptRegisters,
  openBackend,
  PREFIX,
  peerContext,
  sleep,
  startPeer,
  str,
  type TestContext,
  tempDir,
  text,
  waitFor,
  withTimeout,
} from './support.js';

/** Per model id, the texts Hat holds for it, in Hat's order. */
function hatTexts(peer: HatPeer): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const e of peer.events) {
    if (e.type[0] !== PREFIX[0] || e.type[1] !== PREFIX[1]) continue;
    const id = Number(e.type[2]);
    const p =
      e.payload?.kind === 'json' ? (JSON.parse(e.payload.text) as { instance: string }) : null;
    const t = p === null ? 'tombstone' : Buffer.from(p.instance, 'base64').toString('utf8');
    out.set(id, [...(out.get(id) ?? []), t]);
  }
  return out;
}

/** Counts register requests in flight through an intercept (and the most seen at once). */
class InFlight {
  now = 0;
  max = 0;
  calls = 0;
  enter(): number {
    this.calls++;
    this.now++;
    this.max = Math.max(this.max, this.now);
    return this.calls;
  }
  leave(): void {
    this.now--;
  }
}

/** A register whose answer waits for `gate` (or rejects when the connection closes). */
async function heldRegister(
  client: EventerClient,
  events: RegisterEvent[],
  gate: Promise<void>,
): Promise<Event[] | null> {
  const answer = client.register(events);
  answer.catch(() => {});
  const closed = client.closed.then((why) => {
    throw why ?? new Error('eventer connection closed');
  });
  closed.catch(() => {});
  await Promise.race([gate, closed]);
  return Promise.race([answer, closed]);
}

/**
 * Hat gets each register request at once (in send order); its answer reaches the backend after a
 * random delay below `maxDelayMs`, so later requests' answers often overtake earlier ones.
 */
function delayAnswers(ctx: TestContext, maxDelayMs: number): InFlight {
  const inFlight = new InFlight();
  interceptRegisters(ctx, async (events, client) => {
    inFlight.enter();
    try {
      const answer = client.register(events);
      await sleep(Math.floor(Math.random() * maxDelayMs));
      return await answer;
    } finally {
      inFlight.leave();
    }
  });
  return inFlight;
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open: () => void = () => {};
  const promise = new Promise<void>((r) => {
    open = r;
  });
  return { promise, open };
}

describe('event backend register window', () => {
  let peer: HatPeer;
  before(async () => {
    peer = await startPeer();
  });
  after(async () => {
    await peer.close();
  });

  it('keeps per-model order and applies answers in send order, also when they arrive out of order', async () => {
    peer.resetStore();
    const ctx = peerContext(peer);
    const inFlight = delayAnswers(ctx, 6);
    const b = await openBackend(ctx, { max_registers_in_flight: 4, max_batch_events: 4 });
    try {
      const models = 12;
      const rounds = 8;
      const ids: number[] = [];
      for (let m = 0; m < models; m++)
        ids.push((await b.createModel('t', text(`${m}:0`))).meta.instanceId);
      // Every model's writes are issued without waiting, interleaved with the other models'.
      const writes: Promise<{ id: number; round: number; revision: number }>[] = [];
      for (let r = 1; r <= rounds; r++)
        for (const [m, id] of ids.entries()) {
          writes.push(
            b
              .updateModel(id, 't', text(`${m}:${r}`))
              .then((res) => ({ id, round: r, revision: res.meta.revision })),
          );
        }
      const done = await withTimeout(Promise.all(writes), 20_000, 'writes');
      for (const w of done) assert.equal(w.revision, w.round + 1, `revision of ${w.id}#${w.round}`);
      assert.ok(inFlight.max >= 2, `requests in flight at once: ${inFlight.max}`);
      const texts = hatTexts(peer);
      for (const [m, id] of ids.entries())
        assert.deepEqual(
          texts.get(id),
          Array.from({ length: rounds + 1 }, (_, r) => `${m}:${r}`),
          `Hat's order for model ${id}`,
        );
      await assertMatchesHat(b, peer, 'after the writes');
      assert.equal(ctx.logs.find(/went backwards/).length, 0);
    } finally {
      await b.close();
    }
  });

  it('a refused middle batch fails its writes; a later write to one of its models is re-checked, not sent over it', async () => {
    peer.resetStore();
    const ctx = peerContext(peer);
    const inFlight = new InFlight();
    const first = gate();
    let intercepting = false;
    interceptRegisters(ctx, async (events, client) => {
      if (!intercepting) return client.register(events);
      const n = inFlight.enter();
      try {
        if (n === 1) return await heldRegister(client, events, first.promise);
        if (n === 2) return null; // refused: nothing registered (as Hat answers `failure`)
        return await client.register(events);
      } finally {
        inFlight.leave();
      }
    });
    const b = await openBackend(ctx, { max_registers_in_flight: 4 });
    try {
      const x = (await b.createModel('t', text('x0'))).meta.instanceId;
      const a = (await b.createModel('t', text('a0'))).meta.instanceId;
      const c = (await b.createModel('t', text('c0'))).meta.instanceId;
      intercepting = true;
      const w1 = b.updateModel(x, 't', text('x1')); // batch 1, its answer held
      await waitFor(() => inFlight.calls === 1, 'batch 1 sent');
      const w2 = b.updateModel(a, 't', text('a1'), { expectedRevision: 1 }); // batch 2, refused
      const w3 = b.createModel('t', text('new'));
      await waitFor(() => inFlight.calls === 2, 'batch 2 sent');
      // Batch 3: `a` has a write in flight (batch 2), so it waits for the window to empty and is
      // checked again once batch 2's fate is known.
      const w4 = b.updateModel(a, 't', text('a2'), { expectedRevision: 2 });
      const w5 = b.updateModel(c, 't', text('c1'));
      const results = Promise.allSettled([w1, w2, w3, w4, w5]);
      await sleep(50);
      assert.equal(inFlight.calls, 2, 'batch 3 waits while batch 2 (sharing a model) is in flight');
      first.open();
      const [r1, r2, r3, r4, r5] = await withTimeout(results, 10_000, 'writes');
      assert.equal(r1?.status, 'fulfilled');
      for (const r of [r2, r3]) {
        assert.equal(r?.status, 'rejected');
        assert.match(((r as PromiseRejectedResult).reason as Error).message, /refused/);
      }
      assert.equal(r4?.status, 'rejected');
      assert.equal(
        ((r4 as PromiseRejectedResult).reason as BackendError).code,
        'revision_conflict',
      );
      assert.equal(r5?.status, 'fulfilled');
      const texts = hatTexts(peer);
      assert.deepEqual(texts.get(x), ['x0', 'x1']);
      assert.deepEqual(texts.get(a), ['a0'], 'nothing of the refused batch, nor written over it');
      assert.deepEqual(texts.get(c), ['c0', 'c1']);
      await assertMatchesHat(b, peer, 'after the refusal');
      const again = await b.updateModel(a, 't', text('a1'), { expectedRevision: 1 });
      assert.equal(again.meta.revision, 2);
    } finally {
      first.open();
      await b.close();
    }
  });

  it('a connection cut with several requests in flight fails them all as maybe stored; recovery brings Hat back', async () => {
    peer.resetStore();
    const ctx: TestContext = peerContext(peer);
    const inFlight = new InFlight();
    const held = gate();
    let holding = false;
    interceptRegisters(ctx, async (events, client) => {
      if (!holding) return client.register(events);
      inFlight.enter();
      try {
        return await heldRegister(client, events, held.promise);
      } finally {
        inFlight.leave();
      }
    });
    const b = await openBackend(ctx, { max_registers_in_flight: 3 });
    try {
      const ids: number[] = [];
      for (let m = 0; m < 3; m++)
        ids.push((await b.createModel('t', text(`${m}:0`))).meta.instanceId);
      holding = true;
      const writes: Promise<unknown>[] = [];
      for (const [m, id] of ids.entries()) {
        writes.push(b.updateModel(id, 't', text(`${m}:1`)));
        await waitFor(() => inFlight.now === m + 1, `request ${m + 1} in flight`);
      }
      const results = Promise.allSettled(writes);
      peer.cutConnections();
      const settled = await withTimeout(results, 10_000, 'writes failed');
      for (const r of settled) {
        assert.equal(r.status, 'rejected');
        const err = (r as PromiseRejectedResult).reason as BackendError;
        assert.equal(err.code, 'unavailable');
        assert.match(err.message, /may or may not be stored/);
      }
      holding = false;
      await waitFor(
        () => b.status().connected === true && b.status().ready === true,
        'reconnected',
      );
      // Hat did register all three before the cut: recovery applies them.
      await waitFor(
        async () => (await b.getModels()).every((m) => m.revision === 2),
        'recovered the registered writes',
      );
      await assertMatchesHat(b, peer, 'after the cut');
      const next = await b.updateModel(ids[0] as number, 't', text('0:2'), { expectedRevision: 2 });
      assert.equal(next.meta.revision, 3);
    } finally {
      held.open();
      await b.close();
    }
  });

  it('a timed-out request fails the later ones in flight too, even answered; recovery brings Hat back', async () => {
    peer.resetStore();
    const ctx = peerContext(peer);
    const inFlight = new InFlight();
    const never = gate();
    let intercepting = false;
    interceptRegisters(ctx, async (events, client) => {
      if (!intercepting) return client.register(events);
      const n = inFlight.enter();
      try {
        // The first request is registered, but its answer is lost; the second is answered.
        if (n === 1) return await heldRegister(client, events, never.promise);
        return await client.register(events);
      } finally {
        inFlight.leave();
      }
    });
    const b = await openBackend(ctx, { max_registers_in_flight: 4, request_timeout_ms: 300 });
    try {
      const x = (await b.createModel('t', text('x0'))).meta.instanceId;
      const y = (await b.createModel('t', text('y0'))).meta.instanceId;
      intercepting = true;
      const w1 = b.updateModel(x, 't', text('x1'));
      await waitFor(() => inFlight.calls === 1, 'request 1 sent');
      const w2 = b.updateModel(y, 't', text('y1'));
      await waitFor(() => inFlight.calls === 2, 'request 2 sent');
      const settled = await withTimeout(Promise.allSettled([w1, w2]), 10_000, 'writes');
      for (const r of settled) {
        assert.equal(r.status, 'rejected', 'the answered request is not applied over the lost one');
        assert.match(
          ((r as PromiseRejectedResult).reason as Error).message,
          /may or may not be stored/,
        );
      }
      intercepting = false;
      await waitFor(
        async () =>
          b.status().ready === true && (await b.getModels()).every((m) => m.revision === 2),
        'reconnected and recovered both writes',
      );
      await assertMatchesHat(b, peer, 'after the timeout');
      assert.equal(ctx.logs.find(/went backwards/).length, 0);
    } finally {
      never.open();
      await b.close();
    }
  });

  it("ack 'persisted' under the window: every write waits for its own persisted notification", async () => {
    peer.resetStore();
    const ctx = peerContext(peer);
    const inFlight = delayAnswers(ctx, 4);
    const b = await openBackend(ctx, {
      ack: 'persisted',
      max_registers_in_flight: 3,
      max_batch_events: 2,
    });
    try {
      const results = await withTimeout(
        Promise.all(Array.from({ length: 24 }, (_, i) => b.createModel('t', text(`m${i}`)))),
        10_000,
        'writes',
      );
      assert.ok(results.every((r) => r.ack === 'persisted'));
      assert.equal(new Set(results.map((r) => r.meta.instanceId)).size, 24);
      assert.ok(inFlight.max >= 2, `requests in flight at once: ${inFlight.max}`);
      await assertMatchesHat(b, peer, 'after the persisted writes');
    } finally {
      await b.close();
    }
  });

  it('flushes the snapshot queue through the window in order, each write once', async () => {
    peer.resetStore();
    const { dir, remove } = tempDir();
    const ctx = peerContext(peer);
    const inFlight = delayAnswers(ctx, 4);
    const conf = {
      snapshot: { path: join(dir, 'event.db') },
      queue_when_disconnected: true,
      max_registers_in_flight: 4,
      max_batch_events: 3,
    };
    const b = await openBackend(ctx, conf);
    try {
      const ids: number[] = [];
      for (let m = 0; m < 8; m++)
        ids.push((await b.createModel('t', text(`${m}:0`))).meta.instanceId);
      await peer.stop();
      await waitFor(() => b.status().connected === false, 'disconnected');
      const rounds = 5;
      for (let r = 1; r <= rounds; r++)
        for (const [m, id] of ids.entries()) {
          const q = await b.updateModel(id, 't', text(`${m}:${r}`));
          assert.equal(q.ack, 'queued');
        }
      inFlight.max = 0;
      await peer.start();
      await waitFor(
        () => /aimm_store_event_snapshot_queue_depth 0/.test(ctx.metrics.render()),
        'queue flushed',
      );
      assert.ok(inFlight.max >= 2, `requests in flight at once: ${inFlight.max}`);
      const texts = hatTexts(peer);
      for (const [m, id] of ids.entries())
        assert.deepEqual(
          texts.get(id),
          Array.from({ length: rounds + 1 }, (_, r) => `${m}:${r}`),
          `Hat's order for model ${id}`,
        );
      await assertMatchesHat(b, peer, 'after the flush');
      assert.equal(
        str((await b.getModel(ids[3] as number))?.instance ?? new Uint8Array()),
        `3:${rounds}`,
      );
    } finally {
      await b.close();
      remove();
    }
  });

  it('a refused batch of queued writes is not overtaken by a later queued write to its model', async () => {
    peer.resetStore();
    const { dir, remove } = tempDir();
    const ctx = peerContext(peer);
    let refuseNext = false;
    interceptRegisters(ctx, async (events, client) => {
      if (refuseNext) {
        refuseNext = false;
        return null;
      }
      return client.register(events);
    });
    const conf = {
      snapshot: { path: join(dir, 'event.db') },
      queue_when_disconnected: true,
      max_registers_in_flight: 2,
      max_batch_events: 1,
    };
    const b = await openBackend(ctx, conf);
    try {
      const id = (await b.createModel('t', text('v0'))).meta.instanceId;
      await peer.stop();
      await waitFor(() => b.status().connected === false, 'disconnected');
      for (const v of ['v1', 'v2', 'v3'])
        assert.equal((await b.updateModel(id, 't', text(v))).ack, 'queued');
      refuseNext = true; // the first batch of the flush (v1) is refused
      await peer.start();
      await waitFor(
        () => /aimm_store_event_snapshot_queue_depth 0/.test(ctx.metrics.render()),
        'queue flushed',
      );
      assert.deepEqual(hatTexts(peer).get(id), ['v0', 'v1', 'v2', 'v3']);
      await assertMatchesHat(b, peer, 'after the flush');
    } finally {
      await b.close();
      remove();
    }
  });
});
