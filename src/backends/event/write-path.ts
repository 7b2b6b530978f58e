/**
 * The write path: a write's room in the pipeline (backpressure), where it goes (to Hat, or into the
 * snapshot's queue when Hat is away), the batched register requests, and how each write is settled
 * — from its event in the register response (`registered`), its persisted notification
 * (`persisted`), or once stored in the queue (`queued`) — or failed. Queued writes are sent, in
 * their order, each time the backend goes online.
 */
import type { Logger } from 'pino';
import { BackendError, type WriteResult } from '../../backend/types.js';
import { busyAllowanceMs } from '../../hat/chatter/connection.js';
import type { Event, RegisterEvent } from '../../hat/eventer/common.js';
import { Admission, type Ticket } from './admission.js';
import { checkChosenIdAtSend } from './chosen-id.js';
import type { EventBackendConfig } from './config.js';
import { compareRefs, type EventRef, refKey, refOf } from './event-ref.js';
import type { EventIntake } from './intake.js';
import type { EventMetrics } from './metrics.js';
import { checkProjection, type PendingWrites } from './pending-writes.js';
import type { PersistedAcks } from './persisted-acks.js';
import type { PhaseState } from './phase.js';
import type { HatSession } from './session.js';
import type { SnapshotStore } from './snapshot.js';
import { type EventOutcome, type ModelState, metaOf } from './state.js';
import { RequestTimeoutError, withTimeout } from './timeout.js';
import { knownOf, leaveRoom, type WriteJob } from './write-jobs.js';
import { WritePipeline } from './write-pipeline.js';

export interface WritePathDeps {
  config: EventBackendConfig;
  logger: Logger;
  metrics: EventMetrics;
  /** Read for where writes go; set `offline` when a register request times out. */
  phase: PhaseState;
  session: Pick<HatSession, 'current' | 'dropConnection'>;
  intake: EventIntake;
  state: ModelState;
  snapshot: SnapshotStore | null;
  pending: PendingWrites;
  persistedAcks: PersistedAcks;
}

export class WritePath {
  private readonly config: EventBackendConfig;
  private readonly logger: Logger;
  private readonly metrics: EventMetrics;
  private readonly phase: PhaseState;
  private readonly session: Pick<HatSession, 'current' | 'dropConnection'>;
  private readonly intake: EventIntake;
  private readonly state: ModelState;
  private readonly snapshot: SnapshotStore | null;
  private readonly pending: PendingWrites;
  private readonly persistedAcks: PersistedAcks;
  /** Room in the pipeline: writers wait here when it is full (backpressure). */
  private readonly room: Admission;
  private readonly pipeline: WritePipeline<WriteJob>;
  /**
   * Counts register requests whose outcome is unknown (failed, timed out, answered wrongly): a
   * request sent before such a failure and answered after it is not applied (see processBatch).
   */
  private epoch = 0;
  /** Request bytes of the register requests in flight (their timeouts allow for all of them). */
  private bytesInFlight = 0;

  constructor(deps: WritePathDeps) {
    this.config = deps.config;
    this.logger = deps.logger;
    this.metrics = deps.metrics;
    this.phase = deps.phase;
    this.session = deps.session;
    this.intake = deps.intake;
    this.state = deps.state;
    this.snapshot = deps.snapshot;
    this.pending = deps.pending;
    this.persistedAcks = deps.persistedAcks;
    const config = deps.config;
    this.room = new Admission(config.maxQueuedWrites, config.maxQueuedBytes);
    this.metrics.pipelineHeld.collect(() => this.room.held);
    this.metrics.pipelineHeldBytes.collect(() => this.room.heldBytes);
    this.metrics.pipelineWaiting.collect(() => this.room.waiting);
    this.metrics.pendingHeldBytes.collect(() => this.pending.heldBytes);
    // Read at render time: also right after a restart restored the queue, before any write.
    this.metrics.snapshotQueueDepth.collect(() => this.pending.durableCount);
    this.pipeline = new WritePipeline<WriteJob>({
      maxBatchItems: config.maxBatchEvents,
      maxBatchBytes: config.maxBatchBytes,
      sizeOf: (j) => j.bytes,
      window: config.maxRegistersInFlight,
      keyOf: (j) => j.instanceId,
      process: async (batch, previous) => {
        try {
          await this.processBatch(batch, previous);
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
  }

  /** Room in the pipeline for a write of `bytes` model bytes; waits while it is full. */
  takeRoom(bytes: number): Promise<Ticket> {
    return this.room.acquire(bytes);
  }

  /**
   * Sends the queued writes first, in their order (the backend just went online). They enter the
   * pipeline as metadata: each batch reads its writes' events back from the snapshot when it is
   * sent, so the backlog holds at most a batch (`max_batch_events`, `max_batch_bytes`) of bytes.
   * They take room without waiting (counted as writes, not bytes: their bytes are on disk), so new
   * writers wait behind the backlog and per-model order holds.
   */
  sendQueued(): void {
    for (const job of this.pending.takeDurableToSend()) {
      job.ticket = this.room.force(0);
      this.pipeline.push(job);
    }
    this.updateGauges();
  }

  /** Resolves once the writes accepted so far (also those waiting for room) have left. */
  whenDrained(): Promise<void> {
    return this.room.whenEmpty().then(() => this.pipeline.whenIdle());
  }

  /** Fails the writes waiting for room (the backend closes). */
  failWaitingForRoom(err: BackendError): void {
    this.room.failWaiting(err);
  }

  /** Resolves once no batch is in flight. */
  whenIdle(): Promise<void> {
    return this.pipeline.whenIdle();
  }

  close(): void {
    this.pipeline.close();
  }

  /** Where a write goes now: to Hat, or into the snapshot's queue. Throws when neither is possible. */
  writeMode(): 'direct' | 'queued' {
    if (this.phase.current === 'online') return 'direct';
    if (this.config.queueWhenDisconnected && this.snapshot !== null) {
      if (this.snapshot.isSynced()) return 'queued';
      throw new BackendError(
        'unavailable',
        `Hat event server unavailable (${this.phase.detail()}) and the snapshot was never synchronised with it, so writes cannot be queued yet`,
      );
    }
    throw new BackendError('unavailable', `Hat event server unavailable: ${this.phase.detail()}`);
  }

  submit(job: WriteJob, mode: 'direct' | 'queued'): Promise<WriteResult> {
    this.pending.add(job);
    if (mode === 'queued') {
      leaveRoom(job); // the snapshot's queue holds it, not the pipeline
      const snapshot = this.snapshot as SnapshotStore;
      const event = this.pending.eventOf(job);
      try {
        job.durableSeq = snapshot.enqueue({
          instanceId: job.instanceId,
          op: job.op,
          modelType: job.modelType,
          event,
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
      // Durable in the snapshot now: its bytes are read back from there when sent or read, so a
      // long outage grows the snapshot file, not the daemon's memory.
      job.event = null;
      job.instance = null;
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

  /**
   * Sends one batch as one register request and settles its writes from the response, once the
   * batch sent before it (`previous`) is done.
   */
  private async processBatch(batch: WriteJob[], previous: Promise<void>): Promise<void> {
    this.updateGauges();
    const conn = this.session.current;
    if (this.phase.current !== 'online' || conn === null) {
      for (const j of batch)
        this.failJob(
          j,
          new BackendError('unavailable', `Hat event server unavailable: ${this.phase.detail()}`),
        );
      return;
    }
    const toSend = batch.filter((j) => this.validateAtSend(j));
    if (toSend.length === 0) return;
    let events: RegisterEvent[];
    try {
      // Queued writes' events are read back from the snapshot here, one batch at a time; the
      // batch's array is the only place they are held, and it is dropped once the request is done.
      events = toSend.map((j) => this.pending.eventOf(j));
    } catch (err) {
      this.logger.error({ err }, 'event backend: cannot read queued writes from the snapshot');
      for (const j of toSend)
        this.failJob(j, new BackendError('internal', 'cannot read the write from the snapshot'));
      // Later batches must not overtake the failed ones: reconnecting sends the queue again.
      this.phase.current = 'offline';
      this.phase.lastError = `cannot read queued writes from the snapshot: ${(err as Error).message}`;
      void this.session.dropConnection();
      return;
    }
    const requestBytes = toSend.reduce((n, j) => n + j.bytes, 0);
    this.metrics.registerEvents.inc({}, events.length);
    this.metrics.registerBytes.inc({}, requestBytes);
    this.intake.holdRegister();
    const epoch = this.epoch;
    // Hat works through the requests ahead of this one first, and a large request takes a while
    // (it decodes, stores, notifies and answers with the events): the timeout grows with the bytes
    // in flight as the chatter ping allowance does.
    this.bytesInFlight += requestBytes;
    const answer = withTimeout(
      conn.main.register(events),
      this.config.requestTimeoutMs + busyAllowanceMs(this.bytesInFlight),
      'register request',
    ).then(
      (res) => ({ res, err: null }),
      (err: Error) => ({ res: null, err }),
    );
    const outcome = await answer;
    this.bytesInFlight -= requestBytes;
    // Results are applied in send order: after every batch sent before this one is done.
    await previous;
    let failure = outcome.err;
    if (failure === null && this.epoch !== epoch)
      failure = new Error('a register request sent before it on this connection failed');
    if (failure !== null) {
      // Whatever this request did in Hat is unknown; the requests sent after it must not be
      // applied over it either (recovery after reconnecting reads them from Hat).
      this.epoch++;
      this.intake.releaseRegister(null);
      this.metrics.registerRequests.inc({ result: 'error' });
      const msg = failure.message;
      for (const j of toSend)
        this.failJob(
          j,
          new BackendError(
            'unavailable',
            `Hat connection failed before the register response (${msg}); the write may or may not be stored`,
          ),
        );
      if (failure instanceof RequestTimeoutError && this.phase.current === 'online') {
        // The connection is suspect: stop using it now and reconnect.
        this.phase.current = 'offline';
        this.phase.lastError = msg;
        void this.session.dropConnection();
      }
      return;
    }
    const res = outcome.res;
    if (res === null || res.length !== events.length) {
      const refused = res === null;
      // A refusal registered nothing: the batches after it are about other models (the window
      // never holds two batches sharing one) and go on. A wrong count is a broken answer: the
      // batches after it fail as a connection failure would.
      if (!refused) this.epoch++;
      this.intake.releaseRegister(null);
      this.metrics.registerRequests.inc({ result: refused ? 'failure' : 'error' });
      const why = refused
        ? `Hat event server refused the register request (status: ${this.phase.serverStatus ?? 'unknown'})`
        : `Hat answered ${res?.length} events for ${events.length}`;
      this.logger.warn({ events: events.length }, `event backend: ${why}`);
      for (const j of toSend) this.failJob(j, new BackendError('unavailable', why));
      if (toSend.some((j) => j.durableSeq !== null) && this.phase.current === 'online') {
        // Queued writes stay queued: the queue's later writes (to the same models too) must not
        // overtake them; reconnecting sends the queue again, in order, once Hat takes writes.
        this.phase.current = 'offline';
        this.phase.lastError = why;
        void this.session.dropConnection();
      }
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
      this.intake.releaseRegister(lastRefOf(registered));
      this.snapshot?.flushDequeue();
    } catch (err) {
      this.epoch++;
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
      if (!this.phase.resyncRequested) {
        this.phase.resyncRequested = true;
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
  failWaiting(err: BackendError): void {
    const waiting = this.pipeline.drain();
    for (const j of waiting) {
      leaveRoom(j);
      this.failJob(j, err);
    }
    this.updateGauges();
  }

  private updateGauges(): void {
    this.metrics.pipelineDepth.set(this.pipeline.depth);
  }
}

/** The latest of a register response's events (Hat's order). */
function lastRefOf(events: readonly Event[]): EventRef | null {
  let last: EventRef | null = null;
  for (const e of events) {
    const ref = refOf(e);
    if (last === null || compareRefs(ref, last) > 0) last = ref;
  }
  return last;
}
