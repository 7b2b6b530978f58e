/**
 * The library-level example of docs/backends.md, run as written (through the package's export map,
 * as a user's program would import it).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from './support/context.js';

test('docs/backends.md library example: open, write, read, watch, compare-and-set, close', async () => {
  const { dir, remove } = tempDir();
  try {
    const path = join(dir, 'data', 'models.db');
    // --- example (docs/backends.md) ---
    const { openSqliteBackend } = await import('aimm-store/backends/sqlite');
    const backend = await openSqliteBackend({ path });
    const seen: string[] = [];
    const sub = backend.changes$.subscribe((c) =>
      seen.push(`${c.change} ${c.instanceId}@${c.revision}`),
    );

    const { meta } = await backend.createModel('plugins.sklearn.SVC', new Uint8Array([1, 2, 3]));
    const model = await backend.getModel(meta.instanceId);
    await backend.updateModel(meta.instanceId, meta.modelType, new Uint8Array([4, 5]), {
      expectedRevision: meta.revision,
    });
    let conflict = '';
    try {
      await backend.updateModel(meta.instanceId, meta.modelType, new Uint8Array([6]), {
        expectedRevision: meta.revision,
      });
    } catch (err) {
      conflict = (err as { code: string }).code;
    }
    const list = await backend.getModels();
    sub.unsubscribe();
    await backend.close();
    // --- end of example ---

    assert.deepEqual([...(model?.instance ?? [])], [1, 2, 3]);
    assert.equal(conflict, 'revision_conflict');
    assert.deepEqual(
      list.map((m) => [m.instanceId, m.revision, m.size]),
      [[1, 2, 2]],
    );
    assert.deepEqual(seen, ['created 1@1', 'updated 1@2']);
  } finally {
    remove();
  }
});
