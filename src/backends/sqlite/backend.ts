/**
 * The sqlite backend: input checks, group commit through a {@link WriteQueue} over the
 * {@link SqliteStore}, the change stream (every acknowledged write, origin `local`: while we run the
 * file is locked to us, so there is no other writer to report), metrics and close.
 */
import { Subject } from 'rxjs';
import { parseContentType } from '../../backend/content-type.js';
import { listWindow } from '../../backend/list-pages.js';
import { sha256Of } from '../../backend/sha256.js';
import {
  type Backend,
  type BackendContext,
  BackendError,
  type BackendStatus,
  type ByteSpan,
  type CreateOptions,
  type DeleteResult,
  type HistoryOptions,
  type ListOptions,
  type Model,
  type ModelChange,
  type ModelMeta,
  type ModelRange,
  type ModelRevision,
  type WriteOptions,
  type WriteResult,
} from '../../backend/types.js';
import { type Counter, type CounterSeries, type Gauge, seriesBy } from '../../common/metrics.js';
import type { SqliteOptions } from './conf.js';
import { SqliteStore, type WriteOp, type WriteOutcome } from './store.js';
import { type Outcome, WriteQueue } from './write-queue.js';

interface Metrics {
  writes: Counter;
  writeErrors: Counter;
  reads: Counter;
  commits: Counter;
  batchedWrites: Counter;
  batches: Counter;
  batchMax: Gauge;
  queueDepth: Gauge;
  queueBytes: Gauge;
  queueWaiting: Gauge;
  models: Gauge;
}

export class SqliteBackend implements Backend {
  private readonly subject = new Subject<ModelChange>();
  readonly changes$ = this.subject.asObservable();
  private readonly queue: WriteQueue<WriteOp, WriteOutcome>;
  private readonly metrics: Metrics;
  private readonly writeCount: (op: 'create' | 'update' | 'delete') => CounterSeries;
  private closing: Promise<void> | undefined;
  private modelCount: number;
  private largestBatch = 0;
  private lastPrune = 0;

  private constructor(
    private readonly store: SqliteStore,
    private readonly options: SqliteOptions,
    private readonly context: BackendContext,
    models: number,
  ) {
    this.modelCount = models;
    this.metrics = registerMetrics(context);
    this.writeCount = seriesBy(this.metrics.writes, (op) => ({ op }));
    this.metrics.queueDepth.collect(() => this.queue.length);
    this.metrics.queueBytes.collect(() => this.queue.queuedBytes);
    this.metrics.queueWaiting.collect(() => this.queue.waiting);
    this.metrics.models.collect(() => this.modelCount);
    this.queue = new WriteQueue<WriteOp, WriteOutcome>({
      maxWrites: options.groupCommit.maxWrites,
      maxBytes: options.groupCommit.maxBytes,
      maxQueuedWrites: options.maxQueuedWrites,
      maxQueuedBytes: options.maxQueuedBytes,
      sizeOf: (op) => (op.kind === 'delete' ? 0 : op.instance.length),
      execute: (ops) => this.executeBatch(ops),
    });
    this.pruneByAge();
  }

  /** Opens the file (see {@link SqliteStore.open}); the backend is ready when this resolves. */
  static async open(options: SqliteOptions, context: BackendContext): Promise<SqliteBackend> {
    const { store, report } = SqliteStore.open(options);
    let backend: SqliteBackend;
    try {
      backend = new SqliteBackend(store, options, context, report.models);
    } catch (err) {
      store.close();
      throw err;
    }
    context.logger.info(
      {
        path: options.path,
        models: report.models,
        adopted: report.adopted,
        repaired: report.repaired,
        hashed: report.hashed,
        synchronous: options.synchronous,
        blobIo: report.blobIo.on,
      },
      'sqlite backend opened',
    );
    if (!report.blobIo.on && options.blobIo !== 'off') {
      context.logger.warn(
        { path: options.path, why: report.blobIo.why },
        'large models are stored without blob handles (about twice the memory per upload)',
      );
    }
    if (report.repaired > 0) {
      context.logger.warn(
        { path: options.path, repaired: report.repaired },
        'models were changed while the revision triggers were missing; their revisions were bumped',
      );
    }
    return backend;
  }

  /** The SQLite file this backend owns. */
  get path(): string {
    return this.options.path;
  }

  /** The file's SQLite settings in effect (journal, locking mode, synchronous level, page size). */
  settings(): ReturnType<SqliteStore['settings']> {
    this.checkReadable();
    return this.store.settings();
  }

  async getModels(): Promise<ModelMeta[]> {
    this.checkReadable();
    this.metrics.reads.inc({ op: 'list' });
    return this.store.list();
  }

  async listModels(options: ListOptions = {}): Promise<ModelMeta[]> {
    this.checkReadable();
    this.metrics.reads.inc({ op: 'list' });
    const { after, limit } = listWindow(options);
    return this.store.listPage(after, limit);
  }

  async getModel(instanceId: number): Promise<Model | null> {
    this.checkReadable();
    this.metrics.reads.inc({ op: 'get' });
    if (!isId(instanceId)) return null;
    return this.store.get(instanceId);
  }

  async getModelRange(
    instanceId: number,
    pick: (meta: ModelMeta) => ByteSpan | null,
  ): Promise<ModelRange | null> {
    this.checkReadable();
    this.metrics.reads.inc({ op: 'range' });
    if (!isId(instanceId)) return null;
    return this.store.range(instanceId, pick);
  }

  async createModel(
    modelType: string,
    instance: Uint8Array,
    options: CreateOptions = {},
  ): Promise<WriteResult> {
    this.checkWritable('create');
    const bytes = keep(this.checkInstance(modelType, instance, 'create'), options);
    const contentType = this.checkContentType(options, 'create');
    const outcome = await this.write('create', {
      kind: 'create',
      modelType,
      instance: bytes,
      sha256: sha256Of(bytes, options.sha256),
      contentType,
    });
    return { meta: (outcome as { meta: ModelMeta }).meta, ack: 'committed' };
  }

  /** A new model at a chosen id (`revision_conflict` when the id holds or ever held a model). */
  async createModelAt(
    instanceId: number,
    modelType: string,
    instance: Uint8Array,
    options: CreateOptions = {},
  ): Promise<WriteResult> {
    this.checkWritable('create');
    this.checkId(instanceId, 'create');
    const bytes = keep(this.checkInstance(modelType, instance, 'create'), options);
    const contentType = this.checkContentType(options, 'create');
    const outcome = await this.write('create', {
      kind: 'createAt',
      instanceId,
      modelType,
      instance: bytes,
      sha256: sha256Of(bytes, options.sha256),
      contentType,
    });
    return { meta: (outcome as { meta: ModelMeta }).meta, ack: 'committed' };
  }

  /** `max_instance_bytes`: larger instances are refused with `too_large`. */
  get maxInstanceBytes(): number {
    return this.options.maxInstanceBytes;
  }

  async updateModel(
    instanceId: number,
    modelType: string,
    instance: Uint8Array,
    options: WriteOptions = {},
  ): Promise<WriteResult> {
    this.checkWritable('update');
    this.checkId(instanceId, 'update');
    const expectedRevision = this.checkExpected(options, 'update');
    const checked = this.checkInstance(modelType, instance, 'update');
    const contentType = this.checkContentType(options, 'update');
    // Refused before copying and hashing (HTTP PUT of a new id tries an update first); the
    // transaction checks again.
    if (!this.store.isLive(instanceId)) {
      this.countError('not_found');
      throw new BackendError('not_found', `model ${instanceId} not found`);
    }
    const bytes = keep(checked, options);
    const outcome = await this.write('update', {
      kind: 'update',
      instanceId,
      modelType,
      instance: bytes,
      sha256: sha256Of(bytes, options.sha256),
      contentType,
      expectedRevision,
    });
    return { meta: (outcome as { meta: ModelMeta }).meta, ack: 'committed' };
  }

  async deleteModel(instanceId: number, options: WriteOptions = {}): Promise<DeleteResult> {
    this.checkWritable('delete');
    this.checkId(instanceId, 'delete');
    const expectedRevision = this.checkExpected(options, 'delete');
    const outcome = await this.write('delete', { kind: 'delete', instanceId, expectedRevision });
    const d = outcome as Extract<WriteOutcome, { change: 'deleted' }>;
    return {
      instanceId: d.instanceId,
      modelType: d.modelType,
      revision: d.revision,
      ack: 'committed',
    };
  }

  async getHistory(
    instanceId: number,
    options: HistoryOptions = {},
  ): Promise<ModelRevision[] | null> {
    this.checkReadable();
    this.metrics.reads.inc({ op: 'history' });
    if (!isId(instanceId)) return null;
    this.pruneByAge();
    return this.store.history(instanceId, options);
  }

  async getRevision(instanceId: number, revision: number): Promise<Model | null> {
    this.checkReadable();
    this.metrics.reads.inc({ op: 'revision' });
    if (!isId(instanceId) || !isId(revision)) return null;
    this.pruneByAge();
    return this.store.revision(instanceId, revision);
  }

  status(): BackendStatus {
    if (this.closing !== undefined) return { ready: false, detail: 'closed' };
    return { ready: true, detail: `sqlite ${this.options.path}` };
  }

  async whenReady(): Promise<void> {}

  /** Stops accepting writes, commits the queued ones, switches the file back to a rollback journal, closes. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.queue.drain();
      const { journalMode, error } = this.store.close();
      if (error !== undefined) {
        this.context.logger.warn(
          { path: this.options.path, err: error.message },
          'could not switch the file back to a rollback journal (AIMM cannot open it until aimm-store opens and closes it again)',
        );
      }
      this.context.logger.info({ path: this.options.path, journalMode }, 'sqlite backend closed');
      this.subject.complete();
    })();
    return this.closing;
  }

  // -------------------------------------------------------------------------------------------

  private async write(op: string, w: WriteOp): Promise<WriteOutcome> {
    try {
      return await this.queue.push(w);
    } catch (err) {
      const e =
        err instanceof BackendError
          ? err
          : new BackendError('internal', String(err), { cause: err });
      this.countError(e.code);
      if (e.code === 'unavailable' || e.code === 'internal') {
        this.context.logger.error(
          { path: this.options.path, op, err: e.message },
          'sqlite write failed',
        );
      }
      throw e;
    }
  }

  /** One group-commit batch: one transaction, then one change per acknowledged write, in order. */
  private executeBatch(ops: WriteOp[]): Outcome<WriteOutcome>[] {
    const { committed, outcomes } = this.store.applyBatch(ops);
    if (!committed) return outcomes;
    const m = this.metrics;
    m.commits.inc();
    this.pruneByAge();
    m.batchedWrites.inc({}, ops.length);
    m.batches.inc({ size: sizeBucket(ops.length) });
    if (ops.length > this.largestBatch) {
      this.largestBatch = ops.length;
      m.batchMax.set(ops.length);
    }
    for (const o of outcomes) {
      if (!o.ok) continue;
      const v = o.value;
      if (v.change === 'deleted') {
        this.modelCount--;
        this.writeCount('delete').inc();
        this.subject.next({
          change: 'deleted',
          instanceId: v.instanceId,
          modelType: v.modelType,
          revision: v.revision,
          origin: 'local',
        });
      } else {
        if (v.change === 'created') this.modelCount++;
        this.writeCount(v.change === 'created' ? 'create' : 'update').inc();
        this.subject.next({
          change: v.change,
          instanceId: v.meta.instanceId,
          modelType: v.meta.modelType,
          revision: v.meta.revision,
          origin: 'local',
          meta: v.meta,
        });
      }
    }
    return outcomes;
  }

  /** `history.keep_days`: drops archived revisions past the age limit (at most once a minute). */
  private pruneByAge(): void {
    const days = this.options.history.keepDays;
    if (days === null || this.store.isClosed) return;
    const now = Date.now();
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    const cutoff = new Date(now - days * 86_400_000).toISOString();
    const dropped = this.store.pruneHistory(cutoff);
    if (dropped > 0) {
      this.context.logger.info({ dropped, keepDays: days }, 'sqlite history pruned by age');
    }
  }

  private checkReadable(): void {
    if (this.store.isClosed) throw new BackendError('closed', 'backend is closed');
  }

  private checkWritable(op: string): void {
    if (this.closing !== undefined) {
      this.countError('closed');
      throw new BackendError('closed', `backend is closed: ${op} refused`);
    }
  }

  private checkId(instanceId: number, op: string): void {
    if (!isId(instanceId)) this.invalid(`${op}: instance id must be a positive integer`);
  }

  private checkExpected(options: WriteOptions, op: string): number | undefined {
    const r = options.expectedRevision;
    if (r === undefined) return undefined;
    if (!Number.isSafeInteger(r) || r < 0) {
      this.invalid(`${op}: expected revision must be a non-negative integer`);
    }
    return r;
  }

  /** The content type to record (normalized), undefined when none was given. */
  private checkContentType(options: CreateOptions, op: string): string | undefined {
    const t = options.contentType;
    if (t === undefined) return undefined;
    if (typeof t !== 'string') this.invalid(`${op}: content type must be a string`);
    const parsed = parseContentType(t);
    if (!parsed.ok) this.invalid(`${op}: ${parsed.why}`);
    return parsed.value;
  }

  /** Checks type and bytes (the caller then {@link keep}s them). */
  private checkInstance(modelType: unknown, instance: unknown, op: string): Uint8Array {
    if (typeof modelType !== 'string') this.invalid(`${op}: model type must be a string`);
    if (!(instance instanceof Uint8Array)) this.invalid(`${op}: instance must be bytes`);
    const bytes = instance as Uint8Array;
    if (bytes.length > this.options.maxInstanceBytes) {
      this.countError('too_large');
      throw new BackendError(
        'too_large',
        `${op}: instance of ${bytes.length} bytes exceeds the sqlite backend's max_instance_bytes (${this.options.maxInstanceBytes})`,
      );
    }
    return bytes;
  }

  private invalid(message: string): never {
    this.countError('invalid');
    throw new BackendError('invalid', message);
  }

  private countError(code: string): void {
    this.metrics.writeErrors.inc({ code });
  }
}

/** A private copy (allocUnsafe + copy is several times faster than Buffer.from for large inputs). */
function copyOf(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(bytes.length);
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).copy(out);
  return out;
}

/**
 * What the write keeps: a private copy (the caller may reuse its buffer at once), or with
 * `handOver` the caller's bytes themselves (viewed as a Buffer, not copied).
 */
function keep(bytes: Uint8Array, options: CreateOptions): Buffer {
  if (options.handOver !== true) return copyOf(bytes);
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

function isId(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}

function sizeBucket(n: number): string {
  if (n <= 1) return '1';
  if (n <= 4) return '2-4';
  if (n <= 16) return '5-16';
  if (n <= 64) return '17-64';
  return '65+';
}

function registerMetrics({ metrics }: BackendContext): Metrics {
  return {
    writes: metrics.counter('sqlite_writes_total', 'Acknowledged (committed) writes by operation.'),
    writeErrors: metrics.counter(
      'sqlite_write_errors_total',
      'Refused or failed writes by error code.',
    ),
    reads: metrics.counter('sqlite_reads_total', 'Reads by operation (list, get).'),
    commits: metrics.counter('sqlite_commits_total', 'Committed group-commit transactions.'),
    batchedWrites: metrics.counter(
      'sqlite_batched_writes_total',
      'Writes executed in committed transactions (divide by commits for the mean batch size).',
    ),
    batches: metrics.counter('sqlite_batches_total', 'Committed transactions by number of writes.'),
    batchMax: metrics.gauge('sqlite_batch_size_max', 'Largest group-commit batch since start.'),
    queueDepth: metrics.gauge(
      'sqlite_queue_depth',
      'Writes waiting for their transaction (at most max_queued_writes).',
    ),
    queueBytes: metrics.gauge(
      'sqlite_queue_bytes',
      'Instance bytes of the writes waiting for their transaction (bounded by max_queued_bytes).',
    ),
    queueWaiting: metrics.gauge(
      'sqlite_queue_waiting_writers',
      'Writers waiting for room in the group-commit queue (backpressure).',
    ),
    models: metrics.gauge('sqlite_models', 'Models stored.'),
  };
}
