/**
 * The pieces that keep `export`/`import`/`migrate` memory independent of the number of models:
 * paged listings (with the `getModels()` fallback), look-ups of target ids a page at a time, and
 * the batch-by-batch SHA-256 check — each counted in backend calls, and the whole migrate between
 * backends with and without `listModels`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { countModels, listModelPages, metasOf } from '../../src/backend/list-pages.js';
import type { Backend, ListOptions, ModelMeta } from '../../src/backend/types.js';
import { migrateModels } from '../../src/transfer/migrate.js';
import { TargetLookup } from '../../src/transfer/placer.js';
import { emptyReport } from '../../src/transfer/report.js';
import { BatchVerifier } from '../../src/transfer/verify.js';
import { MemoryBackend } from '../support/memory-backend.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A memory backend with a paged `listModels` (keyset over `getModels`), counting its calls. */
class PagedMemory extends MemoryBackend {
  listCalls = 0;
  getModelsCalls = 0;
  override async getModels(): Promise<ModelMeta[]> {
    this.getModelsCalls++;
    return super.getModels();
  }
  async listModels(options: ListOptions = {}): Promise<ModelMeta[]> {
    this.listCalls++;
    const after = options.after ?? 0;
    const all = await super.getModels();
    return all.filter((m) => m.instanceId > after).slice(0, options.limit ?? 1000);
  }
}

async function fill(b: Backend, n: number, tag = 'm'): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < n; i++)
    ids.push((await b.createModel('t', bytes(`${tag}${i}`))).meta.instanceId);
  return ids;
}

describe('paged transfer', () => {
  it('listModelPages: pages of listModels, or getModels() cut into pages', async () => {
    const paged = new PagedMemory();
    const plain = new MemoryBackend();
    await fill(paged, 25);
    await fill(plain, 25);
    const sizes = async (b: Backend) => {
      const out: number[] = [];
      for await (const page of listModelPages(b, 10)) out.push(page.length);
      return out;
    };
    assert.deepEqual(await sizes(paged), [10, 10, 5]);
    assert.equal(paged.listCalls, 4, 'three pages and the empty one');
    assert.equal(paged.getModelsCalls, 0);
    assert.deepEqual(await sizes(plain), [10, 10, 5]);
    assert.equal(await countModels(paged), 25);
    // A listing that does not advance is an error, not an endless loop.
    const stuck = new PagedMemory();
    await fill(stuck, 2);
    stuck.listModels = async () => (await stuck.getModels()).slice(0, 1);
    await assert.rejects(async () => {
      for await (const _ of listModelPages(stuck, 1, 5)) void _;
    }, /does not advance/);
  });

  it('metasOf: the wanted ids, one page per run of ids, absent ones left out', async () => {
    const b = new PagedMemory();
    const ids = await fill(b, 30);
    await b.deleteModel(ids[4] as number);
    const wanted = [ids[2], ids[3], ids[4], ids[5], 999] as number[];
    b.listCalls = 0;
    const got = await metasOf(b, wanted);
    assert.deepEqual(
      [...got.keys()].sort((x, y) => x - y),
      [ids[2], ids[3], ids[5]],
    );
    assert.equal(b.listCalls, 2, 'one page for the run, one that finds nothing at 999');
    assert.equal((await metasOf(new MemoryBackend(), [1, 2])).size, 0, 'fallback: getModels');
  });

  it('TargetLookup: ascending ids cost one listModels page per page of ids', async () => {
    const b = new PagedMemory();
    const ids = await fill(b, 50);
    const lookup = new TargetLookup(b, 20);
    b.listCalls = 0;
    const found = await Promise.all(ids.map((id) => lookup.get(id)));
    assert.ok(found.every((m, i) => m?.instanceId === ids[i]));
    assert.equal(b.listCalls, 3, '50 ids in pages of 20');
    assert.equal(await lookup.get(10_000), undefined);
    assert.equal(b.listCalls, 4);
    // An empty target: one read answers every id above it.
    const empty = new PagedMemory();
    const l2 = new TargetLookup(empty, 20);
    for (let id = 1; id <= 100; id++) assert.equal(await l2.get(id), undefined);
    assert.equal(empty.listCalls, 1);
  });

  it('BatchVerifier: checks each batch once its placements settle, reports mismatches', async () => {
    const target = new PagedMemory();
    const report = emptyReport();
    const verifier = new BatchVerifier(target, report, 4, 1);
    const ids = await fill(target, 10);
    // Placements settle out of order; model 2's bytes change after it was placed.
    const tasks = ids.map((id, i) =>
      verifier.track(async (record) => {
        await new Promise((r) => setTimeout(r, (10 - i) * 2));
        record(id, sha(bytes(`m${i}`)));
      }),
    );
    await target.updateModel(ids[2] as number, 't', bytes('other'));
    await target.deleteModel(ids[7] as number);
    await Promise.all(tasks.map((t) => t()));
    await verifier.room();
    await verifier.finish();
    assert.equal(report.verified, 8);
    assert.deepEqual(
      report.mismatched.map((m) => m.instance_id),
      [ids[2], ids[7]],
    );
    assert.match(report.mismatched[1]?.message ?? '', /not in the target any more/);
  });

  it('migrate: the same end state whether the backends list in pages or not', async () => {
    for (const [Source, Target] of [
      [PagedMemory, PagedMemory],
      [MemoryBackend, MemoryBackend],
    ] as const) {
      const source = new Source();
      const ids = await fill(source, 2500);
      for (const id of ids.filter((x) => x % 7 === 0)) await source.deleteModel(id);
      const target = new Target();
      const first = await migrateModels(source, target, 'keep');
      assert.equal(first.created, 2500 - ids.filter((x) => x % 7 === 0).length);
      assert.equal(first.verified, first.created);
      const again = await migrateModels(source, target, 'keep');
      assert.equal(again.created, 0);
      assert.equal(again.present, first.created);
      assert.equal(again.verified, first.created);
      if (target instanceof PagedMemory && source instanceof PagedMemory) {
        assert.equal(source.getModelsCalls, 0, 'the paged source is never listed whole');
        assert.equal(target.getModelsCalls, 0, 'nor the paged target');
      }
      assert.deepEqual(
        (await target.getModels()).map((m) => [m.instanceId, m.sha256]),
        (await source.getModels()).map((m) => [m.instanceId, m.sha256]),
      );
    }
  });
});
