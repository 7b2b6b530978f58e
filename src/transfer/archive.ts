/**
 * The export archive (docs/export-format.md): a ustar file holding
 *
 *   aimm-store-export.json   {"format": "aimm-store-export", "version": 1, "created", "source", "models"}
 *   models/<id>.json         {"instance_id", "model_type", "revision", "size", "sha256", "updated"}
 *   models/<id>.bin          the instance bytes, raw
 *   ...                      (one pair per model, ascending by id)
 *   end.json                 {"models": N, "bytes": total instance bytes}
 *
 * The metadata of a model comes before its bytes, so a reader checks size and SHA-256 as it reads;
 * `end.json` tells a complete archive from a truncated one. The writer writes `ARCHIVE.partial`
 * and renames it when complete, so an interrupted export leaves no archive that looks whole.
 */
import { createHash } from 'node:crypto';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { TAR_END, TarError, TarReader, tarHeader, tarPadding } from './tar.js';

export const ARCHIVE_FORMAT = 'aimm-store-export';
export const ARCHIVE_VERSION = 1;

export interface ArchiveManifest {
  format: typeof ARCHIVE_FORMAT;
  version: number;
  created: string;
  /** Where the models came from: the daemon name and backend module of the config exported. */
  source: { name: string; backend: string };
  /** Number of models the export meant to write (the listing when it started). */
  models: number;
}

/** A model's entry in the archive (the wire's snake_case, as `aimm-store ls` prints it). */
export interface ArchivedModel {
  instance_id: number;
  model_type: string;
  revision: number;
  size: number;
  sha256: string;
  updated: string;
}

export class ArchiveError extends Error {}

export class ArchiveWriter {
  private position = 0;
  private count = 0;
  private bytes = 0;
  private readonly mtime = Math.floor(Date.now() / 1000);

  private constructor(
    private readonly file: FileHandle,
    readonly path: string,
    private readonly partial: string,
  ) {}

  static async create(path: string, manifest: ArchiveManifest): Promise<ArchiveWriter> {
    const partial = `${path}.partial`;
    const file = await open(partial, 'w');
    const w = new ArchiveWriter(file, path, partial);
    await w.entry('aimm-store-export.json', json(manifest));
    return w;
  }

  async addModel(meta: ArchivedModel, instance: Uint8Array): Promise<void> {
    await this.entry(`models/${meta.instance_id}.json`, json(meta));
    await this.entry(`models/${meta.instance_id}.bin`, instance);
    this.count++;
    this.bytes += instance.length;
  }

  /** Writes `end.json` and the end mark, syncs, and gives the archive its name. */
  async finish(): Promise<{ models: number; bytes: number }> {
    await this.entry('end.json', json({ models: this.count, bytes: this.bytes }));
    await this.write(TAR_END);
    await this.file.sync();
    await this.file.close();
    await rename(this.partial, this.path);
    return { models: this.count, bytes: this.bytes };
  }

  async abort(): Promise<void> {
    await this.file.close().catch(() => {});
    await rm(this.partial, { force: true });
  }

  private async entry(name: string, data: Uint8Array): Promise<void> {
    await this.write(tarHeader(name, data.length, this.mtime));
    await this.write(data);
    await this.write(tarPadding(data.length));
  }

  private async write(data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.file.write(data, done, data.length - done, this.position);
      done += bytesWritten;
      this.position += bytesWritten;
    }
  }
}

/** Reads an archive model by model, checking everything it can before handing a model out. */
export class ArchiveReader {
  private constructor(
    private readonly file: FileHandle,
    private readonly tar: TarReader,
    readonly path: string,
    readonly manifest: ArchiveManifest,
  ) {}

  static async open(path: string): Promise<ArchiveReader> {
    let file: FileHandle;
    try {
      file = await open(path, 'r');
    } catch (err) {
      throw new ArchiveError(`cannot open archive '${path}': ${(err as Error).message}`);
    }
    try {
      const tar = new TarReader(file, path);
      const first = await tar.next();
      if (first === null || first.name !== 'aimm-store-export.json') {
        throw new ArchiveError(
          `'${path}' is not an aimm-store export: its first entry is ${first === null ? 'missing' : `'${first.name}'`}, expected 'aimm-store-export.json'`,
        );
      }
      const manifest = parseJson(await tar.read(first), path, first.name) as ArchiveManifest;
      if (manifest.format !== ARCHIVE_FORMAT || typeof manifest.version !== 'number') {
        throw new ArchiveError(`'${path}' is not an aimm-store export (format field)`);
      }
      if (manifest.version > ARCHIVE_VERSION) {
        throw new ArchiveError(
          `'${path}' is export format version ${manifest.version}, newer than this aimm-store reads (${ARCHIVE_VERSION})`,
        );
      }
      return new ArchiveReader(file, tar, path, manifest);
    } catch (err) {
      await file.close();
      throw err instanceof TarError ? new ArchiveError(err.message) : err;
    }
  }

  /**
   * The models in order, each checked (name, size, SHA-256); ends after `end.json` has been
   * checked against what was read. Throws {@link ArchiveError} naming the entry on any damage.
   */
  async *models(): AsyncGenerator<{ meta: ArchivedModel; instance: Buffer }> {
    let count = 0;
    let bytes = 0;
    for (;;) {
      const entry = await this.next();
      if (entry === null) {
        throw new ArchiveError(
          `${this.path}: ends without 'end.json' after ${count} models (truncated?)`,
        );
      }
      if (entry.name === 'end.json') {
        const end = parseJson(await this.read(entry), this.path, entry.name) as {
          models?: unknown;
          bytes?: unknown;
        };
        if (end.models !== count || end.bytes !== bytes) {
          throw new ArchiveError(
            `${this.path}: end.json says ${String(end.models)} models of ${String(end.bytes)} bytes, the archive holds ${count} of ${bytes}`,
          );
        }
        return;
      }
      const m = /^models\/([1-9][0-9]*)\.json$/.exec(entry.name);
      if (m === null) throw new ArchiveError(`${this.path}: unexpected entry '${entry.name}'`);
      const meta = checkMeta(
        parseJson(await this.read(entry), this.path, entry.name),
        entry.name,
        this.path,
      );
      if (String(meta.instance_id) !== m[1]) {
        throw new ArchiveError(`${this.path}: ${entry.name} holds instance_id ${meta.instance_id}`);
      }
      const blob = await this.next();
      const blobName = `models/${m[1]}.bin`;
      if (blob === null || blob.name !== blobName) {
        throw new ArchiveError(`${this.path}: '${blobName}' missing after '${entry.name}'`);
      }
      if (blob.size !== meta.size) {
        throw new ArchiveError(
          `${this.path}: ${blobName} has ${blob.size} bytes, its metadata says ${meta.size}`,
        );
      }
      const instance = await this.read(blob);
      const sha = createHash('sha256').update(instance).digest('hex');
      if (sha !== meta.sha256) {
        throw new ArchiveError(
          `${this.path}: ${blobName}: SHA-256 mismatch (the bytes are damaged): ${sha}, expected ${meta.sha256}`,
        );
      }
      count++;
      bytes += instance.length;
      yield { meta, instance };
    }
  }

  close(): Promise<void> {
    return this.file.close();
  }

  private async next() {
    try {
      return await this.tar.next();
    } catch (err) {
      throw err instanceof TarError ? new ArchiveError(err.message) : err;
    }
  }

  private async read(entry: Parameters<TarReader['read']>[0]) {
    try {
      return await this.tar.read(entry);
    } catch (err) {
      throw err instanceof TarError ? new ArchiveError(err.message) : err;
    }
  }
}

function json(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value)}\n`, 'utf8');
}

function parseJson(data: Buffer, path: string, name: string): unknown {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch (err) {
    throw new ArchiveError(`${path}: ${name} is not JSON (${(err as Error).message})`);
  }
}

function checkMeta(v: unknown, name: string, path: string): ArchivedModel {
  const m = v as Partial<ArchivedModel> | null;
  const ok =
    m !== null &&
    typeof m === 'object' &&
    Number.isSafeInteger(m.instance_id) &&
    (m.instance_id as number) > 0 &&
    typeof m.model_type === 'string' &&
    Number.isSafeInteger(m.size) &&
    typeof m.sha256 === 'string' &&
    /^[0-9a-f]{64}$/.test(m.sha256);
  if (!ok) {
    throw new ArchiveError(`${path}: ${name} lacks instance_id, model_type, size or a hex sha256`);
  }
  return m as ArchivedModel;
}
