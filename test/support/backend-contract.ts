/**
 * The backend contract suite (design §3, `src/backend/types.ts`): every behaviour a client may rely
 * on, whatever the backend. Run it from a test file against any backend:
 *
 * ```ts
 * import { runBackendContract } from '../support/backend-contract.js';
 * runBackendContract('sqlite', async () => {
 *   const dir = fs.mkdtempSync(join(os.tmpdir(), 'x-'));
 *   const conf = { module: 'aimm-store/backends/sqlite', path: join(dir, 'm.db') };
 *   return {
 *     backend: await create(conf, context),
 *     reopen: async () => create(conf, context),   // omit for a backend that forgets on close
 *     cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }),
 *   };
 * }, { acks: ['committed'] });
 * ```
 *
 * - `open()` is called once per test and must return a fresh, empty store.
 * - The suite closes every backend it was given (the one from `open()` and each `reopen()` result)
 *   before it calls `cleanup()`; `reopen()` is only called after the previous backend is closed and
 *   must open the same store again (same file, same Hat prefix, ...). Without `reopen` the
 *   persistence tests are skipped.
 * - `options.acks` lists the acknowledgement levels the backend may answer with.
 * - Expected beyond the type signatures: `changes$` completes on `close()`; writes after `close()`
 *   reject with `closed`; a write's change is emitted at the latest a few seconds after it was
 *   acknowledged (`changeTimeoutMs`); a backend keeps its own copy of the bytes it is given.
 *
 * Covered: create/read/update/delete, list order, ids never reused (also after reopen), revisions,
 * compare-and-set conflicts (also racing), `not_found`, change stream contents and order, concurrent
 * writes, close semantics, bytes preserved exactly (empty, every byte value, views into larger
 * buffers, caller mutation after the call, large), and a randomized model check (fast-check)
 * against a reference map.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Subscription } from 'rxjs';
import { rollbackModel } from '../../src/backend/rollback.js';
import {
  type AckLevel,
  type Backend,
  BackendError,
  type BackendErrorCode,
  type Model,
  type ModelChange,
  type ModelMeta,
} from '../../src/backend/types.js';

export interface ContractSubject {
  backend: Backend;
  /** Opens the same store again (called only after the previous backend was closed). */
  reopen?: () => Promise<Backend>;
  /** Removes what `open()` created (files, folders). Every backend is closed before this runs. */
  cleanup: () => Promise<void>;
}

export interface ContractOptions {
  /** Acknowledgement levels the backend may answer a write with (default: all of them). */
  acks?: readonly AckLevel[];
  /** Size of the "large" instance in bytes (default 4 MiB). */
  largeBytes?: number;
  /** Number of concurrent writes in the concurrency tests (default 64). */
  concurrency?: number;
  /** Runs of the randomized model check (default 20; 0 skips it). */
  propertyRuns?: number;
  /** How long to wait for expected change events before failing (default 5000 ms). */
  changeTimeoutMs?: number;
  /** A test that takes longer fails instead of hanging the run (default 60 s; the random one 4×). */
  testTimeoutMs?: number;
  /** The backend keeps `contentType` (default false: it must then report none). */
  contentTypes?: boolean;
}

const ALL_ACKS: readonly AckLevel[] = ['committed', 'registered', 'persisted', 'queued'];

/** Registers the contract tests (a `describe` block named after the backend). */
export function runBackendContract(
  name: string,
  open: () => Promise<ContractSubject>,
  options: ContractOptions = {},
): void {
  const acks = options.acks ?? ALL_ACKS;
  const largeBytes = options.largeBytes ?? 4 * 1024 * 1024;
  const concurrency = options.concurrency ?? 64;
  const propertyRuns = options.propertyRuns ?? 20;
  const changeTimeoutMs = options.changeTimeoutMs ?? 5000;
  const timeout = options.testTimeoutMs ?? 60_000;
  const contentTypes = options.contentTypes ?? false;

  /** Runs `body` against a fresh store, closing every backend and cleaning up afterwards. */
  async function withStore(body: (h: Harness) => Promise<void>): Promise<void> {
    const subject = await open();
    const h = new Harness(subject);
    try {
      await body(h);
    } finally {
      for (const sub of h.subscriptions) sub.unsubscribe();
      await h.backend.close();
      await subject.cleanup();
    }
  }

  describe(`backend contract: ${name}`, () => {
    it('starts empty and ready', { timeout }, async () => {
      await withStore(async ({ backend }) => {
        await backend.whenReady();
        assert.equal(backend.status().ready, true);
        assert.deepEqual(await backend.getModels(), []);
        assert.equal(await backend.getModel(1), null);
      });
    });

    it('creates a model: allocates an id, revision 1, metadata that matches the bytes', {
      timeout,
    }, async () => {
      await withStore(async ({ backend }) => {
        const bytes = new Uint8Array([1, 2, 3, 250]);
        const res = await backend.createModel('plugins.sklearn.SVC', bytes);
        assert.ok(acks.includes(res.ack), `unexpected ack ${res.ack}`);
        const { meta } = res;
        assert.ok(Number.isSafeInteger(meta.instanceId) && meta.instanceId > 0);
        assert.equal(meta.modelType, 'plugins.sklearn.SVC');
        assert.equal(meta.revision, 1);
        assert.equal(meta.size, 4);
        assert.equal(meta.sha256, sha256(bytes));
        assertIsoTime(meta.updated);

        const got = await backend.getModel(meta.instanceId);
        assert.ok(got !== null);
        assert.deepEqual(metaOf(got), meta);
        assertBytes(got.instance, bytes);
        assert.deepEqual(await backend.getModels(), [meta]);
      });
    });

    it('history (where the backend has it): every revision with exact numbers, bytes of each, deletions', {
      timeout,
    }, async (t) => {
      await withStore(async ({ backend }) => {
        if (backend.getHistory === undefined || backend.getRevision === undefined) {
          t.skip('this backend keeps no history');
          return;
        }
        const v = [new Uint8Array([1]), new Uint8Array([2, 2]), new Uint8Array([3, 3, 3])];
        const { meta } = await backend.createModel('h.A', v[0] as Uint8Array);
        await backend.updateModel(meta.instanceId, 'h.B', v[1] as Uint8Array);
        await backend.updateModel(meta.instanceId, 'h.B', v[2] as Uint8Array);
        const h = await backend.getHistory(meta.instanceId);
        assert.deepEqual(
          h?.map((r) => [r.revision, r.modelType, r.size, r.sha256, r.deleted, r.current]),
          [
            [1, 'h.A', 1, sha256(v[0] as Uint8Array), false, false],
            [2, 'h.B', 2, sha256(v[1] as Uint8Array), false, false],
            [3, 'h.B', 3, sha256(v[2] as Uint8Array), false, true],
          ],
        );
        for (const r of h ?? []) assertIsoTime(r.updated);
        for (let rev = 1; rev <= 3; rev++) {
          const m: Model | null = await backend.getRevision(meta.instanceId, rev);
          assert.equal(m?.revision, rev);
          assertBytes(m?.instance ?? new Uint8Array(), v[rev - 1] as Uint8Array);
        }
        assert.deepEqual(
          (await backend.getHistory(meta.instanceId, { after: 1, limit: 1 }))?.map(
            (r) => r.revision,
          ),
          [2],
        );
        await backend.deleteModel(meta.instanceId);
        const d = await backend.getHistory(meta.instanceId);
        assert.deepEqual(
          d?.map((r) => [r.revision, r.deleted, r.available, r.current]),
          [
            [1, false, true, false],
            [2, false, true, false],
            [3, false, true, false],
            [4, true, false, true],
          ],
        );
        assert.equal(await backend.getRevision(meta.instanceId, 4), null);
        assertBytes(
          (await backend.getRevision(meta.instanceId, 2))?.instance ?? new Uint8Array(),
          v[1] as Uint8Array,
        );
        assert.equal(await backend.getHistory(meta.instanceId + 1000), null);
      });
    });

    it('rollback: a new revision with the old bytes; of two racing rollbacks exactly one wins', {
      timeout,
    }, async (t) => {
      await withStore(async ({ backend }) => {
        if (backend.getRevision === undefined) {
          t.skip('this backend keeps no history');
          return;
        }
        const v1 = new Uint8Array([1, 1]);
        const { meta } = await backend.createModel('r.A', v1);
        await backend.updateModel(meta.instanceId, 'r.B', new Uint8Array([2]));
        await backend.updateModel(meta.instanceId, 'r.B', new Uint8Array([3]));
        const results = await Promise.allSettled([
          rollbackModel(backend, meta.instanceId, 1, 3),
          rollbackModel(backend, meta.instanceId, 2, 3),
        ]);
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r) => r.status === 'rejected');
        assert.equal(won.length, 1, 'exactly one rollback wins');
        assert.equal(lost.length, 1);
        const reason = (lost[0] as PromiseRejectedResult).reason as BackendError;
        assert.equal(reason.code, 'revision_conflict');
        const now = await backend.getModel(meta.instanceId);
        assert.equal(now?.revision, 4);
        const winner = (won[0] as PromiseFulfilledResult<{ meta: ModelMeta }>).value.meta;
        assert.deepEqual(now === null ? null : metaOf(now), winner);
        await assert.rejects(rollbackModel(backend, meta.instanceId, 99), (err: BackendError) => {
          assert.equal(err.code, 'not_found');
          return true;
        });
      });
    });

    it('allocates distinct increasing ids and lists models ascending by id', {
      timeout,
    }, async () => {
      await withStore(async ({ backend }) => {
        const ids: number[] = [];
        for (let i = 0; i < 5; i++) {
          ids.push((await backend.createModel(`t${i}`, bytesOf(`m${i}`))).meta.instanceId);
        }
        for (let i = 1; i < ids.length; i++)
          assert.ok(must(ids[i]) > must(ids[i - 1]), `ids ${ids}`);
        const listed = await backend.getModels();
        assert.deepEqual(
          listed.map((m) => m.instanceId),
          ids,
        );
        assert.deepEqual(
          listed.map((m) => m.modelType),
          ['t0', 't1', 't2', 't3', 't4'],
        );
      });
    });

    it('listModels (optional): the listing in pages by id, deleted ones left out, bad input refused', {
      timeout,
    }, async (t) => {
      await withStore(async ({ backend }) => {
        const list = backend.listModels?.bind(backend);
        if (list === undefined) {
          t.skip('this backend lists in one piece only');
          return;
        }
        assert.deepEqual(await list({}), [], 'empty store: empty page');
        const ids: number[] = [];
        for (let i = 0; i < 12; i++) {
          ids.push((await backend.createModel(`t${i}`, bytesOf(`m${i}`))).meta.instanceId);
        }
        await backend.deleteModel(must(ids[3]));
        await backend.deleteModel(must(ids[4]));
        // With a content type: pages carry what getModels carries (where the backend keeps it).
        await backend.updateModel(must(ids[5]), 'u', bytesOf('new'), { contentType: 'text/plain' });
        const whole = await backend.getModels();
        assert.equal(whole.length, 10);
        for (const limit of [1, 3, 5, 100]) {
          const pages: ModelMeta[][] = [];
          for (const page of await collectPages(list, limit)) pages.push(page);
          assert.ok(
            pages.every((p) => p.length >= 1 && p.length <= limit),
            `pages of at most ${limit}`,
          );
          assert.deepEqual(pages.flat(), whole, `pages of ${limit} list what getModels lists`);
        }
        assert.deepEqual(
          (await list({ after: must(ids[2]), limit: 2 })).map((m) => m.instanceId),
          [ids[5], ids[6]],
          'after an id: the next live ones (deleted ids skipped)',
        );
        assert.deepEqual(await list({ after: must(ids[11]) }), [], 'past the last id: empty');
        for (const bad of [{ after: -1 }, { after: 1.5 }, { limit: 0 }, { limit: Number.NaN }]) {
          await assert.rejects(
            list(bad),
            (err: unknown) => err instanceof BackendError && err.code === 'invalid',
            JSON.stringify(bad),
          );
        }
      });
    });

    it('updates a model: new bytes and type, revision +1, new hash', { timeout }, async () => {
      await withStore(async ({ backend }) => {
        const { meta: c } = await backend.createModel('a.Model', bytesOf('one'));
        const u1 = await backend.updateModel(c.instanceId, 'a.Model', bytesOf('two'));
        assert.ok(acks.includes(u1.ack));
        assert.equal(u1.meta.instanceId, c.instanceId);
        assert.equal(u1.meta.revision, 2);
        assert.equal(u1.meta.sha256, sha256(bytesOf('two')));
        const u2 = await backend.updateModel(c.instanceId, 'b.Other', bytesOf('three!'));
        assert.equal(u2.meta.revision, 3);
        assert.equal(u2.meta.modelType, 'b.Other');
        assert.equal(u2.meta.size, 6);
        const got = await backend.getModel(c.instanceId);
        assert.ok(got !== null);
        assert.deepEqual(metaOf(got), u2.meta);
        assertBytes(got.instance, bytesOf('three!'));
        assert.deepEqual(await backend.getModels(), [u2.meta]);
      });
    });

    it('rejects writes to ids that never existed with not_found', { timeout }, async () => {
      await withStore(async ({ backend }) => {
        await backend.createModel('t', bytesOf('x'));
        await assertBackendError(backend.updateModel(999_999, 't', bytesOf('y')), ['not_found']);
        await assertBackendError(backend.deleteModel(999_999), ['not_found']);
        await assertBackendError(
          backend.updateModel(999_999, 't', bytesOf('y'), { expectedRevision: 1 }),
          ['not_found'],
        );
        for (const bad of [0, -1, 1.5]) {
          assert.equal(await backend.getModel(bad), null);
          await assertBackendError(backend.updateModel(bad, 't', bytesOf('y')), [
            'not_found',
            'invalid',
          ]);
          await assertBackendError(backend.deleteModel(bad), ['not_found', 'invalid']);
        }
        assert.equal((await backend.getModels()).length, 1);
      });
    });

    it('deletes a model: tombstone revision +1, gone from reads, further writes not_found', {
      timeout,
    }, async () => {
      await withStore(async ({ backend }) => {
        const { meta: a } = await backend.createModel('t', bytesOf('a'));
        const { meta: b } = await backend.createModel('t', bytesOf('b'));
        await backend.updateModel(a.instanceId, 't2', bytesOf('a2'));
        const del = await backend.deleteModel(a.instanceId);
        assert.ok(acks.includes(del.ack));
        assert.deepEqual(
          { instanceId: del.instanceId, modelType: del.modelType, revision: del.revision },
          { instanceId: a.instanceId, modelType: 't2', revision: 3 },
        );
        assert.equal(await backend.getModel(a.instanceId), null);
        assert.deepEqual(
          (await backend.getModels()).map((m) => m.instanceId),
          [b.instanceId],
        );
        await assertBackendError(backend.deleteModel(a.instanceId), ['not_found']);
        await assertBackendError(backend.updateModel(a.instanceId, 't', bytesOf('z')), [
          'not_found',
        ]);
        assert.notEqual(await backend.getModel(b.instanceId), null);
      });
    });

    it('never reuses the id of a deleted model', { timeout }, async () => {
      await withStore(async ({ backend }) => {
        const ids: number[] = [];
        for (let i = 0; i < 3; i++)
          ids.push((await backend.createModel('t', bytesOf(`${i}`))).meta.instanceId);
        await backend.deleteModel(must(ids[2]));
        await backend.deleteModel(must(ids[1]));
        const next = (await backend.createModel('t', bytesOf('new'))).meta.instanceId;
        assert.ok(next > must(ids[2]), `new id ${next} must exceed every id ever used (${ids})`);
      });
    });

    it('createModelAt (optional): a fresh id above every id used; used ids conflict; allocation moves past it', {
      timeout,
    }, async (t) => {
      await withStore(async (h) => {
        const { backend } = h;
        if (backend.createModelAt === undefined) {
          t.skip('backend has no createModelAt');
          return;
        }
        const createAt = backend.createModelAt.bind(backend);
        const changes = h.collect();
        const { meta: a } = await backend.createModel('t', bytesOf('a'));
        const chosen = a.instanceId + 10;
        const c = await backend.createModelAt(chosen, 'chosen.T', bytesOf('chosen'));
        assert.ok(acks.includes(c.ack));
        assert.equal(c.meta.instanceId, chosen);
        assert.equal(c.meta.modelType, 'chosen.T');
        assert.equal(c.meta.revision, 1);
        assert.equal(c.meta.sha256, sha256(bytesOf('chosen')));
        const got = await backend.getModel(chosen);
        assert.ok(got !== null);
        assertBytes(got.instance, bytesOf('chosen'));
        assert.deepEqual(
          (await changes.first(2, changeTimeoutMs)).map((x) => [
            x.change,
            x.instanceId,
            x.revision,
          ]),
          [
            ['created', a.instanceId, 1],
            ['created', chosen, 1],
          ],
        );
        // An existing id, a deleted one: conflicts, nothing changes.
        await assertBackendError(backend.createModelAt(a.instanceId, 't', bytesOf('x')), [
          'revision_conflict',
        ]);
        await backend.deleteModel(chosen);
        await assertBackendError(backend.createModelAt(chosen, 't', bytesOf('x')), [
          'revision_conflict',
        ]);
        assert.equal(await backend.getModel(chosen), null);
        const next = (await backend.createModel('t', bytesOf('next'))).meta.instanceId;
        assert.ok(next > chosen, `allocated id ${next} must lie past the chosen ${chosen}`);
        // Racing creates at one fresh id: exactly one wins.
        const race = next + 5;
        const results = await Promise.allSettled(
          [0, 1, 2, 3].map((i) => createAt(race, 't', bytesOf(`r${i}`))),
        );
        const won = results.filter((r) => r.status === 'fulfilled');
        assert.equal(won.length, 1, 'exactly one create at the same id wins');
        for (const r of results) {
          if (r.status === 'rejected') assertErrorCode(r.reason, ['revision_conflict']);
        }
        await assertBackendError(backend.createModelAt(0, 't', bytesOf('x')), ['invalid']);
      });
    });

    it('compare-and-set: matching revision writes, stale revision conflicts and changes nothing', {
      timeout,
    }, async () => {
      await withStore(async ({ backend }) => {
        const { meta: c } = await backend.createModel('t', bytesOf('v1'));
        const u = await backend.updateModel(c.instanceId, 't', bytesOf('v2'), {
          expectedRevision: 1,
        });
        assert.equal(u.meta.revision, 2);
        await assertBackendError(
          backend.updateModel(c.instanceId, 't', bytesOf('stale'), { expectedRevision: 1 }),
          ['revision_conflict'],
        );
        await assertBackendError(
          backend.updateModel(c.instanceId, 't', bytesOf('future'), { expectedRevision: 3 }),
          ['revision_conflict'],
        );
        await assertBackendError(backend.deleteModel(c.instanceId, { expectedRevision: 1 }), [
          'revision_conflict',
        ]);
        const got = await backend.getModel(c.instanceId);
        assert.ok(got !== null);
        assert.equal(got.revision, 2);
        assertBytes(got.instance, bytesOf('v2'));
        const del = await backend.deleteModel(c.instanceId, { expectedRevision: 2 });
        assert.equal(del.revision, 3);
        assert.equal(await backend.getModel(c.instanceId), null);
      });
    });

    it('compare-and-set: of concurrent writers expecting the same revision exactly one wins', {
      timeout,
    }, async () => {
      await withStore(async ({ backend }) => {
        const { meta: c } = await backend.createModel('t', bytesOf('base'));
        const n = 8;
        const results = await Promise.allSettled(
          Array.from({ length: n }, (_, i) =>
            backend.updateModel(c.instanceId, 't', bytesOf(`w${i}`), { expectedRevision: 1 }),
          ),
        );
        const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
        assert.equal(won.length, 1, `exactly one winner, got ${won.length}`);
        for (const r of results) {
          if (r.status === 'rejected') assertErrorCode(r.reason, ['revision_conflict']);
        }
        const got = await backend.getModel(c.instanceId);
        assert.ok(got !== null);
        assert.equal(got.revision, 2);
        assertBytes(got.instance, bytesOf(`w${won[0]}`));
      });
    });

    it('streams every acknowledged change in order with origin local; failed writes emit nothing', {
      timeout,
    }, async () => {
      await withStore(async (h) => {
        const { backend } = h;
        const seen = h.collect();
        const c = await backend.createModel('t', bytesOf('1'));
        const c2 = await backend.createModel('u', bytesOf('x'));
        const u = await backend.updateModel(c.meta.instanceId, 't2', bytesOf('2'));
        await assertBackendError(
          backend.updateModel(c.meta.instanceId, 't', bytesOf('no'), { expectedRevision: 1 }),
          ['revision_conflict'],
        );
        await assertBackendError(backend.deleteModel(999_999), ['not_found']);
        const d = await backend.deleteModel(c.meta.instanceId);
        const changes = await seen.first(4, changeTimeoutMs);
        assert.deepEqual(changes.map(strip), [
          {
            change: 'created',
            instanceId: c.meta.instanceId,
            modelType: 't',
            revision: 1,
            origin: 'local',
            meta: c.meta,
          },
          {
            change: 'created',
            instanceId: c2.meta.instanceId,
            modelType: 'u',
            revision: 1,
            origin: 'local',
            meta: c2.meta,
          },
          {
            change: 'updated',
            instanceId: c.meta.instanceId,
            modelType: 't2',
            revision: 2,
            origin: 'local',
            meta: u.meta,
          },
          {
            change: 'deleted',
            instanceId: d.instanceId,
            modelType: 't2',
            revision: 3,
            origin: 'local',
          },
        ]);
        // Nothing else arrives for the failed writes: one more write is the very next event.
        const last = await backend.createModel('v', bytesOf('end'));
        const after = await seen.first(5, changeTimeoutMs);
        assert.equal(after[4]?.instanceId, last.meta.instanceId);
        assert.equal(after[4]?.change, 'created');
      });
    });

    it('concurrent creates get distinct ids; all are stored and streamed', {
      timeout,
    }, async () => {
      await withStore(async (h) => {
        const { backend } = h;
        const seen = h.collect();
        const payloads = Array.from({ length: concurrency }, (_, i) => randomBytes(64 + i));
        const results = await Promise.all(payloads.map((p, i) => backend.createModel(`c${i}`, p)));
        const ids = results.map((r) => r.meta.instanceId);
        assert.equal(new Set(ids).size, concurrency);
        for (const [i, r] of results.entries()) {
          assert.equal(r.meta.revision, 1);
          assert.equal(r.meta.modelType, `c${i}`);
          const got = await backend.getModel(r.meta.instanceId);
          assert.ok(got !== null);
          assertBytes(got.instance, must(payloads[i]));
        }
        const listed = await backend.getModels();
        assert.deepEqual(
          listed.map((m) => m.instanceId),
          [...ids].sort((a, b) => a - b),
        );
        const changes = await seen.first(concurrency, changeTimeoutMs);
        assert.deepEqual(new Set(changes.map((c) => c.instanceId)), new Set(ids));
        assert.ok(changes.every((c) => c.change === 'created' && c.origin === 'local'));
      });
    });

    it('concurrent updates of one model each get their own revision; the highest is stored', {
      timeout,
    }, async () => {
      await withStore(async (h) => {
        const { backend } = h;
        const { meta: c } = await backend.createModel('t', bytesOf('base'));
        const seen = h.collect();
        const n = Math.min(concurrency, 32);
        const results = await Promise.all(
          Array.from({ length: n }, (_, i) =>
            backend.updateModel(c.instanceId, 't', bytesOf(`u${i}`)),
          ),
        );
        const revisions = results.map((r) => r.meta.revision).sort((a, b) => a - b);
        assert.deepEqual(
          revisions,
          Array.from({ length: n }, (_, i) => i + 2),
        );
        const top = results.find((r) => r.meta.revision === n + 1);
        assert.ok(top !== undefined);
        const got = await backend.getModel(c.instanceId);
        assert.ok(got !== null);
        assert.deepEqual(metaOf(got), top.meta);
        const changes = await seen.first(n, changeTimeoutMs);
        assert.deepEqual(
          changes.map((ch) => ch.revision),
          Array.from({ length: n }, (_, i) => i + 2),
          'changes of one model arrive in revision order',
        );
      });
    });

    it('preserves bytes exactly: empty, every byte value, views, caller mutation, large', {
      timeout,
    }, async () => {
      await withStore(async ({ backend }) => {
        const empty = new Uint8Array(0);
        const all = Uint8Array.from({ length: 256 }, (_, i) => i);
        const big = new Uint8Array(1000).fill(7);
        const view = big.subarray(100, 110);
        view.set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        const mutable = Uint8Array.from([9, 9, 9]);
        const large = randomBytes(largeBytes);

        const rEmpty = await backend.createModel('empty', empty);
        assert.equal(rEmpty.meta.size, 0);
        assert.equal(rEmpty.meta.sha256, sha256(empty));
        const rAll = await backend.createModel('all', all);
        const rView = await backend.createModel('view', view);
        assert.equal(rView.meta.size, 10);
        const pending = backend.createModel('mutable', mutable);
        mutable.fill(0);
        const rMutable = await pending;
        const rLarge = await backend.createModel('large', large);
        assert.equal(rLarge.meta.size, largeBytes);
        assert.equal(rLarge.meta.sha256, sha256(large));
        const rUnicode = await backend.createModel('модель.ünï/ℂ🙂', bytesOf('u'));

        const expect: [number, Uint8Array][] = [
          [rEmpty.meta.instanceId, empty],
          [rAll.meta.instanceId, all],
          [rView.meta.instanceId, Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])],
          [rMutable.meta.instanceId, Uint8Array.from([9, 9, 9])],
          [rLarge.meta.instanceId, large],
        ];
        for (const [id, bytes] of expect) {
          const got = await backend.getModel(id);
          assert.ok(got !== null, `model ${id}`);
          assertBytes(got.instance, bytes);
          assert.equal(got.size, bytes.length);
          assert.equal(got.sha256, sha256(bytes));
        }
        assert.equal(
          (await backend.getModel(rUnicode.meta.instanceId))?.modelType,
          'модель.ünï/ℂ🙂',
        );
        // A returned instance is the caller's: changing it does not change the store.
        const got = await backend.getModel(rAll.meta.instanceId);
        assert.ok(got !== null);
        got.instance.fill(1);
        assertBytes(must(await backend.getModel(rAll.meta.instanceId)).instance, all);
        // Updating to empty and back.
        const u = await backend.updateModel(rAll.meta.instanceId, 'all', empty);
        assert.equal(u.meta.size, 0);
        assertBytes(must(await backend.getModel(rAll.meta.instanceId)).instance, empty);
      });
    });

    it("copies the caller's bytes by default (Buffers too); handOver stores the given bytes as they are", {
      timeout,
    }, async () => {
      await withStore(async ({ backend }) => {
        const original = randomBytes(4096);
        // Default: changing the caller's Buffer during or after the write changes nothing stored.
        const buf = Buffer.from(original);
        const pending = backend.createModel('copied', buf);
        buf.fill(1);
        const created = await pending;
        buf.fill(2);
        const id = created.meta.instanceId;
        assert.equal(created.meta.sha256, sha256(original));
        assertBytes(must(await backend.getModel(id)).instance, original);
        const next = randomBytes(4096);
        const ubuf = Buffer.from(next);
        const upending = backend.updateModel(id, 'copied', ubuf, { expectedRevision: 1 });
        ubuf.fill(3);
        const updated = await upending;
        ubuf.fill(4);
        assert.equal(updated.meta.sha256, sha256(next));
        assertBytes(must(await backend.getModel(id)).instance, next);
        if (backend.createModelAt !== undefined) {
          const abuf = Buffer.from(original);
          const at = backend.createModelAt(id + 5, 'copied.at', abuf);
          abuf.fill(5);
          assert.equal((await at).meta.sha256, sha256(original));
          abuf.fill(6);
          assertBytes(must(await backend.getModel(id + 5)).instance, original);
        }

        // handOver: the bytes given are stored (the caller leaves them alone), on every write.
        const given = randomBytes(8192);
        const h1 = await backend.createModel('handed', Buffer.from(given), { handOver: true });
        assert.equal(h1.meta.size, given.length);
        assert.equal(h1.meta.sha256, sha256(given));
        const hid = h1.meta.instanceId;
        // A view into a larger buffer is handed over as exactly its own bytes.
        const frame = Buffer.concat([Buffer.from('xx'), given, Buffer.from('yy')]);
        const view = frame.subarray(2, 2 + given.length);
        const h2 = await backend.updateModel(hid, 'handed', view, {
          expectedRevision: 1,
          handOver: true,
        });
        assert.equal(h2.meta.revision, 2);
        assert.equal(h2.meta.size, given.length);
        assert.equal(h2.meta.sha256, sha256(given));
        const got = must(await backend.getModel(hid));
        assertBytes(got.instance, given);
        // A returned instance is still the caller's, also of a model stored from a Buffer.
        got.instance.fill(0);
        assertBytes(must(await backend.getModel(hid)).instance, given);
        // A refused hand-over keeps nothing: the same buffer can go to the next write.
        const again = Buffer.from(given);
        await assert.rejects(
          backend.updateModel(hid + 1000, 'handed', again, { handOver: true }),
          (err) => {
            assertErrorCode(err, ['not_found']);
            return true;
          },
        );
        if (backend.createModelAt !== undefined) {
          const h3 = await backend.createModelAt(hid + 1000, 'handed.at', again, {
            handOver: true,
          });
          assert.equal(h3.meta.sha256, sha256(given));
          assertBytes(must(await backend.getModel(hid + 1000)).instance, given);
        }
      });
    });

    it(`content type: ${contentTypes ? 'kept per revision, reset by a write without one' : 'accepted and not reported (not kept)'}`, {
      timeout,
    }, async () => {
      await withStore(async ({ backend }) => {
        const ct = (m: { contentType?: string } | null | undefined) => m?.contentType;
        const bytes = randomBytes(100);
        const c = await backend.createModel('typed', bytes, { contentType: 'Application/ONNX' });
        const id = c.meta.instanceId;
        const expected = contentTypes ? 'application/onnx' : undefined;
        assert.equal(ct(c.meta), expected);
        assert.equal(ct(await backend.getModel(id)), expected);
        assert.equal(ct((await backend.getModels()).find((m) => m.instanceId === id)), expected);
        if (!contentTypes) {
          assert.equal(ct((await backend.getModels())[0]), undefined);
          return;
        }
        if (backend.getModelRange !== undefined) {
          const r = await backend.getModelRange(id, () => ({ start: 0, end: 1 }));
          assert.equal(ct(r?.meta), 'application/onnx');
        }
        // A write without a type: unknown again (not the previous revision's).
        const u = await backend.updateModel(id, 'typed', bytes, { expectedRevision: 1 });
        assert.equal(ct(u.meta), undefined);
        assert.equal(ct(await backend.getModel(id)), undefined);
        const u3 = await backend.updateModel(id, 'typed', bytes, {
          contentType: 'text/plain; charset="utf-8"',
        });
        assert.equal(ct(u3.meta), 'text/plain; charset="utf-8"');
        if (backend.createModelAt !== undefined) {
          const at = await backend.createModelAt(id + 50, 'typed', bytes, {
            contentType: 'image/png',
          });
          assert.equal(ct(at.meta), 'image/png');
          assert.equal(ct(await backend.getModel(id + 50)), 'image/png');
        }
        // Not a media type, or too long: refused, nothing stored.
        for (const bad of ['', 'onnx', 'a/b/c', 'text/plain; x', `a/${'b'.repeat(300)}`, 'a b/c']) {
          await assert.rejects(
            backend.updateModel(id, 'typed', bytes, { contentType: bad }),
            (err) => {
              assertErrorCode(err, ['invalid']);
              return true;
            },
            `content type ${JSON.stringify(bad)}`,
          );
        }
        assert.equal(must(await backend.getModel(id)).revision, 3);
        if (backend.getHistory !== undefined && backend.getRevision !== undefined) {
          const h = must(await backend.getHistory(id));
          assert.deepEqual(
            h.map((e) => [e.revision, e.contentType]),
            [
              [1, 'application/onnx'],
              [2, undefined],
              [3, 'text/plain; charset="utf-8"'],
            ],
          );
          assert.equal((await backend.getRevision(id, 1))?.contentType, 'application/onnx');
          assert.equal((await backend.getRevision(id, 2))?.contentType, undefined);
        }
      });
    });

    it('getModelRange (optional): the picked bytes exactly, with the metadata of the same revision', {
      timeout,
    }, async (t) => {
      await withStore(async ({ backend }) => {
        if (backend.getModelRange === undefined) {
          t.skip('backend has no getModelRange');
          return;
        }
        const range = backend.getModelRange.bind(backend);
        const bytes = randomBytes(300_001);
        const { meta } = await backend.createModel('ranged', bytes);
        const id = meta.instanceId;
        const spans: [number, number][] = [
          [0, 1],
          [0, bytes.length],
          [1, 2],
          [12_345, 200_000],
          [bytes.length - 1, bytes.length],
          [bytes.length - 4096, bytes.length],
          [7, 7],
        ];
        for (const [start, end] of spans) {
          let seen: ModelMeta | undefined;
          const r = must(
            await range(id, (m) => {
              seen = m;
              return { start, end };
            }),
          );
          assert.deepEqual(metaOf(r.meta), metaOf(meta));
          assert.deepEqual(seen, r.meta);
          assert.deepEqual(r.span, { start, end });
          assertBytes(r.bytes, bytes.subarray(start, end));
        }
        // No span picked: the metadata only.
        const none = must(await range(id, () => null));
        assert.equal(none.span, null);
        assert.equal(none.bytes.length, 0);
        assert.equal(none.meta.revision, 1);
        // After an update the range is of the new bytes; a missing or deleted model is null.
        const next = randomBytes(5000);
        await backend.updateModel(id, 'ranged', next);
        const r2 = must(await range(id, (m) => ({ start: 100, end: m.size })));
        assert.equal(r2.meta.revision, 2);
        assertBytes(r2.bytes, next.subarray(100));
        // Returned bytes are the caller's.
        r2.bytes.fill(0);
        assertBytes(
          must(await range(id, () => ({ start: 100, end: 200 }))).bytes,
          next.subarray(100, 200),
        );
        assert.equal(await range(id + 1000, () => ({ start: 0, end: 1 })), null);
        await backend.deleteModel(id);
        assert.equal(await range(id, () => ({ start: 0, end: 1 })), null);
      });
    });

    it('close: settles in-flight writes, rejects later ones with closed, completes the stream, is idempotent', {
      timeout,
    }, async () => {
      await withStore(async (h) => {
        const { backend } = h;
        let completed = false;
        const sub = backend.changes$.subscribe({ complete: () => (completed = true) });
        h.subscriptions.push(sub);
        const before = await backend.createModel('t', bytesOf('kept'));
        const inFlight = Array.from({ length: 8 }, (_, i) =>
          backend.createModel('t', bytesOf(`f${i}`)),
        );
        const closing = backend.close();
        const settled = await Promise.allSettled(inFlight);
        await closing;
        await backend.close();
        assert.equal(completed, true, 'changes$ completes on close');
        for (const s of settled) {
          if (s.status === 'rejected') assertErrorCode(s.reason, ['closed', 'unavailable']);
        }
        await assertBackendError(backend.createModel('t', bytesOf('late')), ['closed']);
        await assertBackendError(
          backend.updateModel(before.meta.instanceId, 't', bytesOf('late')),
          ['closed'],
        );
        await assertBackendError(backend.deleteModel(before.meta.instanceId), ['closed']);

        if (h.subject.reopen === undefined) return;
        const again = await h.reopen();
        const ids = (await again.getModels()).map((m) => m.instanceId);
        assert.ok(ids.includes(before.meta.instanceId));
        for (const [i, s] of settled.entries()) {
          if (s.status !== 'fulfilled') continue;
          const got = await again.getModel(s.value.meta.instanceId);
          assert.ok(got !== null, 'an acknowledged write survives close');
          assertBytes(got.instance, bytesOf(`f${i}`));
        }
      });
    });

    it('persists across reopen: models, revisions, deletions, and ids never reused', {
      timeout,
    }, async (t) => {
      await withStore(async (h) => {
        if (h.subject.reopen === undefined) {
          t.skip('backend has no reopen');
          return;
        }
        const b1 = h.backend;
        const a = await b1.createModel('t', bytesOf('a'));
        const b = await b1.createModel('t', bytesOf('b'));
        const c = await b1.createModel('t', bytesOf('c'));
        await b1.updateModel(a.meta.instanceId, 'a.T', bytesOf('a2'));
        await b1.updateModel(a.meta.instanceId, 'a.T', bytesOf('a3'));
        await b1.deleteModel(c.meta.instanceId);
        const before = await b1.getModels();

        const b2 = await h.reopen();
        await b2.whenReady();
        assert.deepEqual(await b2.getModels(), before);
        const got = await b2.getModel(a.meta.instanceId);
        assert.ok(got !== null);
        assert.equal(got.revision, 3);
        assertBytes(got.instance, bytesOf('a3'));
        assert.equal(await b2.getModel(c.meta.instanceId), null);
        const u = await b2.updateModel(b.meta.instanceId, 't', bytesOf('b2'), {
          expectedRevision: 1,
        });
        assert.equal(u.meta.revision, 2);
        const d = await b2.createModel('t', bytesOf('d'));
        assert.ok(
          d.meta.instanceId > c.meta.instanceId,
          `id ${d.meta.instanceId} reused after reopen (highest ever ${c.meta.instanceId})`,
        );

        const b3 = await h.reopen();
        assert.deepEqual(
          (await b3.getModels()).map((m) => [m.instanceId, m.revision]),
          [
            [a.meta.instanceId, 3],
            [b.meta.instanceId, 2],
            [d.meta.instanceId, 1],
          ],
        );
      });
    });

    it('matches a reference model over random operation sequences', {
      timeout: 4 * timeout,
    }, async (t) => {
      if (propertyRuns <= 0) {
        t.skip('propertyRuns is 0');
        return;
      }
      await fc.assert(
        fc.asyncProperty(fc.array(operationArb, { minLength: 1, maxLength: 25 }), async (ops) => {
          await withStore(async (h) => {
            await runModelCheck(h, ops);
          });
        }),
        { numRuns: propertyRuns },
      );
    });
  });
}

// ---------------------------------------------------------------------------------------------

/** Tracks the current backend of a subject (it changes on reopen) and the test's subscriptions. */
class Harness {
  backend: Backend;
  readonly subscriptions: Subscription[] = [];
  constructor(readonly subject: ContractSubject) {
    this.backend = subject.backend;
  }

  async reopen(): Promise<Backend> {
    const reopen = this.subject.reopen;
    if (reopen === undefined) throw new Error('backend has no reopen');
    await this.backend.close();
    this.backend = await reopen();
    return this.backend;
  }

  /** Starts collecting changes; `first(n)` waits until n changes arrived (or fails after a bound). */
  collect(): { first(n: number, timeoutMs: number): Promise<ModelChange[]> } {
    const seen: ModelChange[] = [];
    let wake: (() => void) | undefined;
    const sub = this.backend.changes$.subscribe((c) => {
      seen.push(c);
      wake?.();
    });
    this.subscriptions.push(sub);
    return {
      first: async (n, timeoutMs) => {
        if (seen.length >= n) return seen.slice(0, n);
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`expected ${n} changes, got ${seen.length}`)),
            timeoutMs,
          );
          wake = () => {
            if (seen.length >= n) {
              clearTimeout(timer);
              resolve();
            }
          };
        });
        return seen.slice(0, n);
      },
    };
  }
}

type Operation =
  | { kind: 'create'; type: string; bytes: Uint8Array }
  | {
      kind: 'update';
      pick: number;
      type: string;
      bytes: Uint8Array;
      cas: 'none' | 'right' | 'wrong';
    }
  | { kind: 'delete'; pick: number; cas: 'none' | 'right' | 'wrong' }
  | { kind: 'reopen' };

const typeArb = fc.constantFrom('a.Model', 'b.Model', 'plugins.sklearn.SVC', '');
const bytesArb = fc.uint8Array({ maxLength: 48 });
const casArb = fc.constantFrom('none' as const, 'right' as const, 'wrong' as const);
const operationArb: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('create' as const), type: typeArb, bytes: bytesArb }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('update' as const),
      pick: fc.nat(20),
      type: typeArb,
      bytes: bytesArb,
      cas: casArb,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('delete' as const), pick: fc.nat(20), cas: casArb }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reopen' as const) }) },
);

interface RefModel {
  type: string;
  bytes: Uint8Array;
  revision: number;
}

/** Applies `ops` to the backend and to a reference map; both must agree after every step. */
async function runModelCheck(h: Harness, ops: Operation[]): Promise<void> {
  const ref = new Map<number, RefModel>();
  const everUsed: number[] = [];
  const pickId = (pick: number): number => {
    // Mostly existing ids, sometimes a deleted or never-used one.
    const candidates = [...everUsed, 1_000_000];
    return must(candidates[pick % candidates.length]);
  };
  for (const op of ops) {
    const backend = h.backend;
    if (op.kind === 'reopen') {
      if (h.subject.reopen !== undefined) await h.reopen();
    } else if (op.kind === 'create') {
      const r = await backend.createModel(op.type, op.bytes);
      assert.ok(
        everUsed.every((id) => id < r.meta.instanceId),
        'fresh id above all used ids',
      );
      everUsed.push(r.meta.instanceId);
      ref.set(r.meta.instanceId, { type: op.type, bytes: op.bytes.slice(), revision: 1 });
      assert.equal(r.meta.revision, 1);
    } else {
      const id = pickId(op.pick);
      const cur = ref.get(id);
      const expectedRevision =
        op.cas === 'none' ? undefined : (cur?.revision ?? 1) + (op.cas === 'wrong' ? 1 : 0);
      const opts = expectedRevision === undefined ? {} : { expectedRevision };
      const attempt =
        op.kind === 'update'
          ? backend.updateModel(id, op.type, op.bytes, opts)
          : backend.deleteModel(id, opts);
      if (cur === undefined) {
        await assertBackendError(attempt, ['not_found']);
      } else if (op.cas === 'wrong') {
        await assertBackendError(attempt, ['revision_conflict']);
      } else {
        const res = await attempt;
        if (op.kind === 'update') {
          cur.revision += 1;
          cur.type = op.type;
          cur.bytes = op.bytes.slice();
          assert.equal((res as { meta: ModelMeta }).meta.revision, cur.revision);
        } else {
          assert.equal((res as { revision: number }).revision, cur.revision + 1);
          ref.delete(id);
        }
      }
    }
    await assertMatches(h.backend, ref);
  }
}

async function assertMatches(backend: Backend, ref: Map<number, RefModel>): Promise<void> {
  const listed = await backend.getModels();
  const ids = [...ref.keys()].sort((a, b) => a - b);
  assert.deepEqual(
    listed.map((m) => m.instanceId),
    ids,
  );
  for (const meta of listed) {
    const r = must(ref.get(meta.instanceId));
    assert.equal(meta.modelType, r.type);
    assert.equal(meta.revision, r.revision);
    assert.equal(meta.size, r.bytes.length);
    assert.equal(meta.sha256, sha256(r.bytes));
    const got = await backend.getModel(meta.instanceId);
    assert.ok(got !== null);
    assertBytes(got.instance, r.bytes);
  }
}

// ---------------------------------------------------------------------------------------------

/** The value, failing the test when it is missing. */
function must<T>(v: T | null | undefined): T {
  assert.ok(v !== null && v !== undefined, 'expected a value');
  return v;
}

function bytesOf(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function metaOf(m: ModelMeta & { instance?: unknown }): ModelMeta {
  return {
    instanceId: m.instanceId,
    modelType: m.modelType,
    revision: m.revision,
    size: m.size,
    sha256: m.sha256,
    updated: m.updated,
  };
}

function strip(c: ModelChange): ModelChange {
  const out: ModelChange = {
    change: c.change,
    instanceId: c.instanceId,
    modelType: c.modelType,
    revision: c.revision,
    origin: c.origin,
  };
  if (c.meta !== undefined) out.meta = metaOf(c.meta);
  return out;
}

function assertIsoTime(s: string): void {
  assert.match(s, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, `not an ISO-8601 UTC time: ${s}`);
  assert.ok(!Number.isNaN(Date.parse(s)));
}

/** Compares bytes exactly (and gives a short message instead of dumping megabytes). */
function assertBytes(actual: Uint8Array, expected: Uint8Array): void {
  assert.ok(actual instanceof Uint8Array, 'instance is a Uint8Array');
  assert.equal(actual.length, expected.length, 'instance length');
  if (Buffer.compare(Buffer.from(actual), Buffer.from(expected)) !== 0) {
    assert.fail(`instance bytes differ (sha256 ${sha256(actual)} != ${sha256(expected)})`);
  }
}

function assertErrorCode(err: unknown, codes: readonly BackendErrorCode[]): void {
  assert.ok(err instanceof BackendError, `expected a BackendError, got ${String(err)}`);
  assert.ok(
    codes.includes(err.code),
    `expected code ${codes.join('|')}, got ${err.code}: ${err.message}`,
  );
  assert.ok(err.message.length > 0);
}

async function assertBackendError(
  p: Promise<unknown>,
  codes: readonly BackendErrorCode[],
): Promise<void> {
  try {
    await p;
  } catch (err) {
    assertErrorCode(err, codes);
    return;
  }
  assert.fail(`expected a BackendError (${codes.join('|')}), but the call succeeded`);
}

/** Every page of `list` walked with `after` = the last id of the previous page. */
async function collectPages(
  list: NonNullable<Backend['listModels']>,
  limit: number,
): Promise<ModelMeta[][]> {
  const pages: ModelMeta[][] = [];
  let after = 0;
  for (;;) {
    const page = await list({ after, limit });
    if (page.length === 0) return pages;
    pages.push(page);
    after = (page.at(-1) as ModelMeta).instanceId;
  }
}
