/**
 * The writes not yet in Hat, as the backend must see them: the unsettled jobs per instance id, in
 * order (the projection that compare-and-set and existence checks use), and the durable jobs — the
 * snapshot's queue of writes acked `queued` — by queue sequence, with those already handed to the
 * pipeline. Reads of a model with queued writes are answered from here.
 *
 * A durable job holds no payload: its event (the model's bytes) is in the snapshot's queue, read
 * back when the write is sent or its model is read. Memory holds ids, metadata and order only, so
 * it does not grow with the bytes written during an outage (`heldBytes` says what jobs do hold).
 */

import { BackendError, type ModelMeta } from '../../backend/types.js';
import type { RegisterEvent } from '../../hat/eventer/common.js';
import { decodeModelEvent } from './format.js';
import type { ModelState } from './state.js';
import { heldBytesOf, type WriteJob } from './write-jobs.js';

/** Reads a queued write's event back from the snapshot's queue (null: not in the queue). */
export type QueuedEventReader = (seq: number) => RegisterEvent | null;

/** An id's applied state with its unsettled writes folded in. */
export interface Projection {
  exists: boolean;
  modelType: string;
  revision: number;
}

export class PendingWrites {
  /** Unsettled jobs per instance id, in order (the projection for CAS and existence checks). */
  private readonly pending = new Map<number, WriteJob[]>();
  /** Durable (queued) jobs not yet in Hat, by queue sequence. */
  private readonly durable = new Map<number, WriteJob>();
  /** Durable jobs handed to the pipeline and not yet settled or failed (never pushed twice). */
  private readonly durableActive = new Set<WriteJob>();

  constructor(
    private readonly state: ModelState,
    private readonly prefix: readonly string[],
    private readonly readQueued: QueuedEventReader | null = null,
  ) {}

  /** Payload bytes (events, model copies) the unsettled jobs hold in memory; queued ones hold none. */
  get heldBytes(): number {
    let n = 0;
    for (const list of this.pending.values()) for (const j of list) n += heldBytesOf(j);
    return n;
  }

  /** A job's event: in memory, or read back from the snapshot's queue for a queued write. */
  eventOf(job: WriteJob): RegisterEvent {
    if (job.event !== null) return job.event;
    const event =
      job.durableSeq === null || this.readQueued === null ? null : this.readQueued(job.durableSeq);
    if (event === null)
      throw new BackendError(
        'internal',
        `queued write ${job.durableSeq ?? '?'} to model ${job.instanceId} is missing from the snapshot queue`,
      );
    return event;
  }

  /** Whether any write to `instanceId` is unsettled. */
  has(instanceId: number): boolean {
    return this.pending.has(instanceId);
  }

  add(job: WriteJob): void {
    const list = this.pending.get(job.instanceId);
    if (list === undefined) this.pending.set(job.instanceId, [job]);
    else list.push(job);
  }

  remove(job: WriteJob): void {
    const list = this.pending.get(job.instanceId);
    if (list === undefined) return;
    const i = list.indexOf(job);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.pending.delete(job.instanceId);
  }

  /** The applied state of an id with its unsettled writes folded in (up to, excluding, `upTo`). */
  project(instanceId: number, upTo: WriteJob | null): Projection {
    const e = this.state.get(instanceId);
    const p: Projection = {
      exists: e !== undefined && !e.deleted,
      modelType: e?.modelType ?? '',
      revision: e?.revision ?? 0,
    };
    for (const j of this.pending.get(instanceId) ?? []) {
      if (j === upTo) break;
      p.revision++;
      p.exists = j.op !== 'delete';
      if (j.op !== 'delete') p.modelType = j.modelType;
    }
    return p;
  }

  // ---- the durable queue ---------------------------------------------------------------------

  /** How many queued writes are not yet in Hat. */
  get durableCount(): number {
    return this.durable.size;
  }

  /** A job stored in the snapshot's queue (its `durableSeq` set). */
  addDurable(job: WriteJob): void {
    this.durable.set(job.durableSeq as number, job);
  }

  /** A queued job is in Hat now. */
  durableDone(job: WriteJob): void {
    this.durable.delete(job.durableSeq as number);
    this.durableActive.delete(job);
  }

  /** A queued job failed to go out: it stays queued and is sent again next time. */
  durableFailed(job: WriteJob): void {
    this.durableActive.delete(job);
  }

  /** The queued jobs not in the pipeline now, in queue order; they count as handed over. */
  takeDurableToSend(): WriteJob[] {
    const out: WriteJob[] = [];
    for (const job of [...this.durable.values()].sort(
      (a, b) => (a.durableSeq ?? 0) - (b.durableSeq ?? 0),
    )) {
      if (this.durableActive.has(job)) continue; // still in the pipeline or in flight
      this.durableActive.add(job);
      out.push(job);
    }
    return out;
  }

  hasDurable(instanceId: number): boolean {
    return (this.pending.get(instanceId) ?? []).some((j) => j.durableSeq !== null);
  }

  /** The models as listed, with what their queued writes make of them. */
  overlay(metas: ModelMeta[]): ModelMeta[] {
    if (this.durable.size === 0) return metas;
    const byId = new Map(metas.map((m) => [m.instanceId, m]));
    for (const id of this.durableIds()) {
      const m = this.queuedMeta(id);
      if (m === null) byId.delete(id);
      else byId.set(id, m);
    }
    return [...byId.values()].sort((a, b) => a.instanceId - b.instanceId);
  }

  /** {@link overlay} for the ids in (`after`, `upTo`] (a page of a paged listing). */
  overlayRange(metas: ModelMeta[], after: number, upTo: number): ModelMeta[] {
    if (this.durable.size === 0) return metas;
    const byId = new Map(metas.map((m) => [m.instanceId, m]));
    for (const id of this.durableIds()) {
      if (id <= after || id > upTo) continue;
      const m = this.queuedMeta(id);
      if (m === null) byId.delete(id);
      else byId.set(id, m);
    }
    return [...byId.values()].sort((a, b) => a.instanceId - b.instanceId);
  }

  /** A model's metadata as its queued writes leave it (null when they delete it); reads no bytes. */
  queuedMeta(instanceId: number): ModelMeta | null {
    const last = this.lastModelWrite(instanceId);
    return last === null ? null : last.meta;
  }

  /** A model as its queued writes leave it (null when they delete it). */
  queuedModel(instanceId: number): { meta: ModelMeta; instance: Uint8Array } | null {
    const last = this.lastModelWrite(instanceId);
    if (last === null) return null;
    // A queued write's bytes are read from the snapshot (one model at a time), not kept in memory.
    const decoded = decodeModelEvent(this.prefix, this.eventOf(last.job));
    if (decoded.kind !== 'model') return null;
    return { meta: last.meta, instance: decoded.instance };
  }

  /** The last create/update of a model with its unsettled writes (null when they delete it). */
  private lastModelWrite(instanceId: number): { job: WriteJob; meta: ModelMeta } | null {
    const p = this.project(instanceId, null);
    if (!p.exists) return null;
    const jobs = this.pending.get(instanceId) ?? [];
    const job = [...jobs].reverse().find((j) => j.op !== 'delete');
    if (job === undefined) return null;
    const meta: ModelMeta = {
      instanceId,
      modelType: p.modelType,
      revision: p.revision,
      size: job.size,
      sha256: job.sha256,
      updated: job.queuedAt,
    };
    return { job, meta };
  }

  private durableIds(): number[] {
    return [...new Set([...this.durable.values()].map((j) => j.instanceId))];
  }
}

/** Refuses a write to a model that does not exist, or is not at `expectedRevision`, as projected. */
export function checkProjection(
  instanceId: number,
  expectedRevision: number | undefined,
  p: Projection,
): void {
  if (!p.exists) throw new BackendError('not_found', `model ${instanceId} not found`);
  if (expectedRevision !== undefined && expectedRevision !== p.revision)
    throw new BackendError(
      'revision_conflict',
      `model ${instanceId} is at revision ${p.revision}, expected ${expectedRevision}`,
    );
}
