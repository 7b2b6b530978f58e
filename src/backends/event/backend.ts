/**
 * The event backend (design §5): models stored as AIMM-format events in the Hat event server.
 *
 * Wiring: the {@link HatSession} keeps a connection subscribed to `[...prefix, '*']` and hands each
 * one to the {@link ConnectionLifecycle} (recovery, online/standby/offline — `phase.ts`);
 * notifications enter the state through the {@link EventIntake} and the {@link ChangeFeed}, which
 * emits `changes$`; writes go through the {@link WritePath} (batched register requests) and are
 * acknowledged from the server's response (`registered`) or its persisted notification
 * (`persisted`). Without a connection, writes fail fast — or, with a snapshot and
 * `queue_when_disconnected`, are stored in the snapshot's queue (`queued`, `pending-writes.ts`) and
 * sent in order once Hat is back. This class is the coordinator: the Backend contract's methods
 * and the backend's lifecycle.
 */
import type { Logger } from 'pino';
import { map, type Observable } from 'rxjs';
import { listWindow } from '../../backend/list-pages.js';
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
import { ChangeFeed } from './change-feed.js';
import { checkChosenId } from './chosen-id.js';
import { type EventBackendConfig, subscriptionOf } from './config.js';
import { ConnectionLifecycle } from './connection-lifecycle.js';
import { HatReads } from './hat-reads.js';
import { IdAllocator } from './ids.js';
import { EventIntake } from './intake.js';
import { createEventMetrics, type EventMetrics } from './metrics.js';
import { checkProjection, PendingWrites } from './pending-writes.js';
import { PersistedAcks } from './persisted-acks.js';
import { PhaseState } from './phase.js';
import { RevisionCompletion } from './revision-completion.js';
import { HatSession } from './session.js';
import type { SnapshotStore } from './snapshot.js';
import { loadSnapshot, openSnapshot } from './snapshot-load.js';
import { ModelState, metaOf } from './state.js';
import { MemoryStore } from './store.js';
import { checkId, checkModel, deleteJob, modelJob, type WriteJob } from './write-jobs.js';
import { WritePath } from './write-path.js';

export class EventBackend implements Backend {
  readonly changes$: Observable<ModelChange>;
  private readonly logger: Logger;
  private readonly metrics: EventMetrics;
  private readonly subscription: string[][];
  private readonly state: ModelState;
  private readonly snapshot: SnapshotStore | null;
  private readonly ids: IdAllocator;
  private readonly feed: ChangeFeed;
  private readonly intake: EventIntake;
  private readonly session: HatSession;
  private readonly persistedAcks = new PersistedAcks();
  /** Writes not yet in Hat: the projection and the durable queue (`pending-writes.ts`). */
  private readonly pending: PendingWrites;
  private readonly writes: WritePath;
  private readonly phase: PhaseState;
  private readonly lifecycle: ConnectionLifecycle;
  private readonly hatReads: HatReads;
  private closing: Promise<void> | null = null;
  /** `full_replay: latest_then_history`: the revisions still provisional (`revision-completion.ts`). */
  private readonly completion: RevisionCompletion;

  constructor(
    private readonly config: EventBackendConfig,
    context: BackendContext,
  ) {
    if (context.hat === null)
      throw new BackendError(
        'invalid',
        'the event backend needs a Hat event server: set hat.eventer_server in the config',
      );
    this.logger = context.logger.child({ backend: 'event' });
    this.metrics = createEventMetrics(context.metrics);
    this.subscription = subscriptionOf(config.modelPrefix);

    const opened =
      config.snapshotPath === null
        ? null
        : openSnapshot(config.snapshotPath, config.modelPrefix, this.logger);
    this.snapshot = opened?.store ?? null;
    this.state = new ModelState(config.modelPrefix, this.snapshot ?? new MemoryStore());
    this.ids = new IdAllocator(config.idStride, config.idOffset);
    this.completion = new RevisionCompletion(config.modelPrefix, this.logger);
    this.phase = new PhaseState(config.queueWhenDisconnected, this.snapshot, this.completion);
    const snapshot = this.snapshot;
    this.pending = new PendingWrites(
      this.state,
      config.modelPrefix,
      snapshot === null ? null : (seq) => snapshot.readQueuedEvent(seq),
    );
    if (opened !== null)
      loadSnapshot(opened.store, opened.loaded, {
        state: this.state,
        ids: this.ids,
        pending: this.pending,
        logger: this.logger,
      });
    this.metrics.models.set(this.state.size);

    this.feed = new ChangeFeed(this.state, this.ids, this.metrics, this.logger);
    // A change on a model whose revision is still provisional says so (`revision-completion.ts`).
    this.changes$ = this.feed.changes$.pipe(map((c) => this.completion.markChange(c)));
    this.intake = new EventIntake((events, originOf, knownOf) =>
      this.feed.apply(events, originOf, null, knownOf),
    );
    // The session reports each connection to the lifecycle, made below before the session starts.
    this.session = new HatSession(
      context.hat,
      {
        subscriptions: this.subscription,
        withPersisted: config.ack === 'persisted',
        minDelayMs: config.reconnectMinDelayMs,
        maxDelayMs: config.reconnectMaxDelayMs,
      },
      {
        onConnected: (conn) => this.lifecycle.onConnected(conn),
        onDisconnected: (reason) => this.lifecycle.onDisconnected(reason),
        onAttemptFailed: (err, attempt, delayMs) =>
          this.lifecycle.onAttemptFailed(err, attempt, delayMs),
      },
    );
    this.writes = new WritePath({
      config,
      logger: this.logger,
      metrics: this.metrics,
      phase: this.phase,
      session: this.session,
      intake: this.intake,
      state: this.state,
      snapshot: this.snapshot,
      pending: this.pending,
      persistedAcks: this.persistedAcks,
    });
    this.lifecycle = new ConnectionLifecycle({
      config,
      logger: this.logger,
      metrics: this.metrics,
      subscription: this.subscription,
      hatAddresses: context.hat.addresses.length,
      phase: this.phase,
      session: this.session,
      intake: this.intake,
      state: this.state,
      snapshot: this.snapshot,
      completion: this.completion,
      persistedAcks: this.persistedAcks,
      feed: this.feed,
      writes: this.writes,
    });
    this.hatReads = new HatReads({
      config,
      logger: this.logger,
      subscription: this.subscription,
      phase: this.phase,
      session: this.session,
      state: this.state,
      ids: this.ids,
      pending: this.pending,
      completion: this.completion,
    });
    this.session.start();
  }

  // ---- reads ---------------------------------------------------------------------------------

  async getModels(): Promise<ModelMeta[]> {
    const list = this.pending.overlay(this.state.list());
    return this.completion.pending ? list.map((m) => this.completion.markMeta(m)) : list;
  }

  /** A page of {@link getModels} from the state's sorted ids, with the queued writes' overlay. */
  async listModels(options: ListOptions = {}): Promise<ModelMeta[]> {
    const { limit } = listWindow(options);
    let { after } = listWindow(options);
    for (;;) {
      const { metas, scanned } = this.state.listPage(after, limit);
      // A full page covers the ids up to where it stopped; a short one everything above `after`.
      const upTo = metas.length < limit || scanned === null ? Number.POSITIVE_INFINITY : scanned;
      const page = this.pending.overlayRange(metas, after, upTo).slice(0, limit);
      // Queued deletes may empty a page while more follow: an empty page must mean the end.
      if (page.length > 0 || upTo === Number.POSITIVE_INFINITY) {
        return this.completion.pending ? page.map((m) => this.completion.markMeta(m)) : page;
      }
      after = upTo;
    }
  }

  async getModel(instanceId: number): Promise<Model | null> {
    if (!Number.isSafeInteger(instanceId) || instanceId < 1) return null;
    if (this.pending.hasDurable(instanceId)) {
      const q = this.pending.queuedModel(instanceId);
      return q === null ? null : this.completion.markMeta({ ...q.meta, instance: q.instance });
    }
    const e = this.state.get(instanceId);
    if (e === undefined || e.deleted) return null;
    const bytes = this.readStored(instanceId, () => this.state.store.readInstance(instanceId));
    if (bytes === null) return null;
    return this.completion.markMeta({
      ...metaOf(e),
      instance: this.snapshot === null ? copyOf(bytes) : bytes,
    });
  }

  async getModelRange(
    instanceId: number,
    pick: (meta: ModelMeta) => ByteSpan | null,
  ): Promise<ModelRange | null> {
    if (!Number.isSafeInteger(instanceId) || instanceId < 1) return null;
    if (this.pending.hasDurable(instanceId)) {
      const q = this.pending.queuedModel(instanceId);
      if (q === null) return null;
      const qmeta = this.completion.markMeta(q.meta);
      const span = pick(qmeta);
      const bytes =
        span === null ? new Uint8Array(0) : copyOf(q.instance.subarray(span.start, span.end));
      return { meta: qmeta, span, bytes };
    }
    const e = this.state.get(instanceId);
    if (e === undefined || e.deleted) return null;
    const meta = this.completion.markMeta(metaOf(e));
    const span = pick(meta);
    if (span === null) return { meta, span, bytes: new Uint8Array(0) };
    const bytes = this.readStored(instanceId, () =>
      this.state.store.readRange(instanceId, span.start, span.end),
    );
    return bytes === null ? null : { meta, span, bytes };
  }

  /** A read of the model store (memory or snapshot); a failing snapshot read is logged, `internal`. */
  private readStored<T>(instanceId: number, read: () => T): T {
    try {
      return read();
    } catch (err) {
      this.logger.error(
        { err, instanceId },
        'event backend: cannot read a model from the snapshot',
      );
      throw new BackendError('internal', `model ${instanceId} cannot be read from the snapshot`, {
        cause: err,
      });
    }
  }

  // ---- writes --------------------------------------------------------------------------------

  async createModel(
    modelType: string,
    instance: Uint8Array,
    options: CreateOptions = {},
  ): Promise<WriteResult> {
    this.checkWritable();
    checkModel(modelType, instance, this.config.maxInstanceBytes);
    const copy = keep(instance, options);
    const ticket = await this.writes.takeRoom(copy.length);
    try {
      const mode = this.writes.writeMode();
      const instanceId = this.ids.next();
      const job = modelJob(
        this.config.modelPrefix,
        'create',
        instanceId,
        modelType,
        copy,
        undefined,
        options,
      );
      job.ticket = ticket;
      return this.writes.submit(job, mode);
    } catch (err) {
      ticket.release();
      throw err;
    }
  }

  /** A new model at a chosen id; which ids are safe: `chosen-id.ts`. */
  async createModelAt(
    instanceId: number,
    modelType: string,
    instance: Uint8Array,
    options: CreateOptions = {},
  ): Promise<WriteResult> {
    this.checkWritable();
    checkId(instanceId);
    checkModel(modelType, instance, this.config.maxInstanceBytes);
    this.writes.writeMode(); // refuses at once when the write could go nowhere
    checkChosenId(instanceId, {
      entry: this.state.get(instanceId),
      inFlight: this.pending.has(instanceId),
      highWater: this.ids.highWater,
      stride: this.config.idStride,
      offset: this.config.idOffset,
    });
    this.ids.observe(instanceId);
    const copy = keep(instance, options);
    const ticket = await this.writes.takeRoom(copy.length);
    try {
      const job = modelJob(
        this.config.modelPrefix,
        'create',
        instanceId,
        modelType,
        copy,
        undefined,
        options,
      );
      job.chosenId = true;
      job.ticket = ticket;
      return this.writes.submit(job, this.writes.writeMode());
    } catch (err) {
      ticket.release();
      throw err;
    }
  }

  /** `max_instance_bytes`: larger instances are refused with `too_large`. */
  get maxInstanceBytes(): number {
    return this.config.maxInstanceBytes;
  }

  async updateModel(
    instanceId: number,
    modelType: string,
    instance: Uint8Array,
    options: WriteOptions = {},
  ): Promise<WriteResult> {
    this.checkWritable();
    checkId(instanceId);
    checkModel(modelType, instance, this.config.maxInstanceBytes);
    const copy = keep(instance, options);
    await this.waitExactForCas(instanceId, options);
    const ticket = await this.writes.takeRoom(copy.length);
    try {
      const mode = this.writes.writeMode();
      checkProjection(instanceId, options.expectedRevision, this.pending.project(instanceId, null));
      const job = modelJob(
        this.config.modelPrefix,
        'update',
        instanceId,
        modelType,
        copy,
        options.expectedRevision,
        options,
      );
      job.ticket = ticket;
      const res = await this.writes.submit(job, mode);
      return { ...res, meta: this.completion.markMeta(res.meta) };
    } catch (err) {
      ticket.release();
      throw err;
    }
  }

  async deleteModel(instanceId: number, options: WriteOptions = {}): Promise<DeleteResult> {
    this.checkWritable();
    checkId(instanceId);
    await this.waitExactForCas(instanceId, options);
    const ticket = await this.writes.takeRoom(0);
    let job: WriteJob;
    try {
      const mode = this.writes.writeMode();
      const proj = this.pending.project(instanceId, null);
      checkProjection(instanceId, options.expectedRevision, proj);
      job = deleteJob(
        this.config.modelPrefix,
        instanceId,
        proj.modelType,
        options.expectedRevision,
        ticket,
      );
      const res = await this.writes.submit(job, mode);
      return this.completion.markMeta({
        instanceId,
        modelType: res.meta.modelType,
        revision: res.meta.revision,
        ack: res.ack,
      });
    } catch (err) {
      ticket.release();
      throw err;
    }
  }

  // ---- status and lifecycle ------------------------------------------------------------------

  status(): BackendStatus {
    const connected = this.session.current !== null && this.phase.current !== 'connecting';
    return { ready: this.phase.ready(), connected, detail: this.phase.detail() };
  }

  whenReady(): Promise<void> {
    return this.phase.whenReady();
  }

  /** A model's revisions from Hat's time series (`model-history.ts`). */
  getHistory(instanceId: number, options?: HistoryOptions): Promise<ModelRevision[] | null> {
    return this.hatReads.history(instanceId, options);
  }

  /** One revision's bytes: the current one from the state, earlier ones from Hat's time series. */
  getRevision(instanceId: number, revision: number): Promise<Model | null> {
    return this.hatReads.revision(instanceId, revision, () => this.getModel(instanceId));
  }

  /** Every event Hat holds under the prefix is applied here when this resolves (`sync.ts`). */
  sync(): Promise<void> {
    return this.hatReads.sync();
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.phase.rejectReady(new BackendError('closed', 'backend closed before it was ready'));
    // New writes are refused from now on (checkWritable); those already accepted may finish.
    if (this.phase.current === 'online' && this.config.closeTimeoutMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        // Writes waiting for room were accepted too: they go on as room frees.
        this.writes.whenDrained().then(() => this.persistedAcks.whenIdle()),
        new Promise<void>((r) => {
          timer = setTimeout(r, this.config.closeTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
    }
    this.phase.current = 'closed';
    this.lifecycle.stop();
    this.completion.drop(); // compare-and-set writes still waiting fail with `closed`
    this.writes.failWaitingForRoom(
      new BackendError('closed', 'backend closed before the write was sent'),
    );
    this.writes.failWaiting(new BackendError('closed', 'backend closed before the write was sent'));
    await this.session.stop();
    // The in-flight batch (if any) fails once its connection is gone.
    await this.writes.whenIdle();
    this.writes.close();
    this.persistedAcks.failAll(new Error('backend closed before the event was reported persisted'));
    this.snapshot?.close();
    this.metrics.connected.set(0);
    this.feed.complete();
  }

  /** A compare-and-set write on a provisional revision waits until it is exact. */
  private async waitExactForCas(instanceId: number, options: WriteOptions): Promise<void> {
    if (options.expectedRevision === undefined) return;
    await this.completion.whenExact(instanceId, this.config.requestTimeoutMs);
    this.checkWritable();
  }

  private checkWritable(): void {
    if (this.closing !== null) throw new BackendError('closed', 'backend is closed');
  }
}

/**
 * What a write keeps: a private copy (the caller may reuse its buffer once we return), or with
 * `handOver` the caller's bytes themselves.
 */
function keep(instance: Uint8Array, options: CreateOptions): Uint8Array {
  return options.handOver === true ? instance : copyOf(instance);
}

/** A copy, also of a Buffer (whose own `slice()` is a view, not a copy). */
function copyOf(bytes: Uint8Array): Uint8Array {
  return Uint8Array.prototype.slice.call(bytes);
}
