/**
 * The event backend's snapshot keeps large instances through SQLite blob handles (the extension
 * of src/common/sqlite-blob-io.ts): written as zeroblob(n) and copied in, read whole and by
 * ranges through a handle, byte for byte what was given, across a reopen; small instances and
 * tombstones as before.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { SnapshotStore } from '../../src/backends/event/snapshot.js';
import type { ModelEntry } from '../../src/backends/event/store.js';
import { BLOB_IO_MIN_BYTES, blobIoExtension } from '../../src/common/sqlite-blob-io.js';
import { withTempDir } from '../backend/support/context.js';

const MiB = 1024 * 1024;
const PREFIX = ['aimm', 'snapshot-blob-io'];

function model(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i + 4 <= bytes; i += 4) b.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  return b;
}

function entry(instanceId: number, size: number, deleted = false): ModelEntry {
  return {
    instanceId,
    modelType: 't',
    revision: 1,
    size,
    sha256: 'x'.repeat(64),
    updated: '2026-12-06T00:00:00.000Z',
    deleted,
    event: { server: 1, session: 1, instance: instanceId, s: 1, us: 0 },
  };
}

function same(got: Uint8Array | null, want: Buffer): boolean {
  return got !== null && Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(want);
}

describe('event backend snapshot: large instances through blob handles', () => {
  it('stores, reads and reads ranges of large and small instances, also after a reopen', {
    skip: blobIoExtension() === undefined ? 'the extension is not built' : false,
  }, async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'snapshot.db');
      const large = model(3 * MiB + 5, 1);
      const edge = model(BLOB_IO_MIN_BYTES, 2);
      const small = model(1000, 3);
      let store = SnapshotStore.open(path, PREFIX);
      store.commit({
        upserts: [
          { entry: entry(1, large.length), instance: large },
          { entry: entry(2, edge.length), instance: edge },
          { entry: entry(3, small.length), instance: small },
          { entry: entry(4, 0, true), instance: null },
        ],
        checkpoint: null,
        highWater: 4,
      });
      for (let pass = 0; pass < 2; pass++) {
        assert.ok(same(store.readInstance(1), large));
        assert.ok(same(store.readInstance(2), edge));
        assert.ok(same(store.readInstance(3), small));
        assert.equal(store.readInstance(4), null);
        assert.equal(store.readInstance(5), null);
        assert.ok(
          same(store.readRange(1, MiB - 2, 2 * MiB + 9), large.subarray(MiB - 2, 2 * MiB + 9)),
        );
        assert.ok(
          same(store.readRange(1, large.length - 3, large.length + 10), large.subarray(-3)),
        );
        assert.ok(same(store.readRange(3, 10, 20), small.subarray(10, 20)));
        assert.ok(same(store.readRange(3, 20, 10), Buffer.alloc(0)));
        assert.equal(store.readRange(5, 0, 10), null);
        store.close();
        store = SnapshotStore.open(path, PREFIX);
      }
      // A replaced large instance: the new bytes, nothing of the old.
      const next = model(2 * MiB, 9);
      store.commit({
        upserts: [{ entry: entry(1, next.length), instance: next }],
        checkpoint: null,
        highWater: 4,
      });
      assert.ok(same(store.readInstance(1), next));
      store.close();
      const db = new Database(path, { readonly: true });
      try {
        const read = db.prepare('SELECT instance FROM snapshot_blobs WHERE id = ?').pluck();
        assert.ok((read.get(1) as Buffer).equals(next));
        assert.ok((read.get(2) as Buffer).equals(edge));
      } finally {
        db.close();
      }
    });
  });
});
