/**
 * The snapshot: a SQLite mirror (better-sqlite3, WAL) of the applied model state — every instance id
 * with its bytes, revision and last event — plus the checkpoint (the last applied event), the id
 * high-water mark and the queue of writes made while Hat was unreachable.
 *
 * Opening checks the file: a file that is not SQLite, fails `quick_check` of the metadata tables,
 * lacks columns, has another format or was written for another prefix is moved aside
 * (`<path>.corrupt-<time>`) or cleared, and the caller rebuilds it from Hat. Bytes live in their
 * own table so that loading the metadata of every model reads none of them. The file is locked (`locking_mode=EXCLUSIVE`): a second process is refused.
 */
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { BLOB_IO_MIN_BYTES, BlobIo, largeValueColumns } from '../../common/sqlite-blob-io.js';
import type { EventPayloadJson, RegisterEvent } from '../../hat/eventer/common.js';
import { markTrustedJsonPayload } from '../../hat/eventer/json.js';
import type { EventRef } from './event-ref.js';
import type { ModelEntry, ModelStore, StoreCommit } from './store.js';

export const SNAPSHOT_FORMAT = 'aimm-store/event-snapshot/2';

/** One write kept while Hat was unreachable. */
export interface QueuedWrite {
  seq: number;
  instanceId: number;
  op: 'create' | 'update' | 'delete';
  modelType: string;
  event: RegisterEvent;
  size: number;
  sha256: string;
  queuedAt: string;
}

/**
 * A queued write without its event (its payload: the model's bytes as base64 JSON), which stays in
 * the file until the write is sent ({@link SnapshotStore.readQueuedEvent}); `eventBytes` is what
 * `registerEventSize` gives for the event.
 */
export interface QueuedWriteMeta extends Omit<QueuedWrite, 'event'> {
  eventBytes: number;
}

export interface SnapshotState {
  entries: ModelEntry[];
  checkpoint: EventRef | null;
  highWater: number;
  /** The queue's writes, metadata only (their events are read when they are sent). */
  queue: QueuedWriteMeta[];
}

/** Why an existing file could not be used as it was (null: it was fine or new). */
export type SnapshotOpenIssue = { kind: 'corrupt' | 'mismatch'; detail: string; movedTo?: string };

export class SnapshotInUseError extends Error {
  constructor(path: string, cause: unknown) {
    super(`snapshot ${path} is in use by another process`, { cause });
    this.name = 'SnapshotInUseError';
  }
}

/** A `snapshot_models` row as `allModels` selects it. */
type ModelRowArray = [
  id: number,
  type: string,
  revision: number,
  size: number,
  sha256: string,
  updated: string,
  deleted: number,
  evServer: number,
  evSession: number,
  evInstance: number,
  evS: number,
  evUs: number,
];

interface QueueMetaRow {
  seq: number;
  id: number;
  op: string;
  type: string;
  event_type: string;
  payload_len: number | null;
  size: number;
  sha256: string;
  queued: string;
}

interface QueueRow {
  seq: number;
  id: number;
  op: string;
  type: string;
  event_type: string;
  payload: string | null;
  size: number;
  sha256: string;
  queued: string;
}

export class SnapshotStore implements ModelStore {
  private readonly db: Database.Database;
  private readonly stmts: ReturnType<typeof prepare>;
  /** Blob handles for large instances (undefined: the extension was not built). */
  private readonly blobIo: BlobIo | undefined;
  private closed = false;
  private readonly dequeueNext = new Set<number>();
  private synced: boolean | null = null;

  private constructor(
    readonly path: string,
    db: Database.Database,
    public issue: SnapshotOpenIssue | null,
  ) {
    this.db = db;
    this.blobIo = BlobIo.load(db).io;
    this.stmts = prepare(db, this.blobIo !== undefined);
  }

  /**
   * Opens (or creates) the snapshot for `prefix`. A corrupt file is moved aside and a fresh one
   * created; a file of another format or prefix is cleared. `issue` says which happened.
   */
  static open(path: string, prefix: readonly string[]): SnapshotStore {
    mkdirSync(dirname(path), { recursive: true });
    try {
      return SnapshotStore.openChecked(path, prefix);
    } catch (err) {
      if (err instanceof SnapshotInUseError) throw err;
      const movedTo = moveAside(path);
      const store = SnapshotStore.openChecked(path, prefix);
      store.issue = { kind: 'corrupt', detail: (err as Error).message, movedTo };
      return store;
    }
  }

  /** Opens one file; throws on anything but a usable (or mismatching, then cleared) snapshot. */
  private static openChecked(path: string, prefix: readonly string[]): SnapshotStore {
    const db = openDb(path);
    try {
      ensureSchema(db);
      // The metadata tables in full; the blobs (most of the file) are checked when read.
      for (const table of ['snapshot_meta', 'snapshot_models', 'snapshot_queue']) {
        const check = db.pragma(`quick_check(${table})`, { simple: true });
        if (check !== 'ok') throw new Error(`quick_check(${table}): ${String(check)}`);
      }
      const meta = readMeta(db);
      const prefixText = JSON.stringify(prefix);
      const fresh = {
        format: SNAPSHOT_FORMAT,
        prefix: prefixText,
        checkpoint: 'null',
        high_water: '0',
      };
      let issue: SnapshotOpenIssue | null = null;
      if (meta.format === undefined && meta.prefix === undefined) writeMeta(db, fresh);
      else {
        let detail: string | null = null;
        if (meta.format !== SNAPSHOT_FORMAT)
          detail = `format '${meta.format ?? '?'}' is not '${SNAPSHOT_FORMAT}'`;
        else if (meta.prefix !== prefixText)
          detail = `written for model_prefix ${meta.prefix ?? '?'}, not ${prefixText}`;
        else {
          try {
            parseCheckpoint(meta.checkpoint);
          } catch (err) {
            detail = `unreadable checkpoint (${(err as Error).message})`;
          }
        }
        if (detail !== null) {
          issue = { kind: 'mismatch', detail };
          db.exec(
            'DROP TABLE IF EXISTS snapshot_models; DROP TABLE IF EXISTS snapshot_blobs; DELETE FROM snapshot_queue;',
          );
          ensureSchema(db);
          writeMeta(db, { ...fresh, synced: '0' });
        }
      }
      // Preparing the statements also checks the tables have the columns we need.
      return new SnapshotStore(path, db, issue);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /**
   * Opens the snapshot and reads it; a file whose rows cannot be read (damage `quick_check` did
   * not see) is moved aside like a corrupt one and a fresh file is used.
   */
  static openAndLoad(
    path: string,
    prefix: readonly string[],
  ): { store: SnapshotStore; loaded: SnapshotState } {
    const store = SnapshotStore.open(path, prefix);
    try {
      return { store, loaded: store.load() };
    } catch (err) {
      store.close();
      const movedTo = moveAside(path);
      const fresh = SnapshotStore.open(path, prefix);
      fresh.issue = { kind: 'corrupt', detail: `unreadable: ${(err as Error).message}`, movedTo };
      return { store: fresh, loaded: fresh.load() };
    }
  }

  /** Everything in the file. */
  load(): SnapshotState {
    const entries: ModelEntry[] = [];
    // Raw rows (arrays, columns in SELECT order) are markedly cheaper than objects for 100k rows.
    for (const r of this.stmts.allModels.raw().iterate() as Iterable<ModelRowArray>)
      entries.push(entryOf(r));
    const meta = readMeta(this.db);
    const checkpoint = parseCheckpoint(meta.checkpoint);
    const highWater = Number(meta.high_water ?? '0') || 0;
    return { entries, checkpoint, highWater, queue: this.listQueueMeta() };
  }

  commit(commit: StoreCommit): void {
    const s = this.stmts;
    this.db.transaction(() => {
      for (const { entry: e, instance } of commit.upserts) {
        s.upsert.run({
          id: e.instanceId,
          type: e.modelType,
          revision: e.revision,
          size: e.size,
          sha256: e.sha256,
          updated: e.updated,
          deleted: e.deleted ? 1 : 0,
          ev_server: e.event.server,
          ev_session: e.event.session,
          ev_instance: e.event.instance,
          ev_s: e.event.s,
          ev_us: e.event.us,
        });
        if (instance === null || e.deleted) s.deleteBlob.run(e.instanceId);
        else this.writeBlob(e.instanceId, instance);
      }
      s.setMeta.run('checkpoint', JSON.stringify(commit.checkpoint));
      s.setMeta.run('high_water', String(commit.highWater));
      if (commit.revisionsProvisional !== undefined)
        s.setMeta.run('revisions_provisional', commit.revisionsProvisional ? '1' : '0');
      for (const seq of this.dequeueNext) s.dequeue.run(seq);
    })();
    this.dequeueNext.clear();
  }

  /** Marks the revisions provisional (`full_replay: latest_then_history`, before `latest` is applied). */
  markRevisionsProvisional(): void {
    this.stmts.setMeta.run('revisions_provisional', '1');
  }

  /** The revisions were left provisional (a restart before the history was complete). */
  revisionsProvisional(): boolean {
    return readMeta(this.db).revisions_provisional === '1';
  }

  /** True once a recovery from Hat completed with this file (queued ids are then trustworthy). */
  isSynced(): boolean {
    this.synced ??= readMeta(this.db).synced === '1';
    return this.synced;
  }

  markSynced(): void {
    if (this.synced === true) return;
    this.stmts.setMeta.run('synced', '1');
    this.synced = true;
  }

  /** Queue entries to delete in the next commit (atomically with applying their events). */
  scheduleDequeue(seqs: readonly number[]): void {
    for (const s of seqs) this.dequeueNext.add(s);
  }

  /** Deletes scheduled queue entries that no commit took (e.g. their events were duplicates). */
  flushDequeue(): void {
    if (this.dequeueNext.size === 0) return;
    this.db.transaction(() => {
      for (const s of this.dequeueNext) this.stmts.dequeue.run(s);
    })();
    this.dequeueNext.clear();
  }

  /** The bytes of a model: a large one as `zeroblob(n)`, then copied in through a blob handle. */
  private writeBlob(instanceId: number, instance: Uint8Array): void {
    const bytes = Buffer.from(instance.buffer, instance.byteOffset, instance.byteLength);
    if (this.blobIo === undefined || bytes.length < BLOB_IO_MIN_BYTES) {
      this.stmts.upsertBlob.run(instanceId, bytes);
      return;
    }
    this.stmts.upsertZeroBlob.run(instanceId, bytes.length);
    this.blobIo.write('snapshot_blobs', 'instance', instanceId, bytes);
  }

  readRange(instanceId: number, start: number, end: number): Uint8Array | null {
    if (this.blobIo !== undefined) {
      // Only the range's pages (substr() loads the whole value first).
      const length = Math.max(0, end - start);
      const bytes = this.blobIo.read('snapshot_blobs', 'instance', instanceId, start, length);
      return bytes === undefined
        ? null
        : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    const row = this.stmts.part.get(start + 1, Math.max(0, end - start), instanceId) as
      | { part: Buffer | null }
      | undefined;
    if (row === undefined || row.part === null) return null;
    return new Uint8Array(row.part.buffer, row.part.byteOffset, row.part.byteLength);
  }

  readInstance(instanceId: number): Uint8Array | null {
    const row = this.stmts.instance.get(instanceId) as
      | { instance: Buffer | null; large: number }
      | undefined;
    if (row === undefined) return null;
    const bytes =
      row.large === 1 ? this.blobIo?.read('snapshot_blobs', 'instance', instanceId) : row.instance;
    if (bytes === undefined || bytes === null) return null;
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  clearModels(): void {
    this.db.transaction(() => {
      this.db.exec('DELETE FROM snapshot_models; DELETE FROM snapshot_blobs;');
      this.stmts.setMeta.run('checkpoint', 'null');
      this.stmts.setMeta.run('synced', '0');
      this.stmts.setMeta.run('revisions_provisional', '0');
    })();
    this.synced = false;
  }

  /** Stores a write durably (synchronous=FULL) and returns its queue sequence number. */
  enqueue(w: Omit<QueuedWrite, 'seq'>): number {
    this.db.pragma('synchronous = FULL');
    try {
      const res = this.stmts.enqueue.run({
        id: w.instanceId,
        op: w.op,
        type: w.modelType,
        event_type: JSON.stringify(w.event.type),
        payload: w.event.payload?.kind === 'json' ? w.event.payload.text : null,
        size: w.size,
        sha256: w.sha256,
        queued: w.queuedAt,
      });
      return Number(res.lastInsertRowid);
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  /** The whole queue with its events (tests and tools; the backend reads metadata only). */
  listQueue(): QueuedWrite[] {
    return (this.stmts.queue.all() as QueueRow[]).map((r) => ({
      seq: r.seq,
      instanceId: r.id,
      op: r.op as QueuedWrite['op'],
      modelType: r.type,
      event: eventOfRow(r),
      size: r.size,
      sha256: r.sha256,
      queuedAt: r.queued,
    }));
  }

  /** The queue in order, without the payloads (they stay on disk; see {@link readQueuedEvent}). */
  listQueueMeta(): QueuedWriteMeta[] {
    const out: QueuedWriteMeta[] = [];
    for (const r of this.stmts.queueMeta.iterate() as Iterable<QueueMetaRow>) {
      const type = JSON.parse(r.event_type) as string[];
      let eventBytes = 16 + (r.payload_len ?? 0);
      for (const seg of type) eventBytes += seg.length + 2;
      out.push({
        seq: r.seq,
        instanceId: r.id,
        op: r.op as QueuedWrite['op'],
        modelType: r.type,
        eventBytes,
        size: r.size,
        sha256: r.sha256,
        queuedAt: r.queued,
      });
    }
    return out;
  }

  /** A queued write's event as it was stored, read back to be sent or read (null: not queued). */
  readQueuedEvent(seq: number): RegisterEvent | null {
    const row = this.stmts.queuedEvent.get(seq) as
      | Pick<QueueRow, 'event_type' | 'payload'>
      | undefined;
    return row === undefined ? null : eventOfRow(row);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}

function openDb(path: string): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(path, { timeout: 0 });
  } catch (err) {
    throw new Error(`cannot open: ${(err as Error).message}`, { cause: err });
  }
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    // Take the exclusive lock now so a second process fails here, not later.
    db.exec('BEGIN EXCLUSIVE; COMMIT');
  } catch (err) {
    db.close();
    const code = (err as { code?: string }).code ?? '';
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))
      throw new SnapshotInUseError(path, err);
    throw err;
  }
  return db;
}

function ensureSchema(db: Database.Database): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS snapshot_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS snapshot_models (
      id INTEGER PRIMARY KEY,
      type TEXT NOT NULL,
      revision INTEGER NOT NULL,
      size INTEGER NOT NULL,
      sha256 TEXT NOT NULL,
      updated TEXT NOT NULL,
      deleted INTEGER NOT NULL,
      ev_server INTEGER NOT NULL,
      ev_session INTEGER NOT NULL,
      ev_instance INTEGER NOT NULL,
      ev_s INTEGER NOT NULL,
      ev_us INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS snapshot_blobs (id INTEGER PRIMARY KEY, instance BLOB NOT NULL);
    CREATE TABLE IF NOT EXISTS snapshot_queue (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id INTEGER NOT NULL,
      op TEXT NOT NULL,
      type TEXT NOT NULL,
      event_type TEXT NOT NULL,
      payload TEXT,
      size INTEGER NOT NULL,
      sha256 TEXT NOT NULL,
      queued TEXT NOT NULL
    );
  `);
}

function prepare(db: Database.Database, blobIo: boolean) {
  return {
    allModels: db.prepare(
      'SELECT id, type, revision, size, sha256, updated, deleted, ev_server, ev_session, ev_instance, ev_s, ev_us FROM snapshot_models',
    ),
    // A large instance is left out (`large`) and read through a blob handle when there are any.
    instance: db.prepare(
      `SELECT ${largeValueColumns('instance', blobIo)} FROM snapshot_blobs WHERE id = ?`,
    ),
    part: db.prepare('SELECT substr(instance, ?, ?) AS part FROM snapshot_blobs WHERE id = ?'),
    upsert: db.prepare(
      `INSERT OR REPLACE INTO snapshot_models
        (id, type, revision, size, sha256, updated, deleted, ev_server, ev_session, ev_instance, ev_s, ev_us)
       VALUES (@id, @type, @revision, @size, @sha256, @updated, @deleted, @ev_server, @ev_session, @ev_instance, @ev_s, @ev_us)`,
    ),
    upsertBlob: db.prepare('INSERT OR REPLACE INTO snapshot_blobs (id, instance) VALUES (?, ?)'),
    upsertZeroBlob: db.prepare(
      'INSERT OR REPLACE INTO snapshot_blobs (id, instance) VALUES (?, zeroblob(?))',
    ),
    deleteBlob: db.prepare('DELETE FROM snapshot_blobs WHERE id = ?'),
    setMeta: db.prepare('INSERT OR REPLACE INTO snapshot_meta (key, value) VALUES (?, ?)'),
    enqueue: db.prepare(
      `INSERT INTO snapshot_queue (id, op, type, event_type, payload, size, sha256, queued)
       VALUES (@id, @op, @type, @event_type, @payload, @size, @sha256, @queued)`,
    ),
    dequeue: db.prepare('DELETE FROM snapshot_queue WHERE seq = ?'),
    queue: db.prepare('SELECT * FROM snapshot_queue ORDER BY seq'),
    // length() of TEXT counts characters: registerEventSize's count for the (mostly ASCII) JSON text.
    queueMeta: db.prepare(
      'SELECT seq, id, op, type, event_type, length(payload) AS payload_len, size, sha256, queued FROM snapshot_queue ORDER BY seq',
    ),
    queuedEvent: db.prepare('SELECT event_type, payload FROM snapshot_queue WHERE seq = ?'),
  };
}

function eventOfRow(r: Pick<QueueRow, 'event_type' | 'payload'>): RegisterEvent {
  return {
    type: JSON.parse(r.event_type) as string[],
    sourceTimestamp: null,
    payload:
      r.payload === null
        ? null
        : markTrustedJsonPayload<EventPayloadJson>({ kind: 'json', text: r.payload }),
  };
}

function readMeta(db: Database.Database): Record<string, string | undefined> {
  const out: Record<string, string> = {};
  for (const r of db.prepare('SELECT key, value FROM snapshot_meta').all() as {
    key: string;
    value: string;
  }[])
    out[r.key] = r.value;
  return out;
}

function writeMeta(db: Database.Database, values: Record<string, string>): void {
  const stmt = db.prepare('INSERT OR REPLACE INTO snapshot_meta (key, value) VALUES (?, ?)');
  db.transaction(() => {
    for (const [k, v] of Object.entries(values)) stmt.run(k, v);
  })();
}

function parseCheckpoint(text: string | undefined): EventRef | null {
  if (text === undefined) return null;
  const v = JSON.parse(text) as EventRef | null;
  if (v === null) return null;
  for (const k of ['server', 'session', 'instance', 's', 'us'] as const)
    if (typeof v[k] !== 'number') throw new Error(`snapshot checkpoint lacks '${k}'`);
  return v;
}

function entryOf(r: ModelRowArray): ModelEntry {
  const [id, type, revision, size, sha256, updated, deleted, server, session, instance, es, eus] =
    r;
  return {
    instanceId: id,
    modelType: type,
    revision,
    size,
    sha256,
    updated,
    deleted: deleted !== 0,
    event: { server, session, instance, s: es, us: eus },
  };
}

/** Moves a corrupt file (and its -wal/-shm) aside; returns the new path, if there was a file. */
function moveAside(path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  const to = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  renameSync(path, to);
  for (const ext of ['-wal', '-shm']) if (existsSync(path + ext)) renameSync(path + ext, to + ext);
  return to;
}
