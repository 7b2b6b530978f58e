/**
 * The sqlite backend's file behaviour on real files: WAL while open and exclusive lock, parent
 * folders, a second process (and a second backend in this process) refused, group commit observed
 * through metrics, a failing statement failing only its own write, crash durability (a child
 * process is SIGKILLed after acknowledgements), limits, bad input and close draining the queue.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { BackendError, type ModelChange } from '../../src/backend/types.js';
import { create, type SqliteBackend } from '../../src/backends/sqlite.js';
import { MetricsRegistry } from '../../src/common/metrics.js';
import { blobIoExtension } from '../../src/common/sqlite-blob-io.js';
import { payload } from './fixtures/payload.js';
import { tempDir, testContext } from './support/context.js';

const here = dirname(fileURLToPath(import.meta.url));
const childScript = join(here, 'fixtures', 'sqlite-child.js');
const buf = (s: string) => Buffer.from(s, 'utf8');

function open(
  path: string,
  extra: Record<string, unknown> = {},
  metrics = new MetricsRegistry(),
): Promise<SqliteBackend> {
  return create(
    { module: 'aimm-store/backends/sqlite', path, busy_timeout_ms: 100, ...extra },
    testContext(metrics),
  );
}

async function withFile(body: (path: string, dir: string) => Promise<void>): Promise<void> {
  const { dir, remove } = tempDir();
  try {
    await body(join(dir, 'models.db'), dir);
  } finally {
    remove();
  }
}

/** Starts the child fixture; collects its stdout lines. */
function child(args: string[]): {
  proc: ChildProcess;
  lines: string[];
  waitLines(n: number): Promise<void>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
} {
  const proc = spawn(process.execPath, [childScript, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let rest = '';
  let stderr = '';
  let waiter: { n: number; resolve: () => void } | undefined;
  proc.stdout?.setEncoding('utf8');
  proc.stdout?.on('data', (chunk: string) => {
    rest += chunk;
    const parts = rest.split('\n');
    rest = parts.pop() ?? '';
    lines.push(...parts);
    if (waiter !== undefined && lines.length >= waiter.n) waiter.resolve();
  });
  proc.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('close', (code, signal) => resolve({ code, signal })),
  );
  return {
    proc,
    lines,
    exit,
    waitLines: (n) =>
      new Promise<void>((resolve, reject) => {
        if (lines.length >= n) return resolve();
        waiter = { n, resolve };
        void exit.then(() => {
          if (lines.length < n)
            reject(new Error(`child exited after ${lines.length} lines: ${stderr}`));
        });
      }),
  };
}

function counter(metrics: MetricsRegistry, name: string, labels = {}): number {
  return metrics.counter(name, '').get(labels);
}

describe('sqlite backend: the file', () => {
  it('runs in WAL with an exclusive lock and synchronous=full by default; other levels apply', async () => {
    await withFile(async (path) => {
      const b = await open(path);
      await b.createModel('t', buf('x'));
      assert.deepEqual(b.settings(), {
        journalMode: 'wal',
        lockingMode: 'exclusive',
        synchronous: 'full',
        pageSize: 4096,
        blobIo: blobIoExtension() !== undefined,
      });
      assert.ok(existsSync(`${path}-wal`), 'WAL file exists while open');
      await b.close();
      assert.throws(() => b.settings(), { code: 'closed' });
      const n = await open(path, { synchronous: 'normal' });
      assert.equal(n.settings().synchronous, 'normal');
      assert.equal(n.settings().journalMode, 'wal');
      await n.close();
    });
  });

  it('creates missing parent folders', async () => {
    await withFile(async (_path, dir) => {
      const deep = join(dir, 'a', 'b', 'c', 'models.db');
      const b = await open(deep);
      await b.createModel('t', buf('x'));
      await b.close();
      assert.ok(existsSync(deep));
    });
  });

  it('a second process is refused with a clear error naming the file, and can open once we close', async () => {
    await withFile(async (path) => {
      const b = await open(path);
      await b.createModel('t', buf('mine'));
      const refused = child(['open', path, '100']);
      const r = await refused.exit;
      assert.equal(r.code, 3);
      const msg = JSON.parse(refused.lines[0] ?? '{}') as {
        ok: boolean;
        code: string;
        message: string;
      };
      assert.equal(msg.ok, false);
      assert.equal(msg.code, 'unavailable');
      assert.ok(msg.message.includes(path), msg.message);
      assert.match(msg.message, /in use by another aimm-store/);
      // Still ours and intact.
      assert.equal((await b.createModel('t', buf('still mine'))).meta.instanceId, 2);
      await b.close();
      const later = child(['open', path, '100']);
      assert.equal((await later.exit).code, 0);
      assert.deepEqual(JSON.parse(later.lines[0] ?? '{}'), { ok: true });
    });
  });

  it('while another process holds the file, opening here is refused; after it exits we open', async () => {
    await withFile(async (path) => {
      const holder = child(['hold', path]);
      await holder.waitLines(1);
      assert.deepEqual(JSON.parse(holder.lines[0] ?? '{}'), { ok: true });
      await assert.rejects(open(path), (err: unknown) => {
        assert.ok(err instanceof BackendError);
        assert.equal(err.code, 'unavailable');
        assert.ok(err.message.includes(path));
        return true;
      });
      holder.proc.stdin?.end();
      assert.equal((await holder.exit).code, 0);
      const b = await open(path);
      assert.deepEqual(await b.getModels(), []);
      await b.close();
    });
  });

  it('a second backend on the same file in this process is refused; the first keeps working', async () => {
    await withFile(async (path) => {
      const first = await open(path);
      await assert.rejects(open(path), { code: 'unavailable' });
      const r = await first.createModel('t', buf('ok'));
      assert.equal(r.meta.revision, 1);
      await first.close();
      await (await open(path)).close();
    });
  });

  it('group commit: writes issued together share one transaction, bounded by max_writes and max_bytes', async () => {
    await withFile(async (path) => {
      const metrics = new MetricsRegistry();
      const b = await open(path, {}, metrics);
      await Promise.all(Array.from({ length: 50 }, (_, i) => b.createModel('t', buf(`m${i}`))));
      assert.equal(counter(metrics, 'sqlite_commits_total'), 1);
      assert.equal(counter(metrics, 'sqlite_batched_writes_total'), 50);
      assert.equal(counter(metrics, 'sqlite_batches_total', { size: '17-64' }), 1);
      assert.equal(metrics.gauge('sqlite_batch_size_max', '').get(), 50);
      // One at a time: one transaction each.
      for (let i = 0; i < 3; i++) await b.createModel('t', buf(`s${i}`));
      assert.equal(counter(metrics, 'sqlite_commits_total'), 4);
      assert.equal(counter(metrics, 'sqlite_batches_total', { size: '1' }), 3);
      assert.equal(counter(metrics, 'sqlite_writes_total', { op: 'create' }), 53);
      await b.close();

      const m8 = new MetricsRegistry();
      const b8 = await open(path, { group_commit: { max_writes: 8 } }, m8);
      await Promise.all(Array.from({ length: 50 }, (_, i) => b8.createModel('t', buf(`n${i}`))));
      assert.equal(counter(m8, 'sqlite_commits_total'), 7);
      await b8.close();

      const mb = new MetricsRegistry();
      const bb = await open(path, { group_commit: { max_bytes: 2500 } }, mb);
      await Promise.all(Array.from({ length: 10 }, () => bb.createModel('t', Buffer.alloc(1000))));
      assert.equal(counter(mb, 'sqlite_commits_total'), 5);
      // A single write above max_bytes still goes through, alone.
      await bb.createModel('big', Buffer.alloc(10_000));
      assert.equal(counter(mb, 'sqlite_commits_total'), 6);
      assert.equal((await bb.getModels()).length, 50 + 3 + 50 + 11);
      await bb.close();

      const m1 = new MetricsRegistry();
      const b1 = await open(path, { group_commit: { max_writes: 1 } }, m1);
      await Promise.all(Array.from({ length: 5 }, (_, i) => b1.createModel('t', buf(`o${i}`))));
      assert.equal(counter(m1, 'sqlite_commits_total'), 5);
      await b1.close();
    });
  });

  it('the group-commit queue is bounded by max_queued_writes / max_queued_bytes: writers wait, none refused', async () => {
    await withFile(async (path) => {
      const metrics = new MetricsRegistry();
      const b = await open(
        path,
        { group_commit: { max_writes: 4 }, max_queued_writes: 10, max_queued_bytes: 1_000_000 },
        metrics,
      );
      const gauge = (name: string) => {
        const g = metrics.gauge(name, '');
        g.refresh();
        return g.get();
      };
      const writes = Array.from({ length: 100 }, (_, i) => b.createModel('t', buf(`q${i}`)));
      // Synchronously after the calls: ten joined the queue, the rest wait for room.
      assert.equal(gauge('sqlite_queue_depth'), 10);
      assert.equal(gauge('sqlite_queue_waiting_writers'), 90);
      let most = 0;
      let done = false;
      const all = Promise.all(writes).finally(() => {
        done = true;
      });
      while (!done) {
        most = Math.max(most, gauge('sqlite_queue_depth'));
        await new Promise((r) => setImmediate(r));
      }
      const metas = await all;
      assert.ok(most <= 10, `at most 10 queued (saw ${most})`);
      assert.equal(gauge('sqlite_queue_waiting_writers'), 0);
      assert.deepEqual(
        metas.map((m) => m.meta.instanceId),
        [...metas.map((m) => m.meta.instanceId)].sort((x, y) => x - y),
        'ids in the order of the calls',
      );
      assert.equal(counter(metrics, 'sqlite_writes_total', { op: 'create' }), 100);
      assert.equal(counter(metrics, 'sqlite_commits_total'), 25, 'batches of max_writes 4');

      // Bytes: 2 KiB writes against 5 KiB: two queued at a time.
      const big = Array.from({ length: 6 }, () => b.createModel('t', Buffer.alloc(2048)));
      assert.equal(gauge('sqlite_queue_depth'), 6, 'max_queued_bytes default still 1 MB here');
      await Promise.all(big);
      await b.close();
      const mb = new MetricsRegistry();
      const bb = await open(path, { max_queued_bytes: 5 * 1024 }, mb);
      const bigs = Array.from({ length: 6 }, () => bb.createModel('t', Buffer.alloc(2048)));
      const depth = mb.gauge('sqlite_queue_depth', '');
      const bytes = mb.gauge('sqlite_queue_bytes', '');
      depth.refresh();
      bytes.refresh();
      assert.equal(depth.get(), 2);
      assert.equal(bytes.get(), 4096);
      await Promise.all(bigs);
      // A single write over max_queued_bytes still goes, alone.
      await bb.createModel('t', Buffer.alloc(10 * 1024));
      assert.equal((await bb.getModels()).length, 100 + 6 + 6 + 1);
      await bb.close();
    });
  });

  it('in one batch, a failing statement fails only its own write; neighbours commit', async () => {
    await withFile(async (path) => {
      let b = await open(path);
      await b.createModel('t', buf('base'));
      await b.close();
      // A real SQLite failure inside the transaction: a trigger that aborts one kind of insert.
      const db = new Database(path);
      db.exec(`CREATE TRIGGER poison BEFORE INSERT ON models WHEN NEW.type = 'poison'
               BEGIN SELECT RAISE(ABORT, 'poisoned model'); END`);
      db.close();

      const metrics = new MetricsRegistry();
      b = await open(path, {}, metrics);
      const seen: ModelChange[] = [];
      b.changes$.subscribe((c) => seen.push(c));
      const results = await Promise.allSettled([
        b.createModel('ok', buf('one')),
        b.createModel('poison', buf('bad')),
        b.updateModel(1, 't', buf('stale'), { expectedRevision: 7 }),
        b.createModel('ok', buf('two')),
        b.deleteModel(999),
        b.updateModel(1, 't', buf('fresh'), { expectedRevision: 1 }),
      ]);
      assert.deepEqual(
        results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as BackendError).code)),
        ['ok', 'invalid', 'revision_conflict', 'ok', 'not_found', 'ok'],
      );
      const poison = results[1] as PromiseRejectedResult;
      assert.match((poison.reason as Error).message, /poisoned model/);
      assert.equal(counter(metrics, 'sqlite_commits_total'), 1, 'all in one transaction');
      assert.equal(counter(metrics, 'sqlite_write_errors_total', { code: 'invalid' }), 1);
      assert.equal(counter(metrics, 'sqlite_write_errors_total', { code: 'revision_conflict' }), 1);
      assert.deepEqual(
        (await b.getModels()).map((m) => [m.modelType, m.revision]),
        [
          ['t', 2],
          ['ok', 1],
          ['ok', 1],
        ],
      );
      assert.deepEqual(
        seen.map((c) => [c.change, c.modelType, c.revision]),
        [
          ['created', 'ok', 1],
          ['created', 'ok', 1],
          ['updated', 't', 2],
        ],
      );
      await b.close();
    });
  });

  it('crash durability: every write acknowledged before SIGKILL is in the file after reopen', async () => {
    await withFile(async (path) => {
      const writer = child(['write', path, '8']);
      await writer.waitLines(400);
      writer.proc.kill('SIGKILL');
      const { signal } = await writer.exit;
      assert.equal(signal, 'SIGKILL');
      const acked = new Map<number, { revision: number; seq: number }>();
      for (const line of writer.lines) {
        const f = line.split(' ');
        if (f[0] === 'c') acked.set(Number(f[1]), { revision: 1, seq: Number(f[2]) });
        else if (f[0] === 'u')
          acked.set(Number(f[1]), { revision: Number(f[2]), seq: Number(f[3]) });
      }
      assert.ok(acked.size >= 100, `acks seen: ${writer.lines.length}`);

      const b = await open(path);
      try {
        let exact = 0;
        for (const [id, a] of acked) {
          const got = await b.getModel(id);
          assert.ok(got !== null, `acknowledged model ${id} lost`);
          assert.ok(
            got.revision >= a.revision,
            `model ${id} at ${got.revision} < acked ${a.revision}`,
          );
          if (got.revision === a.revision) {
            assert.ok(Buffer.from(got.instance).equals(payload(a.seq)), `model ${id} bytes`);
            exact++;
          }
        }
        assert.ok(exact > 0);
        // The file is consistent: every stored model matches its metadata.
        for (const meta of await b.getModels()) {
          const got = await b.getModel(meta.instanceId);
          assert.equal(got?.size, got?.instance.length);
        }
      } finally {
        await b.close();
      }
    });
  });

  it('close commits queued writes before closing; later writes and reads are refused', async () => {
    await withFile(async (path) => {
      const b = await open(path);
      const pending = Array.from({ length: 20 }, (_, i) => b.createModel('t', buf(`q${i}`)));
      await b.close();
      const done = await Promise.all(pending);
      assert.equal(done.length, 20);
      await assert.rejects(b.createModel('t', buf('late')), { code: 'closed' });
      await assert.rejects(b.getModels(), { code: 'closed' });
      assert.equal(b.status().ready, false);
      const again = await open(path);
      assert.equal((await again.getModels()).length, 20);
      await again.close();
    });
  });

  it('the metadata a write returns is what a read returns, also for strings SQLite changes', async () => {
    await withFile(async (path) => {
      const b = await open(path);
      // A lone surrogate comes back as U+FFFD: the write must report what was stored.
      const types = ['t', 'é模型😀', 'a\ud800b', '\udfff', 'nul\u0000inside'];
      const contentTypes = [undefined, 'text/plain; charset=utf-8'];
      const ids = new Map<string, number>();
      for (const modelType of types) {
        for (const contentType of contentTypes) {
          const opts = contentType === undefined ? {} : { contentType };
          const created = await b.createModel(modelType, buf(modelType), opts);
          const read = await b.getModel(created.meta.instanceId);
          assert.ok(read !== null);
          const { instance: _, ...readMeta } = read;
          assert.deepEqual(created.meta, readMeta, JSON.stringify({ modelType, contentType }));
          const updated = await b.updateModel(created.meta.instanceId, modelType, buf('x'), opts);
          const again = await b.getModel(created.meta.instanceId);
          assert.ok(again !== null);
          const { instance: __, ...againMeta } = again;
          assert.deepEqual(updated.meta, againMeta);
          ids.set(modelType, created.meta.instanceId);
          assert.equal(updated.meta.revision, 2);
        }
      }
      // The case is real: SQLite gave back other text than the write gave it.
      const stored = (await b.getModel(ids.get('a\ud800b') ?? 0))?.modelType;
      assert.ok(stored !== undefined && stored !== 'a\ud800b' && stored.includes('\ufffd'), stored);
      await b.close();
    });
  });

  it('refuses bad input and oversized instances with clear errors, counting them', async () => {
    await withFile(async (path) => {
      const metrics = new MetricsRegistry();
      const b = await open(path, { max_instance_bytes: 10 }, metrics);
      try {
        await assert.rejects(b.createModel('t', Buffer.alloc(11)), {
          code: 'too_large',
          message:
            "create: instance of 11 bytes exceeds the sqlite backend's max_instance_bytes (10)",
        });
        assert.equal((await b.createModel('t', Buffer.alloc(10))).meta.size, 10);
        await assert.rejects(b.updateModel(1, 't', Buffer.alloc(11)), { code: 'too_large' });
        const bad = b as unknown as {
          createModel(t: unknown, i: unknown): Promise<unknown>;
          updateModel(id: unknown, t: unknown, i: unknown, o?: unknown): Promise<unknown>;
        };
        await assert.rejects(bad.createModel(42, buf('x')), { code: 'invalid' });
        await assert.rejects(bad.createModel('t', 'not bytes'), { code: 'invalid' });
        await assert.rejects(bad.updateModel('1', 't', buf('x')), { code: 'invalid' });
        await assert.rejects(bad.updateModel(1, 't', buf('x'), { expectedRevision: -1 }), {
          code: 'invalid',
        });
        assert.equal(await b.getModel(Number.NaN), null);
        assert.equal(counter(metrics, 'sqlite_write_errors_total', { code: 'too_large' }), 2);
        assert.equal(counter(metrics, 'sqlite_write_errors_total', { code: 'invalid' }), 4);
        assert.equal((await b.getModel(1))?.revision, 1, 'nothing changed');
        const text = metrics.render();
        assert.match(text, /^aimm_store_sqlite_writes_total\{op="create"\} 1$/m);
        assert.match(text, /^aimm_store_sqlite_reads_total\{op="get"\} 2$/m);
        assert.match(text, /^aimm_store_sqlite_models 1$/m);
      } finally {
        await b.close();
      }
    });
  });

  it('a bad configuration is refused by create with the config path and rule', async () => {
    await assert.rejects(
      create({ module: 'aimm-store/backends/sqlite', path: '' }, testContext()),
      (err: unknown) => {
        assert.ok(err instanceof BackendError);
        assert.equal(err.code, 'invalid');
        assert.match(err.message, /\$\.backend\.path: .* \(rule: minLength\)/);
        return true;
      },
    );
    await assert.rejects(create({ module: 'aimm-store/backends/sqlite' }, testContext()), {
      code: 'invalid',
      message: /\$\.backend\.path: is required \(rule: required\)/,
    });
  });
});
