/**
 * SQLite incremental blob I/O through aimm-store's extension (`native/blob_io.c`, built at
 * install into `native/build/`). better-sqlite3 binds a Buffer as a copy and SQLite copies it
 * again into the row record, so a large model held three times at the peak of its INSERT; with
 * the extension the row is written with `zeroblob(n)` and the bytes then copied into its pages
 * one chunk at a time (the caller's buffer is the only whole copy). Reads of large models and of
 * byte ranges go through the same handle instead of loading the whole value.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type Database from 'better-sqlite3';

/** From this size on a model is written and read through a blob handle. */
export const BLOB_IO_MIN_BYTES = 1 << 20;

/**
 * `column` as the result columns `instance` and `large` of a query: with handles, a BLOB from
 * {@link BLOB_IO_MIN_BYTES} on is left out (`instance` NULL, `large` 1) to be read through a
 * handle; typeof() and length() read a value's type and size from its record header, without
 * loading it. Without handles, the value itself and `large` 0.
 */
export function largeValueColumns(column: string, handles: boolean): string {
  if (!handles) return `${column} AS instance, 0 AS large`;
  const large = `(typeof(${column}) = 'blob' AND length(${column}) >= ${BLOB_IO_MIN_BYTES})`;
  return `CASE WHEN ${large} THEN NULL ELSE ${column} END AS instance, ${large} AS large`;
}

/** Bytes per call into the extension (better-sqlite3 copies each chunk once when binding it). */
const CHUNK_BYTES = 1 << 20;

/** Where the install's build leaves the extension (the package's root, from dist/src/… or src/…). */
function candidates(): string[] {
  const name = process.platform === 'darwin' ? 'aimm_blob_io.dylib' : 'aimm_blob_io.so';
  return ['../../native/build/', '../../../native/build/'].map((dir) =>
    fileURLToPath(new URL(`${dir}${name}`, import.meta.url)),
  );
}

/** The built extension, or undefined when the install could not build it. */
export function blobIoExtension(): string | undefined {
  return candidates().find((path) => existsSync(path));
}

/** Blob handles on one connection's `main` database (one open at a time, as SQLite allows). */
export class BlobIo {
  private readonly open: Database.Statement;
  private readonly writeChunk: Database.Statement;
  private readonly readChunk: Database.Statement;
  private readonly close: Database.Statement;
  private readonly copyBlob: Database.Statement;

  private constructor(db: Database.Database) {
    this.open = db.prepare('SELECT aimm_blob_open(?, ?, ?, ?)').pluck();
    this.writeChunk = db.prepare('SELECT aimm_blob_write(?, ?)').pluck();
    this.readChunk = db.prepare('SELECT aimm_blob_read(?, ?)').pluck();
    this.close = db.prepare('SELECT aimm_blob_close()').pluck();
    this.copyBlob = db.prepare('SELECT aimm_blob_copy(?, ?, ?, ?, ?, ?)').pluck();
  }

  /**
   * Loads the extension into `db`: the handle, or why not (no extension built, or SQLite refused
   * to load it). `path` is for tests.
   */
  static load(
    db: Database.Database,
    path = blobIoExtension(),
  ): { io: BlobIo } | { io: undefined; why: string } {
    if (path === undefined) {
      return {
        io: undefined,
        why: `the blob I/O extension was not built (${candidates()[0]}; npm install builds it)`,
      };
    }
    try {
      // The entry point follows from the file's name: sqlite3_aimmblobio_init.
      db.loadExtension(path);
      return { io: new BlobIo(db) };
    } catch (err) {
      return {
        io: undefined,
        why: `cannot load ${path}: ${err instanceof Error ? err.message : String(err)}`,
      };
    }
  }

  /**
   * Copies `bytes` into the blob of `rowid`, which must be exactly as long (written as
   * `zeroblob(bytes.length)` in the same transaction).
   */
  write(table: string, column: string, rowid: number, bytes: Buffer): void {
    this.withHandle(table, column, rowid, true, (size) => {
      if (size !== bytes.length) {
        throw new Error(
          `blob of ${table}.${column} ${rowid} is ${size} bytes, not ${bytes.length}`,
        );
      }
      for (let at = 0; at < bytes.length; at += CHUNK_BYTES) {
        this.writeChunk.get(at, bytes.subarray(at, Math.min(bytes.length, at + CHUNK_BYTES)));
      }
    });
  }

  /**
   * `length` bytes of the value of `rowid` from `offset` (clipped to the value; TEXT is read as
   * its stored UTF-8 bytes), or undefined when there is no such row or the value is no BLOB or
   * TEXT (NULL, a number: SQLite opens no handle on those).
   */
  read(
    table: string,
    column: string,
    rowid: number,
    offset = 0,
    length = Number.MAX_SAFE_INTEGER,
  ): Buffer | undefined {
    return this.withHandle(table, column, rowid, false, (size) => {
      const start = Math.min(offset, size);
      const n = Math.min(length, size - start);
      if (n <= CHUNK_BYTES) return this.readChunk.get(start, n) as Buffer;
      const out = Buffer.allocUnsafe(n);
      for (let at = 0; at < n; at += CHUNK_BYTES) {
        const chunk = this.readChunk.get(start + at, Math.min(CHUNK_BYTES, n - at)) as Buffer;
        chunk.copy(out, at);
      }
      return out;
    });
  }

  /**
   * Copies the blob of `from` into that of `to`, which must be exactly as long (a `zeroblob`),
   * 1 MiB at a time inside SQLite: the value is never whole in memory.
   */
  copy(
    from: { table: string; column: string; rowid: number },
    to: { table: string; column: string; rowid: number },
  ): void {
    this.copyBlob.get(from.table, from.column, from.rowid, to.table, to.column, to.rowid);
  }

  /** Runs `use` with a handle open on the blob; undefined (for reads) when there is none. */
  private withHandle<T>(
    table: string,
    column: string,
    rowid: number,
    writable: boolean,
    use: (size: number) => T,
  ): T | undefined {
    let size: number;
    try {
      size = Number(this.open.get(table, column, rowid, writable ? 1 : 0));
    } catch (err) {
      // "no such rowid: N", "cannot open value of type null" (SQLite's messages).
      if (!writable && /no such rowid|cannot open value of type/.test(String(err)))
        return undefined;
      throw err;
    }
    try {
      return use(size);
    } finally {
      this.close.get();
    }
  }
}
