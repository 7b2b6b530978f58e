/**
 * The backend contract (design §3): what every backend module provides.
 *
 * A backend module exports `create(conf, context)` (sync or async) returning a {@link Backend}, and
 * may export `createSubscription(conf)` returning the Hat event types it needs.
 * Instances are opaque bytes; the daemon never interprets them.
 */
import type { Logger } from 'pino';
import type { Observable } from 'rxjs';
import type { MetricsRegistry } from '../common/metrics.js';

/** Metadata of a stored model: everything but the instance bytes. */
export interface ModelMeta {
  /** Positive integer allocated by the backend. */
  instanceId: number;
  modelType: string;
  /** 1 on create, +1 on every write of this id (a delete's tombstone takes the next one too). */
  revision: number;
  /** Instance size in bytes. */
  size: number;
  /** Lowercase hex SHA-256 of the instance bytes. */
  sha256: string;
  /** ISO-8601 UTC time of the last write (as the backend knows it). */
  updated: string;
  /**
   * Present (true) only while `revision` is a lower bound that will rise to the exact count without
   * a write: the event backend completing a start without a snapshot (docs/backend-event.md). Such a
   * revision cannot pass a compare-and-set; an `updated` change with the exact revision follows.
   */
  revisionProvisional?: true;
  /**
   * The media type given with the write of this revision (`CreateOptions.contentType`), where the
   * backend keeps one (sqlite does, the event backend does not: AIMM's event payload has no
   * room). Absent: unknown (another writer, or none given).
   */
  contentType?: string;
}

export interface Model extends ModelMeta {
  instance: Uint8Array;
}

/** Bytes `start` (inclusive) to `end` (exclusive) of a model. */
export interface ByteSpan {
  start: number;
  end: number;
}

/** What {@link Backend.getModelRange} read: the metadata, and the span picked (if any). */
export interface ModelRange {
  meta: ModelMeta;
  span: ByteSpan | null;
  /** The span's bytes (`span.end - span.start` of them); empty when no span was picked. */
  bytes: Uint8Array;
}

export type ChangeKind = 'created' | 'updated' | 'deleted';
/** `local`: written through this daemon; `remote`: another writer (AIMM, a second daemon, ...). */
export type ChangeOrigin = 'local' | 'remote';

export interface ModelChange {
  change: ChangeKind;
  instanceId: number;
  modelType: string;
  revision: number;
  origin: ChangeOrigin;
  /** Present for created/updated: the model's new metadata. */
  meta?: ModelMeta;
  /** As {@link ModelMeta.revisionProvisional}: `revision` is a lower bound (deletions included). */
  revisionProvisional?: true;
}

/**
 * What an acknowledgement means:
 * - `committed`: in the SQLite file (sqlite backend);
 * - `registered`: the Hat server answered the register request;
 * - `persisted`: the Hat server reported the event flushed to disk;
 * - `queued`: Hat unreachable, the write is durable in the local snapshot and will be sent in order on reconnect.
 */
export type AckLevel = 'committed' | 'registered' | 'persisted' | 'queued';

/** Options of every write that stores bytes (create, createAt, update). */
export interface CreateOptions {
  /**
   * The caller gives up the instance buffer: it will neither change nor reuse it, so the backend
   * may keep it (and the memory under it) instead of taking a private copy. Set it only for a
   * buffer that nothing else references (a freshly received request body, a freshly decoded
   * base64 string). Without it (the default) the backend copies what it keeps before the call
   * returns, so the caller may change its buffer at once.
   */
  handOver?: boolean;
  /**
   * The instance's SHA-256 (64 lowercase hex digits) as the caller computed it from exactly these
   * bytes, e.g. chunk by chunk while receiving them: a backend may use it instead of hashing the
   * bytes again (others ignore it). Set it only for bytes you hashed yourself; a value that is not
   * 64 hex digits is ignored.
   */
  sha256?: string;
  /**
   * The instance as standard padded base64, exactly what `Buffer.from(instance).toString('base64')`
   * gives (e.g. the text the caller strictly decoded the instance from): a backend that sends the
   * model as base64 may use it instead of encoding the bytes again (others ignore it). A string of
   * another length than the bytes' base64 is ignored.
   */
  base64?: string;
  /**
   * The instance's media type (`type/subtype[; params]`, see `backend/content-type.ts`), kept as
   * `ModelMeta.contentType` of the revision written, by a backend that can (others ignore it).
   * A write without it leaves the new revision's type unknown.
   */
  contentType?: string;
}

export interface WriteOptions extends CreateOptions {
  /** Compare-and-set: the write fails with `revision_conflict` unless the stored revision equals this. */
  expectedRevision?: number;
}

export interface WriteResult {
  meta: ModelMeta;
  ack: AckLevel;
}

export interface DeleteResult {
  instanceId: number;
  modelType: string;
  /** Revision of the tombstone. */
  revision: number;
  ack: AckLevel;
  /** As {@link ModelMeta.revisionProvisional}. */
  revisionProvisional?: true;
}

/** One revision of a model, as its history lists it (oldest first). */
export interface ModelRevision {
  instanceId: number;
  revision: number;
  modelType: string;
  /** Bytes of this revision (0 for a deletion). */
  size: number;
  /** Lowercase hex SHA-256 of this revision's bytes; null for a deletion. */
  sha256: string | null;
  /** ISO-8601 UTC time this revision was written. */
  updated: string;
  /** This revision is a deletion (a tombstone). */
  deleted: boolean;
  /** Who wrote it, when the backend knows: `local` (this store) or `remote` (another writer). */
  origin: ChangeOrigin | null;
  /** The revision's bytes can be read with `getRevision` (false for deletions and pruned bytes). */
  available: boolean;
  /** This is the model's current revision (the newest). */
  current: boolean;
  /** The media type this revision was written with, where the backend keeps it (absent: unknown). */
  contentType?: string;
}

export interface HistoryOptions {
  /** Only revisions above this one (paging). */
  after?: number;
  /** At most this many entries (the backend may cap it). */
  limit?: number;
}

export interface ListOptions {
  /** Only models with a higher id (paging: the last id of the previous page). */
  after?: number;
  /** At most this many (default 1000; the backend may cap it). */
  limit?: number;
}

export interface BackendStatus {
  /** Recovered and able to serve (for the event backend: also connected, or queuing into a snapshot). */
  ready: boolean;
  /** For backends with a remote peer: is it connected now. */
  connected?: boolean;
  /** Human-readable state, e.g. 'recovering 1200/10000', 'hat unreachable'. */
  detail?: string;
}

export interface Backend {
  /** Metadata of every stored model (deleted ones excluded), ascending by id. */
  getModels(): Promise<ModelMeta[]>;
  /**
   * Optional: one page of {@link getModels} — the live models with an id above `after`, ascending
   * by id, at most `limit` — so that a caller walking every model (export, import, migrate) holds
   * one page at a time. Pages may be shorter than `limit`; an empty page ends the listing. Use
   * {@link listModelPages} to walk them (it falls back to `getModels()` without this method).
   */
  listModels?(options?: ListOptions): Promise<ModelMeta[]>;
  /** One model with its bytes, or null when it does not exist (or was deleted). */
  getModel(instanceId: number): Promise<Model | null>;
  /**
   * Optional: part of a model without reading all of it (HTTP `Range`). Reads the metadata,
   * asks `pick` which bytes to read (`end` exclusive, within `meta.size`; null: none), and reads
   * just those — both from the same revision. Null when the model does not exist.
   */
  getModelRange?(
    instanceId: number,
    pick: (meta: ModelMeta) => ByteSpan | null,
  ): Promise<ModelRange | null>;
  /** Stores a new model; the backend allocates the id. */
  createModel(
    modelType: string,
    instance: Uint8Array,
    options?: CreateOptions,
  ): Promise<WriteResult>;
  /** Replaces an existing model's type and bytes; `not_found` if it does not exist. */
  updateModel(
    instanceId: number,
    modelType: string,
    instance: Uint8Array,
    options?: WriteOptions,
  ): Promise<WriteResult>;
  /** Deletes a model; `not_found` if it does not exist. Its id is never reused. */
  deleteModel(instanceId: number, options?: WriteOptions): Promise<DeleteResult>;
  /**
   * Optional: stores a new model at an id the caller chose (HTTP `PUT /models/{id}` of a new id,
   * an import that keeps ids). Fails with `revision_conflict` when the id holds a model, was ever
   * used (deleted ids are never reused) or — for backends that cannot tell every id ever used —
   * might have been; the message says which. Ids the backend allocates afterwards lie past it.
   * The result is a `created` change with revision 1 (or, where the backend counts revisions of
   * an id across deletes, the next one).
   */
  createModelAt?(
    instanceId: number,
    modelType: string,
    instance: Uint8Array,
    options?: CreateOptions,
  ): Promise<WriteResult>;
  /**
   * Optional: the largest instance (bytes) this backend stores; larger writes fail with
   * `too_large`. Controls use it to refuse an oversized upload before reading it.
   */
  readonly maxInstanceBytes?: number;
  /** Every change, local or remote, after it is acknowledged/applied. Hot; never errors or completes before close. */
  readonly changes$: Observable<ModelChange>;
  /** Current readiness for /readyz and systemd. */
  status(): BackendStatus;
  /** Resolves once recovery is done (immediately for backends without recovery). */
  whenReady(): Promise<void>;
  /**
   * Optional: resolves once every change the backend's store had when called is applied here
   * (for the event backend: every event under the prefix that Hat holds), so that ids continue past
   * them and revisions are exact. Called before a standby of a redundant group starts writing;
   * rejects with `unavailable` when it cannot tell (e.g. not connected).
   */
  sync?(): Promise<void>;
  /**
   * Optional: a model's revisions, oldest first, as far as the backend keeps them (deleted models
   * included); null when the id was never used. See each backend's docs for what it keeps.
   */
  getHistory?(instanceId: number, options?: HistoryOptions): Promise<ModelRevision[] | null>;
  /** Optional: one revision with its bytes, or null when it is not kept (or was a deletion). */
  getRevision?(instanceId: number, revision: number): Promise<Model | null>;
  /** Stops accepting writes, finishes or fails in-flight ones, releases files and connections. Idempotent. */
  close(): Promise<void>;
}

/** What the daemon gives a backend (design §3: backends know nothing of clients or of the daemon). */
export interface BackendContext {
  /** The daemon's `name` from its config. */
  name: string;
  logger: Logger;
  metrics: MetricsRegistry;
  /** The Hat connection factory when the config has a `hat` section, else null. */
  hat: HatConnector | null;
}

/**
 * Opens eventer connections to the configured Hat server(s). The backend owns the connections it
 * opens (and their reconnection); the daemon owns addresses, client name and token.
 */
export interface HatConnector {
  /** Addresses in fail-over order, for logs and status. */
  readonly addresses: readonly { host: string; port: number }[];
  connect(options: HatConnectOptions): Promise<import('../hat/eventer/common.js').EventerClient>;
}

export interface HatConnectOptions {
  /** Query event types to subscribe to (§4.5 wildcards). */
  subscriptions: string[][];
  /** Subscribe to the persisted stream instead of the registered one. */
  persisted?: boolean;
  /** Suffix for the client name, e.g. 'persisted' → '<name>/persisted'. */
  nameSuffix?: string;
}

export type BackendErrorCode =
  | 'not_found'
  | 'revision_conflict'
  | 'unavailable'
  | 'invalid'
  | 'too_large'
  | 'closed'
  /** A standby of a redundant group: writes go to the active instance (the message names it). */
  | 'not_active'
  | 'internal';

/** Every failure a backend reports to its callers. `message` is fit for a client. */
export class BackendError extends Error {
  readonly code: BackendErrorCode;
  constructor(code: BackendErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackendError';
    this.code = code;
  }
}

/** The shape of a backend module (what `import(conf.module)` must yield). */
export interface BackendModule {
  create(conf: BackendConf, context: BackendContext): Backend | Promise<Backend>;
  createSubscription?(conf: BackendConf): string[][];
}

/** `backend` section of the daemon config: `module` plus the implementation's own properties. */
export interface BackendConf {
  module: string;
  [key: string]: unknown;
}
