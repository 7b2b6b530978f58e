/**
 * The library-level example of docs/backend-event.md, run as written through the package's export
 * map (as a user's program imports it), against the Hat test peer.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { startPeer, tempDir } from './support.js';

test('docs/backend-event.md library example: open, watch, write, compare-and-set, delete, close', async () => {
  const peer = await startPeer();
  const { dir, remove } = tempDir();
  const lines: string[] = [];
  const log = (...a: unknown[]) => lines.push(a.join(' '));
  try {
    const hatAddress = { host: peer.host, port: peer.port };
    const snapshotPath = join(dir, 'snapshot.db');
    // --- example (docs/backend-event.md) ---
    const { openEventBackend } = await import('aimm-store/backends/event');
    const backend = await openEventBackend(
      { model_prefix: ['aimm', 'model'], snapshot: { path: snapshotPath } },
      { hat: hatAddress }, // e.g. { host: '127.0.0.1', port: 23012 }
    );
    const sub = backend.changes$.subscribe((c) =>
      log(c.change, c.instanceId, c.revision, c.origin),
    );
    const { meta, ack } = await backend.createModel(
      'plugins.sklearn.SVC',
      new Uint8Array([1, 2, 3]),
    );
    log('created', meta.instanceId, ack); // created 1 registered
    await backend.updateModel(meta.instanceId, meta.modelType, new Uint8Array([4]), {
      expectedRevision: meta.revision, // compare-and-set
    });
    const model = await backend.getModel(meta.instanceId);
    log('read', model?.instance.length, model?.revision); // read 1 2
    await backend.deleteModel(meta.instanceId); // a tombstone event
    sub.unsubscribe();
    await backend.close();
    // --- end of example ---
    assert.deepEqual(lines, [
      'created 1 1 local',
      'created 1 registered',
      'updated 1 2 local',
      'read 1 2',
      'deleted 1 3 local',
    ]);
    assert.equal(peer.events.filter((e) => e.type[0] === 'aimm').length, 3);
  } finally {
    remove();
    await peer.close();
  }
});
