/**
 * The event backend (design §5): models stored as AIMM-format events in the Hat event server.
 *
 * Wiring: the {@link HatSession} keeps a connection subscribed to `[...prefix, '*']` and runs
 * {@link recover} on each one; notifications enter the state through the {@link EventIntake}; writes
 * go through the {@link WritePipeline} (batched register requests) and are acknowledged from the
 * server's response (`registered`) or its persisted notification (`persisted`). Without a
 * connection, writes fail fast — or, with a snapshot and `queue_when_disconnected`, are stored in
 * the snapshot's queue (`queued`) and sent in order once Hat is back.
 */
import type { Logger } from 'pino';
import { type Observable, Subject, type Subscription } from 'rxjs';
import {
  type Backend,
  type BackendContext,
  BackendError,
  type BackendStatus,
  type ChangeOrigin,
  type DeleteResult,
  type HistoryOptions,
  type Model,
  type ModelChange,
  type ModelMeta,
  type ModelRevision,
  type WriteOptions,
  type WriteResult,
} from '../../backend/types.js';
import { busyAllowanceMs } from '../../hat/chatter/connection.js';
import type { Event, Status } from '../../hat/eventer/common.js';
import { Admission, type Ticket } from './admission.js';
import { checkChosenId, checkChosenIdAtSend } from './chosen-id.js';
import { type EventBackendConfig, subscriptionOf } from './config.js';
import { type EventRef, refKey } from './event-ref.js';
import { IdAllocator } from './ids.js';
import { EventIntake } from './intake.js';
import { createEventMetrics, type EventMetrics } from './metrics.js';
import { listRevisions, modelOf, readModelHistory } from './model-history.js';
import { checkProjection, PendingWrites } from './pending-writes.js';
import { PersistedAcks } from './persisted-acks.js';
import { recover } from './recovery.js';
import { RevisionCompletion } from './revision-completion.js';
import { type Connection, HatSession } from './session.js';
import { type QueuedWrite, type SnapshotState, SnapshotStore } from './snapshot.js';
import { type EventOutcome, type KnownModel, ModelState, metaOf } from './state.js';
import { MemoryStore, type ModelEntry } from './store.js';
import { syncBarrier } from './sync.js';
import { RequestTimeoutError, withTimeout } from './timeout.js';
import {
  checkId,
  checkModel,
  deleteJob,
  knownOf,
  leaveRoom,
  modelJob,
  restoredJob,
  type WriteJob,
} from './write-jobs.js';
import { WritePipeline } from './write-pipeline.js';

type Phase = 'connecting' | 'recovering' | 'standby' | 'online' | 'offline' | 'closed';

export class EventBackend implements Backend {
  readonly changes$: Observable<ModelChange>;
  private readonly subject = new Subject<ModelChange>();
  private readonly logger: Logger;
  private readonly metrics: EventMetrics;
  private readonly subscription: string[][];
  private readonly state: ModelState;
  private readonly snapshot: SnapshotStore | null;
  private readonly ids: IdAllocator;
  private readonly intake: EventIntake;
  private readonly pipeline: WritePipeline<WriteJob>;
  /** Room in the pipeline: writers wait here when it is full (backpressure). */
  private readonly room: Admission;
  private readonly session: HatSession;
  private readonly persistedAcks = new PersistedAcks();
  /** Writes not yet in Hat: the projection and the durable queue (`pending-writes.ts`). */
  private readonly pending: PendingWrites;
  private phase: Phase = 'connecting';
  private serverStatus: Status | null = null;
  private lastError = '';
  private recoveryProgress = 0;
  private connSubs: Subscription[] = [];
  private readyResolve!: () => void;
  private readyReject!: (err: Error) => void;
  private readonly readyPromise: Promise<void>;
  private isReady = false;
  private rebuildBefore: ModelEntry[] | null = null;
  private closing: Promise<void> | null = null;
  /** A reconnect was requested because Hat's event ids went backwards (once per connection). */
  private resyncRequested = false;
  /** How many Hat addresses the connector may choose from. */
  private readonly hatAddresses: number;
  private standbyTimer: NodeJS.Timeout | null = null;
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
    this.hatAddresses = context.hat.addresses.length;
    this.logger = context.logger.child({ backend: 'event' });
    this.metrics = createEventMetrics(context.metrics);
    this.changes$ = this.subject.asObservable();
    this.subscription = subscriptionOf(config.modelPrefix);
    this.readyPromise = new Promise<void>((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    this.readyPromise.catch(() => {});

    const opened = config.snapshotPath === null ? null : this.openSnapshot(config.snapshotPath);
    this.snapshot = opened?.store ?? null;
    this.state = new ModelState(config.modelPrefix, this.snapshot ?? new MemoryStore());
    this.ids = new IdAllocator(config.idStride, config.idOffset);
    this.completion = new RevisionCompletion(config.modelPrefix, this.logger);
    this.pending = new PendingWrites(this.state, config.modelPrefix);
    if (opened !== null) this.loadSnapshot(opened.store, opened.loaded);
    this.metrics.models.set(this.state.size);

    this.intake = new EventIntake((events, originOf, knownOf) =>
      this.applyEvents(events, originOf, null, knownOf),
    );
    this.room = new Admission(config.maxQueuedWrites, config.maxQueuedBytes);
    this.metrics.pipelineHeld.collect(() => this.room.held);
    this.metrics.pipelineHeldBytes.collect(() => this.room.heldBytes);
    this.metrics.pipelineWaiting.collect(() => this.room.waiting);
    this.pipeline = new WritePipeline<WriteJob>({
      maxBatchItems: config.maxBatchEvents,
      maxBatchBytes: config.maxBatchBytes,
      sizeOf: (j) => j.bytes,
      process: async (batch) => {
        try {
          await this.processBatch(batch);
        } finally {
          for (const j of batch) leaveRoom(j);
        }
      },
      onProcessError: (err, batch) => {
        this.logger.error({ err }, 'event backend: write pipeline failed');
        for (const j of batch)
          this.failJob(j, new BackendError('internal', 'internal error while writing'));
      },
    });
    this.session = new HatSession(
      context.hat,
      {
        subscriptions: this.subscription,
        withPersisted: config.ack === 'persisted',
        minDelayMs: config.reconnectMinDelayMs,
        maxDelayMs: config.reconnectMaxDelayMs,
      },
      {
        onConnected: (conn) => this.onConnected(conn),
        onDisconnected: (reason) => this.onDisconnected(reason),
        onAttemptFailed: (err, attempt, delayMs) => this.onAttemptFailed(err, attempt, delayMs),
      },
    );
    this.session.start();
  }

  // ---- reads ---------------------------------------------------------------------------------

  async getModels(): Promise<ModelMeta[]> {
    return this.pending.overlay(this.state.list());
  }

  async getModel(instanceId: number): Promise<Model | null> {
    if (!Number.isSafeInteger(instanceId) || instanceId < 1) return null;
    if (this.pending.hasDurable(instanceId)) {
      const q = this.pending.queuedModel(instanceId);
      return q === null ? null : { ...q.meta, instance: q.instance };
    }
    const e = this.state.get(instanceId);
    if (e === undefined || e.deleted) return null;
    let bytes: Uint8Array | null;
    try {
      bytes = this.state.store.readInstance(instanceId);
    } catch (err) {
      this.logger.error(
        { err, instanceId },
        'event backend: cannot read a model from the snapshot',
      );
      throw new BackendError('internal', `model ${instanceId} cannot be read from the snapshot`, {
        cause: err,
      });
    }
    if (bytes === null) return null;
    return { ...metaOf(e), instance: this.snapshot === null ? bytes.slice() : bytes };
  }

  // ---- writes --------------------------------------------------------------------------------

  async createModel(modelType: string, instance: Uint8Array): Promise<WriteResult> {
    this.checkWritable();
    checkModel(modelType, instance, this.config.maxInstanceBytes);
    const copy = instance.slice(); // the caller may reuse its buffer once we return
    const ticket = await this.takeRoom(copy.length);
    try {
      const mode = this.writeMode();
      const instanceId = this.ids.next();
      const job = modelJob(
        this.config.modelPrefix,
        'create',
        instanceId,
        modelType,
        copy,
        undefined,
      );
      job.ticket = ticket;
      return this.submit(job, mode);
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
  ): Promise<WriteResult> {
    this.checkWritable();
    checkId(instanceId);
    checkModel(modelType, instance, this.config.maxInstanceBytes);
    this.writeMode(); // refuses at once when the write could go nowhere
    checkChosenId(instanceId, {
      entry: this.state.get(instanceId),
      inFlight: this.pending.has(instanceId),
      highWater: this.ids.highWater,
      stride: this.config.idStride,
      offset: this.config.idOffset,
    });
    this.ids.observe(instanceId);
    const copy = instance.slice(); // the caller may reuse its buffer once we return
    const ticket = await this.takeRoom(copy.length);
    try {
      const job = modelJob(
        this.config.modelPrefix,
        'create',
        instanceId,
        modelType,
        copy,
        undefined,
      );
      job.chosenId = true;
      job.ticket = ticket;
      return this.submit(job, this.writeMode());
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
    const copy = instance.slice(); // the caller may reuse its buffer once we return
    await this.waitExactForCas(instanceId, options);
    const ticket = await this.takeRoom(copy.length);
    try {
      const mode = this.writeMode();
      checkProjection(instanceId, options.expectedRevision, this.pending.project(instanceId, null));
      const job = modelJob(
        this.config.modelPrefix,
        'update',
        instanceId,
        modelType,
        copy,
        options.expectedRevision,
      );
      job.ticket = ticket;
      return this.submit(job, mode);
    } catch (err) {
      ticket.release();
      throw err;
    }
  }

  async deleteModel(instanceId: number, options: WriteOptions = {}): Promise<DeleteResult> {
    this.checkWritable();
    checkId(instanceId);
    await this.waitExactForCas(instanceId, options);
    const ticket = await this.takeRoom(0);
    let job: WriteJob;
    try {
      const mode = this.writeMode();
      const proj = this.pending.project(instanceId, null);
      checkProjection(instanceId, options.expectedRevision, proj);
      job = deleteJob(
        this.config.modelPrefix,
        instanceId,
        proj.modelType,
        options.expectedRevision,
        ticket,
      );
      const res = await this.submit(job, mode);
      return {
        instanceId,
        modelType: res.meta.modelType,
        revision: res.meta.revision,
        ack: res.ack,
      };
    } catch (err) {
      ticket.release();
      throw err;
    }
  }

  /** Room in the pipeline for a write of `bytes` model bytes; waits while it is full. */
  private takeRoom(bytes: number): Promise<Ticket> {
    return this.room.acquire(bytes);
  }

  // ---- status and lifecycle ------------------------------------------------------------------

  status(): BackendStatus {
    const connected = this.session.current !== null && this.phase !== 'connecting';
    return { ready: this.computeReady(), connected, detail: this.detail() };
  }

  whenReady(): Promise<void> {
    return this.readyPromise;
  }

  /** A model's revisions from Hat's time series (`model-history.ts`). */
  async getHistory(instanceId: number, options?: HistoryOptions): Promise<ModelRevision[] | null> {
    const entry = this.historyEntry(instanceId);
    if (entry === null) return null;
    const read = await this.readHistory(entry);
    return listRevisions(entry, read, options);
  }

  /** One revision's bytes: the current one from the state, earlier ones from Hat's time series. */
  async getRevision(instanceId: number, revision: number): Promise<Model | null> {
    const entry = this.historyEntry(instanceId);
    if (entry === null || !Number.isSafeInteger(revision) || revision < 1) return null;
    if (revision === entry.revision) return entry.deleted ? null : this.getModel(instanceId);
    const read = await this.readHistory(entry);
    const r = read.revisions.find((x) => x.revision === revision);
    return r === undefined ? null : modelOf(instanceId, r);
  }

  private historyEntry(instanceId: number): ModelEntry | null {
    if (!Number.isSafeInteger(instanceId) || instanceId < 1) return null;
    if (this.pending.hasDurable(instanceId) || this.completion.pending) {
      throw new BackendError(
        'unavailable',
        this.completion.pending
          ? 'revision numbers are still being completed from Hat (full_replay: latest_then_history); try again shortly'
          : `writes to model ${instanceId} are queued for Hat; its history is known once they are sent`,
      );
    }
    return this.state.get(instanceId) ?? null;
  }

  private readHistory(entry: ModelEntry) {
    const conn = this.session.current;
    if (conn === null || this.isClosed()) {
      throw new BackendError('unavailable', `cannot read history from Hat now (${this.detail()})`);
    }
    return readModelHistory(
      conn.main,
      this.config.modelPrefix,
      entry,
      this.config.requestTimeoutMs,
    );
  }

  /** Every event Hat holds under the prefix is applied here when this resolves (`sync.ts`). */
  async sync(): Promise<void> {
    const conn = this.session.current;
    if (
      conn === null ||
      this.phase === 'connecting' ||
      this.phase === 'recovering' ||
      this.isClosed()
    )
      throw new BackendError('unavailable', `cannot sync with Hat now (${this.detail()})`);
    const { events } = await syncBarrier({
      client: conn.main,
      prefix: this.config.modelPrefix,
      subscription: this.subscription,
      timeoutMs: this.config.requestTimeoutMs,
      isApplied: (ref, id) => this.state.isApplied(ref, id),
      observeId: (id) => this.ids.observe(id),
    });
    this.logger.debug({ events }, 'event backend: in sync with Hat');
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.readyReject(new BackendError('closed', 'backend closed before it was ready'));
    // New writes are refused from now on (checkWritable); those already accepted may finish.
    if (this.phase === 'online' && this.config.closeTimeoutMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        // Writes waiting for room were accepted too: they go on as room frees.
        this.room
          .whenEmpty()
          .then(() => this.pipeline.whenIdle())
          .then(() => this.persistedAcks.whenIdle()),
        new Promise<void>((r) => {
          timer = setTimeout(r, this.config.closeTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
    }
    this.phase = 'closed';
    this.clearStandbySwitch();
    this.completion.drop(); // compare-and-set writes still waiting fail with `closed`
    this.room.failWaiting(new BackendError('closed', 'backend closed before the write was sent'));
    this.failWaiting(new BackendError('closed', 'backend closed before the write was sent'));
    await this.session.stop();
    // The in-flight batch (if any) fails once its connection is gone.
    await this.pipeline.whenIdle();
    this.pipeline.close();
    this.persistedAcks.failAll(new Error('backend closed before the event was reported persisted'));
    this.snapshot?.close();
    this.metrics.connected.set(0);
    this.subject.complete();
  }

  // ---- connection handling -------------------------------------------------------------------

  private async onConnected(conn: Connection): Promise<void> {
    if (this.phase === 'closed') throw new Error('closed');
    this.phase = 'recovering';
    this.recoveryProgress = 0;
    this.resyncRequested = false;
    this.serverStatus = conn.main.status;
    this.intake.hold();
    this.connSubs.push(
      conn.main.events$.subscribe({
        next: (events) => this.onNotify(events),
        error: () => {},
      }),
      conn.main.status$.subscribe({
        next: (s) => this.onServerStatus(s),
        error: () => {},
      }),
    );
    if (conn.persisted !== null) this.persistedAcks.attach(conn.persisted);
    this.metrics.connected.set(1);
    this.metrics.connects.inc();
    let released = false;
    try {
      const report = await recover({
        client: conn.main,
        checkpoint: this.state.checkpoint,
        subscription: this.subscription,
        pageSize: this.config.catchUpPageSize,
        pageBytes: this.config.catchUpPageBytes,
        timeoutMs: this.config.requestTimeoutMs,
        history: this.config.fullReplay !== 'latest',
        latestFirst: this.config.fullReplay === 'latest_then_history',
        provisional: () => this.snapshot?.markRevisionsProvisional(),
        catchUp: this.config.catchUp,
        logger: this.logger,
        apply: (events, scannedUpTo) => {
          this.applyEvents(events, () => 'remote', scannedUpTo);
        },
        rebuild: () => this.rebuild(),
        prefix: this.config.modelPrefix,
        appliedEvent: (id) => this.state.get(id)?.event,
        progress: (n) => {
          this.recoveryProgress = n;
          this.metrics.recoveryEvents.set(n);
        },
        received: (query, n) => this.metrics.recoveryReceived.inc({ query }, n),
      });
      if (report.bases !== undefined)
        this.completion.begin(report.bases, (id) => this.state.get(id)?.event);
      this.announceRemovedAfterRebuild();
      this.intake.release();
      released = true;
      this.snapshot?.markSynced();
      this.metrics.recoveries.inc({ mode: report.rebuilt ? 'rebuild' : report.mode });
      this.logger.info(
        {
          mode: report.mode,
          via: report.via,
          rebuilt: report.rebuilt,
          events: report.events,
          received: report.received,
          pages: report.pages,
          models: this.state.size,
          checkpoint: this.state.checkpoint === null ? null : refKey(this.state.checkpoint),
        },
        'event backend: recovered from Hat',
      );
    } finally {
      if (!released) this.intake.release();
    }
    if (this.isClosed()) return;
    this.lastError = '';
    if (this.serverStatus === 'operational') this.goOnline();
    else {
      this.phase = 'standby';
      this.armStandbySwitch();
    }
    this.completeRevisions(conn);
  }

  private onServerStatus(s: Status): void {
    this.serverStatus = s;
    if (this.phase === 'closed' || this.phase === 'recovering') return;
    if (s === 'operational' && this.phase === 'standby') this.goOnline();
    else if (s !== 'operational' && this.phase === 'online') {
      this.phase = 'standby';
      this.logger.warn({ status: s }, 'event backend: Hat server is not operational');
      this.armStandbySwitch();
    }
    this.markReadyIfReady();
  }

  /**
   * With several Hat addresses, a connection whose server stays non-operational for
   * `standby_switch_ms` is dropped, so that the next connect can find an operational server (in a
   * redundant Hat the active server may now be another address). With one address the backend
   * waits for the server's status to change.
   */
  private armStandbySwitch(): void {
    this.clearStandbySwitch();
    if (this.hatAddresses < 2) return;
    this.standbyTimer = setTimeout(() => {
      this.standbyTimer = null;
      if (this.phase !== 'standby') return;
      this.logger.warn(
        { status: this.serverStatus, afterMs: this.config.standbySwitchMs },
        'event backend: Hat server still not operational; reconnecting to find an operational one',
      );
      void this.session.dropConnection();
    }, this.config.standbySwitchMs);
    this.standbyTimer.unref();
  }

  private clearStandbySwitch(): void {
    if (this.standbyTimer === null) return;
    clearTimeout(this.standbyTimer);
    this.standbyTimer = null;
  }

  private goOnline(): void {
    this.clearStandbySwitch();
    this.phase = 'online';
    // Writes queued while Hat was unreachable go first, in their order.
    for (const job of this.pending.takeDurableToSend()) {
      job.ticket = this.room.force(job.size); // already in memory: room without waiting
      this.pipeline.push(job);
    }
    this.updateGauges();
    this.markReadyIfReady();
  }

  private onDisconnected(reason: Error | null): void {
    this.clearStandbySwitch();
    this.completion.abort();
    for (const s of this.connSubs) s.unsubscribe();
    this.connSubs = [];
    this.persistedAcks.detach();
    this.persistedAcks.failAll(
      new Error('the Hat connection closed before the event was reported persisted'),
    );
    this.metrics.connected.set(0);
    if (this.phase === 'closed') return;
    this.metrics.disconnects.inc();
    this.lastError = reason?.message ?? 'connection closed';
    this.logger.warn({ reason: this.lastError }, 'event backend: lost the Hat connection');
    this.phase = 'offline';
    this.failWaiting(
      new BackendError('unavailable', `Hat event server unreachable: ${this.lastError}`),
    );
    this.markReadyIfReady();
  }

  private onAttemptFailed(err: Error, attempt: number, delayMs: number): void {
    if (this.phase === 'closed') return;
    this.lastError = err.message;
    this.metrics.disconnects.inc();
    this.logger.warn(
      { err: err.message, attempt, retryInMs: delayMs },
      'event backend: cannot connect to Hat, retrying',
    );
    this.phase = 'offline';
    this.markReadyIfReady();
  }

  private onNotify(events: Event[]): void {
    try {
      this.intake.push(events);
    } catch (err) {
      this.logger.error({ err }, 'event backend: cannot apply events; reconnecting to catch up');
      void this.session.dropConnection();
    }
  }

  /** Forgets the state before a rebuild from Hat; models that are gone are announced after it. */
  private rebuild(): void {
    // A recovery may rebuild twice (a lost checkpoint, then a pruned time series): clients saw
    // the state before the first.
    this.rebuildBefore ??= this.state.allEntries().filter((e) => !e.deleted);
    this.completion.drop();
    this.state.reset();
  }

  private announceRemovedAfterRebuild(): void {
    const before = this.rebuildBefore;
    this.rebuildBefore = null;
    for (const old of before ?? []) {
      const now = this.state.get(old.instanceId);
      if (now !== undefined && !now.deleted) continue;
      this.subject.next({
        change: 'deleted',
        instanceId: old.instanceId,
        modelType: old.modelType,
        revision: now !== undefined ? now.revision : old.revision + 1,
        origin: 'remote',
      });
    }
  }

  // ---- exact revisions after a latest_then_history replay ------------------------------------

  /** Reads the history in the background on `conn` and makes the provisional revisions exact. */
  private completeRevisions(conn: Connection): void {
    if (!this.completion.pending) return;
    this.completion
      .run({
        deps: {
          client: conn.main,
          subscription: this.subscription,
          pageSize: this.config.catchUpPageSize,
          pageBytes: this.config.catchUpPageBytes,
          timeoutMs: this.config.requestTimeoutMs,
          catchUp: this.config.catchUp,
          logger: this.logger,
          received: (query, n) => this.metrics.recoveryReceived.inc({ query }, n),
        },
        complete: (counts, bases) => this.state.completeRevisions(counts, bases),
      })
      .catch(() => {
        // Logged; tried again on this connection after a pause, or after the next reconnect.
        const t = setTimeout(() => {
          if (this.session.current === conn && !this.isClosed()) this.completeRevisions(conn);
        }, this.config.reconnectMaxDelayMs);
        t.unref();
      });
  }

  /** A compare-and-set write on a provisional revision waits until it is exact. */
  private async waitExactForCas(instanceId: number, options: WriteOptions): Promise<void> {
    if (options.expectedRevision === undefined) return;
    await this.completion.whenExact(instanceId, this.config.requestTimeoutMs);
    this.checkWritable();
  }

  // ---- applying events -----------------------------------------------------------------------

  private applyEvents(
    events: Event[],
    originOf: (ref: EventRef) => ChangeOrigin,
    scannedUpTo: EventRef | null,
    knownOf?: (ref: EventRef) => KnownModel | undefined,
  ): readonly EventOutcome[] {
    const res = this.state.apply(events, originOf, scannedUpTo, knownOf);
    this.ids.observe(this.state.highWater);
    for (const o of res.outcomes) {
      if (o.kind === 'malformed') {
        this.metrics.skippedEvents.inc({ reason: o.malformed.reason });
        this.logger.warn(
          { eventId: refKey(o.ref), eventType: o.event.type.join('/'), reason: o.malformed.reason },
          `event backend: skipped malformed event: ${o.malformed.detail}`,
        );
      } else if (o.kind === 'applied') {
        this.metrics.appliedEvents.inc({ origin: originOf(o.ref) });
      }
    }
    this.metrics.models.set(this.state.size);
    for (const c of res.changes) this.subject.next(c);
    return res.outcomes;
  }

  // ---- the write path ------------------------------------------------------------------------

  /** Where a write goes now: to Hat, or into the snapshot's queue. Throws when neither is possible. */
  private writeMode(): 'direct' | 'queued' {
    if (this.phase === 'online') return 'direct';
    if (this.config.queueWhenDisconnected && this.snapshot !== null) {
      if (this.snapshot.isSynced()) return 'queued';
      throw new BackendError(
        'unavailable',
        `Hat event server unavailable (${this.detail()}) and the snapshot was never synchronised with it, so writes cannot be queued yet`,
      );
    }
    throw new BackendError('unavailable', `Hat event server unavailable: ${this.detail()}`);
  }

  private submit(job: WriteJob, mode: 'direct' | 'queued'): Promise<WriteResult> {
    this.pending.add(job);
    if (mode === 'queued') {
      leaveRoom(job); // the snapshot's queue holds it, not the pipeline
      const snapshot = this.snapshot as SnapshotStore;
      try {
        job.durableSeq = snapshot.enqueue({
          instanceId: job.instanceId,
          op: job.op,
          modelType: job.modelType,
          event: job.event,
          size: job.size,
          sha256: job.sha256,
          queuedAt: job.queuedAt,
        });
      } catch (err) {
        this.pending.remove(job);
        this.metrics.writes.inc({ op: job.op, result: 'failed' });
        throw new BackendError('internal', 'cannot store the write in the snapshot queue', {
          cause: err,
        });
      }
      this.pending.addDurable(job);
      this.metrics.writes.inc({ op: job.op, result: 'queued' });
      this.updateGauges();
      const proj = this.pending.project(job.instanceId, null);
      return Promise.resolve({
        meta: {
          instanceId: job.instanceId,
          modelType: proj.modelType,
          revision: proj.revision,
          size: job.size,
          sha256: job.sha256,
          updated: job.queuedAt,
        },
        ack: 'queued',
      });
    }
    return new Promise<WriteResult>((resolve, reject) => {
      job.settle = {
        resolve: (entry, ack) => {
          this.metrics.writes.inc({ op: job.op, result: 'ok' });
          resolve({ meta: metaOf(entry), ack });
        },
        reject: (err) => {
          this.metrics.writes.inc({ op: job.op, result: 'failed' });
          reject(err);
        },
      };
      this.pipeline.push(job);
      this.updateGauges();
    });
  }

  /** Sends one batch as one register request and settles its writes from the response. */
  private async processBatch(batch: WriteJob[]): Promise<void> {
    this.updateGauges();
    const conn = this.session.current;
    if (this.phase !== 'online' || conn === null) {
      for (const j of batch)
        this.failJob(
          j,
          new BackendError('unavailable', `Hat event server unavailable: ${this.detail()}`),
        );
      return;
    }
    const toSend = batch.filter((j) => this.validateAtSend(j));
    if (toSend.length === 0) return;
    const events = toSend.map((j) => j.event);
    const requestBytes = toSend.reduce((n, j) => n + j.bytes, 0);
    this.metrics.registerEvents.inc({}, events.length);
    this.metrics.registerBytes.inc({}, requestBytes);
    this.intake.hold();
    let res: Event[] | null;
    try {
      // Hat works through a large request for a while (it decodes, stores, notifies and answers
      // with the events): the timeout grows with its bytes as the chatter ping allowance does.
      res = await withTimeout(
        conn.main.register(events),
        this.config.requestTimeoutMs + busyAllowanceMs(requestBytes),
        'register request',
      );
    } catch (err) {
      this.intake.release();
      this.metrics.registerRequests.inc({ result: 'error' });
      const msg = (err as Error).message;
      for (const j of toSend)
        this.failJob(
          j,
          new BackendError(
            'unavailable',
            `Hat connection failed before the register response (${msg}); the write may or may not be stored`,
          ),
        );
      if (err instanceof RequestTimeoutError && this.phase === 'online') {
        // The connection is suspect: stop using it now and reconnect.
        this.phase = 'offline';
        this.lastError = msg;
        void this.session.dropConnection();
      }
      return;
    }
    if (res === null || res.length !== events.length) {
      this.intake.release();
      const refused = res === null;
      this.metrics.registerRequests.inc({ result: refused ? 'failure' : 'error' });
      const why = refused
        ? `Hat event server refused the register request (status: ${this.serverStatus ?? 'unknown'})`
        : `Hat answered ${res?.length} events for ${events.length}`;
      this.logger.warn({ events: events.length }, `event backend: ${why}`);
      for (const j of toSend) this.failJob(j, new BackendError('unavailable', why));
      return;
    }
    this.metrics.registerRequests.inc({ result: 'events' });
    const seqs = toSend.flatMap((j) => (j.durableSeq === null ? [] : [j.durableSeq]));
    if (seqs.length > 0) this.snapshot?.scheduleDequeue(seqs);
    const registered = res;
    try {
      this.intake.addLocal(
        registered,
        (i, outcome) =>
          this.settleRegistered(toSend[i] as WriteJob, registered[i] as Event, outcome),
        toSend.map(knownOf),
      );
      this.intake.release();
      this.snapshot?.flushDequeue();
    } catch (err) {
      this.logger.error({ err }, 'event backend: cannot apply registered events; reconnecting');
      for (const j of toSend)
        this.failJob(
          j,
          new BackendError('internal', 'registered, but could not be applied locally'),
        );
      void this.session.dropConnection();
    }
    this.updateGauges();
  }

  /** Settles one of our writes once its registered event is applied. */
  private settleRegistered(job: WriteJob, event: Event, outcome: EventOutcome): void {
    this.pending.remove(job);
    if (job.durableSeq !== null) {
      this.pending.durableDone(job);
      return;
    }
    if (outcome.kind === 'duplicate') {
      // Our own, new event cannot have been applied before: Hat's event ids went backwards under
      // this connection (its store was reset). The state no longer matches Hat; acknowledging
      // with it would report metadata (and serve bytes) that are not this write's. Reconnecting
      // makes recovery find the checkpoint gone and rebuild.
      this.rejectJob(
        job,
        new BackendError(
          'unavailable',
          `Hat registered the write as event ${refKey(outcome.ref)}, at or before events already applied: its event ids went backwards (was its store reset?); the write is in Hat, but this daemon must rebuild its state from Hat first (reconnecting)`,
        ),
      );
      if (!this.resyncRequested) {
        this.resyncRequested = true;
        this.logger.warn(
          { eventId: refKey(outcome.ref) },
          'event backend: Hat event ids went backwards; reconnecting to rebuild',
        );
        void this.session.dropConnection();
      }
      return;
    }
    const entry =
      outcome.kind === 'applied' ? outcome.entry : (this.state.get(job.instanceId) ?? null);
    if (entry === null || outcome.kind === 'malformed') {
      this.rejectJob(job, new BackendError('internal', 'registered event could not be applied'));
      return;
    }
    if (this.config.ack === 'persisted') {
      this.persistedAcks.wait(event.id, this.config.requestTimeoutMs).then(
        () => job.settle?.resolve(entry, 'persisted'),
        (err: Error) => this.rejectJob(job, new BackendError('unavailable', err.message)),
      );
    } else {
      job.settle?.resolve(entry, 'registered');
    }
  }

  /** Re-checks a direct write against the state right before it is sent (durable ones always go). */
  private validateAtSend(job: WriteJob): boolean {
    if (job.durableSeq !== null || (job.op === 'create' && job.chosenId !== true)) return true;
    try {
      if (job.op === 'create') {
        checkChosenIdAtSend(job.instanceId, this.state.get(job.instanceId));
        return true;
      }
      const proj = this.pending.project(job.instanceId, job);
      checkProjection(job.instanceId, job.expectedRevision, proj);
      return true;
    } catch (err) {
      this.failJob(job, err as BackendError);
      return false;
    }
  }

  private failJob(job: WriteJob, err: BackendError): void {
    if (job.durableSeq !== null) {
      // Stays queued in the snapshot; sent again the next time the backend goes online.
      this.pending.durableFailed(job);
      return;
    }
    this.pending.remove(job);
    this.rejectJob(job, err);
  }

  private rejectJob(job: WriteJob, err: BackendError): void {
    const s = job.settle;
    job.settle = null;
    s?.reject(err);
  }

  /** Fails every direct write still waiting in the pipeline. */
  private failWaiting(err: BackendError): void {
    const waiting = this.pipeline.drain();
    for (const j of waiting) {
      leaveRoom(j);
      this.failJob(j, err);
    }
    this.updateGauges();
  }

  // ---- helpers -------------------------------------------------------------------------------

  /** Opens and reads the snapshot (a damaged file is replaced and rebuilt from Hat). */
  private openSnapshot(path: string): { store: SnapshotStore; loaded: SnapshotState } {
    const opened = SnapshotStore.openAndLoad(path, this.config.modelPrefix);
    const issue = opened.store.issue;
    if (issue !== null) {
      this.logger.warn(
        { snapshot: path, issue: issue.kind, movedTo: issue.movedTo },
        `event backend: snapshot unusable (${issue.detail}); rebuilding it from Hat`,
      );
    }
    return opened;
  }

  /** Loads what the snapshot held into the state, the id allocator and the queue of writes. */
  private loadSnapshot(snap: SnapshotStore, s: SnapshotState): void {
    this.state.load(s.entries, s.checkpoint, s.highWater);
    this.ids.observe(this.state.highWater);
    if (snap.revisionsProvisional()) {
      // Stopped before a latest_then_history replay completed: replay again (ids stay reserved).
      this.logger.warn(
        { snapshot: snap.path },
        'event backend: the snapshot holds provisional revisions (the history was not complete); replaying from Hat',
      );
      this.state.reset();
    }
    for (const q of s.queue) this.restoreQueued(q);
    this.logger.info(
      {
        snapshot: snap.path,
        models: this.state.size,
        queued: s.queue.length,
        checkpoint: s.checkpoint === null ? null : refKey(s.checkpoint),
      },
      'event backend: snapshot loaded',
    );
  }

  private restoreQueued(q: QueuedWrite): void {
    const job = restoredJob(q);
    this.ids.observe(q.instanceId);
    this.pending.add(job);
    this.pending.addDurable(job);
  }

  private isClosed(): boolean {
    return this.phase === 'closed';
  }

  private checkWritable(): void {
    if (this.closing !== null) throw new BackendError('closed', 'backend is closed');
  }

  private computeReady(): boolean {
    if (this.phase === 'online') return true;
    return (
      (this.phase === 'offline' || this.phase === 'standby') &&
      this.config.queueWhenDisconnected &&
      this.snapshot?.isSynced() === true
    );
  }

  private markReadyIfReady(): void {
    if (this.isReady || !this.computeReady()) return;
    this.isReady = true;
    this.readyResolve();
  }

  private detail(): string {
    switch (this.phase) {
      case 'connecting':
        return 'connecting to Hat';
      case 'recovering':
        return `recovering from Hat (${this.recoveryProgress} events so far)`;
      case 'standby':
        return `connected, Hat server status is ${this.serverStatus ?? 'unknown'}`;
      case 'online':
        return this.completion.pending
          ? `online, completing history (revisions of ${this.completion.size} models not exact yet)`
          : 'online';
      case 'offline':
        return `Hat unreachable (${this.lastError || 'no connection'})`;
      case 'closed':
        return 'closed';
    }
  }

  private updateGauges(): void {
    this.metrics.pipelineDepth.set(this.pipeline.depth);
    this.metrics.snapshotQueueDepth.set(this.pending.durableCount);
  }
}
