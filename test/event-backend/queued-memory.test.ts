/**
 * Bounded memory during a long Hat outage with `queue_when_disconnected` (issue 11, goal 4): a
 * write acked `queued` keeps only its metadata in memory; its bytes stay in the snapshot's queue
 * and are read back from there when the model is read and when the write is sent after reconnect.
 * `event_pending_held_bytes` (payload bytes held by writes not yet in Hat) stays 0 however much is
 * queued, the queued writes do not count against `max_queued_bytes`, and every write still arrives
 * at Hat exactly once, in order, byte-exact — also after a daemon restart during the outage.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { modelRegisterEvent, registerEventSize } from '../../src/backends/event/format.js';
import { SnapshotStore } from '../../src/backends/event/snapshot.js';
import type { HatPeer } from '../peer/hat-peer.js';
import {
  metricValue,
  openBackend,
  PREFIX,
  peerContext,
  startPeer,
  tempDir,
  text,
  waitFor,
  withTimeout,
} from './support.js';

const MODELS = 50;
const WRITES = 200; // 50 creates, then 150 updates round-robin (3 per model)
const SIZE = 64 * 1024;

/** Our prefix's events in Hat, in the order Hat registered them: [id, bytes (null: tombstone)]. */
function hatWrites(peer: HatPeer): [number, Buffer | null][] {
  return peer.events
    .filter((e) => e.type[0] === PREFIX[0] && e.type[1] === PREFIX[1])
    .map((e) => [
      Number(e.type[2]),
      e.payload?.kind === 'json'
        ? Buffer.from((JSON.parse(e.payload.text) as { instance: string }).instance, 'base64')
        : null,
    ]);
}

describe('snapshot queue: metadata without payloads', () => {
  it('lists the queue without events, with their sizes, and reads each event back as stored', () => {
    const { dir, remove } = tempDir();
    const snap = SnapshotStore.open(join(dir, 'event.db'), PREFIX);
    try {
      const events = [
        modelRegisterEvent(PREFIX, 7, 'nn.Ünïcødé/模型', randomBytes(1000)),
        { type: [...PREFIX, '7'], sourceTimestamp: null, payload: null },
      ];
      const seqs = events.map((event, i) =>
        snap.enqueue({
          instanceId: 7,
          op: i === 0 ? 'create' : 'delete',
          modelType: 'nn.Ünïcødé/模型',
          event,
          size: i === 0 ? 1000 : 0,
          sha256: 'x',
          queuedAt: 't',
        }),
      );
      const meta = snap.listQueueMeta();
      assert.deepEqual(
        meta.map((m) => [m.seq, m.op, m.eventBytes]),
        events.map((e, i) => [seqs[i], i === 0 ? 'create' : 'delete', registerEventSize(e)]),
      );
      assert.ok(!('event' in (meta[0] as object)));
      // Read back with the text the event carried (sent in parts, stored joined).
      for (const [i, e] of events.entries())
        assert.deepEqual(snap.readQueuedEvent(seqs[i] as number), {
          ...e,
          payload: e.payload?.kind === 'json' ? { kind: 'json', text: e.payload.text } : e.payload,
        });
      assert.equal(snap.readQueuedEvent(9999), null);
    } finally {
      snap.close();
      remove();
    }
  });
});

describe('event backend: queued writes during an outage hold no payload in memory', () => {
  let peer: HatPeer;
  before(async () => {
    peer = await startPeer();
  });
  after(async () => {
    await peer.close();
  });

  it('200 queued writes of 64 KiB: held bytes stay 0, reads come from the snapshot, all arrive byte-exact after reconnect', async () => {
    peer.resetStore();
    const { dir, remove } = tempDir();
    // A pipeline bound far below what the outage queues: queued writes must not count against it.
    const conf = {
      snapshot: { path: join(dir, 'event.db') },
      queue_when_disconnected: true,
      max_queued_writes: 8,
      max_queued_bytes: 256 * 1024,
    };
    let ctx = peerContext(peer);
    let b = await openBackend(ctx, conf);
    try {
      const base = await b.createModel('t', text('base'));
      assert.equal(base.ack, 'registered');
      await peer.stop();
      await waitFor(() => b.status().connected === false, 'disconnected', 30_000);

      const expected: [number, Buffer][] = [];
      const latest = new Map<number, Buffer>();
      const ids: number[] = [];
      for (let i = 0; i < WRITES; i++) {
        const bytes = randomBytes(SIZE);
        let id: number;
        if (i < MODELS) {
          const r = await b.createModel('t', bytes);
          assert.equal(r.ack, 'queued');
          id = r.meta.instanceId;
          ids.push(id);
        } else {
          id = ids[i % MODELS] as number;
          const r = await b.updateModel(id, 't', bytes);
          assert.equal(r.ack, 'queued');
          assert.equal(r.meta.revision, Math.floor(i / MODELS) + 1);
        }
        expected.push([id, bytes]);
        latest.set(id, bytes);
        if (i % 20 === 19)
          assert.equal(metricValue(ctx, 'event_pending_held_bytes'), 0, `held after ${i + 1}`);
      }
      assert.equal(metricValue(ctx, 'event_pending_held_bytes'), 0);
      assert.equal(metricValue(ctx, 'event_snapshot_queue_depth'), WRITES);
      assert.equal(metricValue(ctx, 'event_pipeline_bytes'), 0);

      // Reads of queued models come from the snapshot, byte-exact, and leave nothing held.
      const checkReads = async (what: string) => {
        for (const id of [ids[0] as number, ids[17] as number, ids[MODELS - 1] as number]) {
          const m = await b.getModel(id);
          assert.ok(m !== null, `${what}: model ${id}`);
          assert.equal(m.revision, 4, `${what}: revision of ${id}`);
          assert.ok(Buffer.from(m.instance).equals(latest.get(id) as Buffer), `${what}: ${id}`);
          const r = await b.getModelRange(id, () => ({ start: 1000, end: 1100 }));
          assert.ok(
            r !== null &&
              Buffer.from(r.bytes).equals((latest.get(id) as Buffer).subarray(1000, 1100)),
            `${what}: range of ${id}`,
          );
        }
        const listed = await b.getModels();
        assert.equal(listed.length, MODELS + 1, `${what}: listed`);
        for (const m of listed.slice(1)) assert.equal(m.revision, 4, `${what}: listed revision`);
        assert.equal(metricValue(ctx, 'event_pending_held_bytes'), 0, `${what}: held after reads`);
      };
      await checkReads('queued');

      // A restart during the outage: the queue is restored as metadata only.
      await b.close();
      ctx = peerContext(peer);
      b = await openBackend(ctx, conf, false);
      await withTimeout(b.whenReady(), 10_000, 'ready from the snapshot while Hat is down');
      assert.equal(metricValue(ctx, 'event_snapshot_queue_depth'), WRITES);
      await checkReads('restored');

      // Reconnect: every write goes out once, in order, byte-exact, without payloads being held.
      let maxHeld = 0;
      await peer.start();
      await waitFor(
        () => {
          maxHeld = Math.max(maxHeld, metricValue(ctx, 'event_pending_held_bytes'));
          return metricValue(ctx, 'event_snapshot_queue_depth') === 0;
        },
        'queue flushed',
        120_000,
      );
      assert.equal(maxHeld, 0);
      const got = hatWrites(peer);
      assert.equal(got.length, 1 + WRITES, 'each write exactly once');
      assert.equal(got[0]?.[0], base.meta.instanceId);
      for (let i = 0; i < WRITES; i++) {
        const [id, bytes] = got[i + 1] as [number, Buffer | null];
        const [wantId, want] = expected[i] as [number, Buffer];
        assert.equal(id, wantId, `write ${i}: model`);
        assert.ok(bytes?.equals(want), `write ${i}: bytes`);
      }
      // The state now serves Hat's bytes for the same models.
      const m = await b.getModel(ids[5] as number);
      assert.ok(
        m !== null && Buffer.from(m.instance).equals(latest.get(ids[5] as number) as Buffer),
      );
      assert.equal(m?.revision, 4);
    } finally {
      await b.close();
      remove();
      await peer.start();
    }
  });
});
