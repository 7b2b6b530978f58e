/**
 * One write on its way to Hat, as a job: how a create, update or delete becomes a `WriteJob` (its
 * register event, sizes, sha256), how a write restored from the snapshot's queue becomes one, what
 * we tell the state about our own write's event, and the checks of a write's arguments.
 */
import { sha256Of } from '../../backend/sha256.js';
import { type AckLevel, BackendError } from '../../backend/types.js';
import type { RegisterEvent } from '../../hat/eventer/common.js';
import type { Ticket } from './admission.js';
import { modelRegisterEvent, registerEventSize, tombstoneRegisterEvent } from './format.js';
import type { QueuedWriteMeta } from './snapshot.js';
import type { KnownModel } from './state.js';
import type { ModelEntry } from './store.js';

export type Op = 'create' | 'update' | 'delete';

/** One write on its way to Hat. Direct jobs have a caller waiting; durable ones were acked `queued`. */
export interface WriteJob {
  op: Op;
  instanceId: number;
  modelType: string;
  /**
   * Its register event; null for a write acked `queued`, whose event (the model's bytes) stays in
   * the snapshot's queue and is read back only while the write is sent (memory does not grow with
   * an outage).
   */
  event: RegisterEvent | null;
  /** The register event's size (registerEventSize), also while `event` is not in memory. */
  bytes: number;
  size: number;
  sha256: string;
  expectedRevision: number | undefined;
  /** A private copy of the caller's bytes (null for deletes and for writes restored from the queue). */
  instance: Uint8Array | null;
  durableSeq: number | null;
  queuedAt: string;
  /** A create at an id the caller chose (`createModelAt`): re-checked before it is sent. */
  chosenId?: boolean;
  /** Its room in the pipeline (admission.ts), given back once the write leaves it. */
  ticket: Ticket | null;
  settle: {
    resolve(entry: ModelEntry, ack: AckLevel): void;
    reject(err: BackendError): void;
  } | null;
}

/**
 * A create or update; `copy`: the job's own copy of the caller's bytes; `given`: the caller's hash
 * and base64 of them (`CreateOptions.sha256`, `.base64`), used instead of hashing and encoding
 * again when well-formed.
 */
export function modelJob(
  prefix: readonly string[],
  op: Op,
  instanceId: number,
  modelType: string,
  copy: Uint8Array,
  expectedRevision: number | undefined,
  given: { sha256?: string; base64?: string } = {},
): WriteJob {
  const event = modelRegisterEvent(prefix, instanceId, modelType, copy, given.base64);
  return {
    op,
    instanceId,
    modelType,
    event,
    instance: copy,
    bytes: registerEventSize(event),
    size: copy.length,
    sha256: sha256Of(copy, given.sha256),
    expectedRevision,
    durableSeq: null,
    queuedAt: new Date().toISOString(),
    ticket: null,
    settle: null,
  };
}

/** A delete (a tombstone event) holding `ticket`. */
export function deleteJob(
  prefix: readonly string[],
  instanceId: number,
  modelType: string,
  expectedRevision: number | undefined,
  ticket: Ticket,
): WriteJob {
  const event = tombstoneRegisterEvent(prefix, instanceId);
  return {
    op: 'delete',
    instanceId,
    modelType,
    event,
    bytes: registerEventSize(event),
    size: 0,
    sha256: '',
    expectedRevision,
    instance: null,
    durableSeq: null,
    queuedAt: new Date().toISOString(),
    ticket,
    settle: null,
  };
}

/**
 * A write the snapshot's queue held when the backend started (no caller waits for it); its event
 * stays in the snapshot until it is sent.
 */
export function restoredJob(q: QueuedWriteMeta): WriteJob {
  return {
    op: q.op,
    instanceId: q.instanceId,
    modelType: q.modelType,
    event: null,
    bytes: q.eventBytes,
    size: q.size,
    sha256: q.sha256,
    expectedRevision: undefined,
    instance: null,
    durableSeq: q.seq,
    queuedAt: q.queuedAt,
    ticket: null,
    settle: null,
  };
}

/** Model and event bytes a job holds in memory (0 for a queued one whose event is on disk). */
export function heldBytesOf(job: WriteJob): number {
  return (job.event === null ? 0 : job.bytes) + (job.instance?.byteLength ?? 0);
}

/** Gives a write's pipeline room back (once). */
export function leaveRoom(job: WriteJob): void {
  job.ticket?.release();
  job.ticket = null;
}

/** What we know of our own write's event (see {@link KnownModel}). */
export function knownOf(job: WriteJob): KnownModel | undefined {
  if (job.instance === null || job.event?.payload?.kind !== 'json') return undefined;
  return {
    event: {
      kind: 'model',
      instanceId: job.instanceId,
      modelType: job.modelType,
      instance: job.instance,
    },
    sha256: job.sha256,
    payload: job.event.payload,
  };
}

export function checkId(instanceId: number): void {
  if (!Number.isSafeInteger(instanceId) || instanceId < 1)
    throw new BackendError('invalid', `instance id must be a positive integer, got ${instanceId}`);
}

export function checkModel(modelType: string, instance: Uint8Array, maxBytes: number): void {
  if (typeof modelType !== 'string')
    throw new BackendError('invalid', 'model type must be a string');
  if (!(instance instanceof Uint8Array))
    throw new BackendError('invalid', 'instance must be bytes (Uint8Array)');
  if (instance.length > maxBytes)
    throw new BackendError(
      'too_large',
      `instance of ${instance.length} bytes exceeds the event backend's max_instance_bytes (${maxBytes}): Hat handles every byte several times, see "Model size" in docs/backend-event.md`,
    );
}
