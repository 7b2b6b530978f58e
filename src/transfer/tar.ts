/**
 * The subset of POSIX ustar that the export archive needs: regular files with short names, written
 * in order and read back with positional reads (so a reader holds one entry at a time, whatever the
 * archive's size). Any tar tool lists and extracts what this writes.
 */
import type { FileHandle } from 'node:fs/promises';

const BLOCK = 512;

/** A ustar header for a regular file. */
export function tarHeader(name: string, size: number, mtimeSeconds: number): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  if (nameBytes.length > 100) throw new Error(`tar: name too long: ${name}`);
  const h = Buffer.alloc(BLOCK, 0);
  nameBytes.copy(h, 0);
  octal(h, 100, 8, 0o644);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  octal(h, 124, 12, size);
  octal(h, 136, 12, mtimeSeconds);
  h.fill(0x20, 148, 156); // checksum field counts as spaces
  h.write('0', 156, 'latin1'); // regular file
  h.write('ustar\u000000', 257, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
  return h;
}

/** Zero bytes that pad an entry of `size` bytes to a whole block. */
export function tarPadding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest, 0);
}

/** The end of an archive: two zero blocks. */
export const TAR_END = Buffer.alloc(2 * BLOCK, 0);

function octal(buf: Buffer, offset: number, length: number, value: number): void {
  if (value >= 8 ** (length - 1)) throw new Error(`tar: value ${value} too large for its field`);
  buf.write(`${value.toString(8).padStart(length - 1, '0')}\u0000`, offset, 'latin1');
}

export interface TarEntry {
  name: string;
  size: number;
  /** Offset of the entry's data in the file. */
  offset: number;
}

export class TarError extends Error {}

/** Reads an archive's entries one after another (headers only; data on demand). */
export class TarReader {
  private position = 0;
  private ended = false;

  constructor(
    private readonly file: FileHandle,
    private readonly path: string,
  ) {}

  /** The next entry, or null at the end of the archive. Throws {@link TarError} on damage. */
  async next(): Promise<TarEntry | null> {
    if (this.ended) return null;
    const h = Buffer.alloc(BLOCK);
    const { bytesRead } = await this.file.read(h, 0, BLOCK, this.position);
    if (bytesRead === 0) {
      throw new TarError(
        `${this.path}: truncated at byte ${this.position} (no end-of-archive mark)`,
      );
    }
    if (bytesRead < BLOCK) {
      throw new TarError(`${this.path}: truncated inside the header at byte ${this.position}`);
    }
    if (h.every((b) => b === 0)) {
      this.ended = true;
      return null;
    }
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] as number);
    const stored = Number.parseInt(h.toString('latin1', 148, 156).replace(/[\0 ]+$/, ''), 8);
    if (stored !== sum) {
      throw new TarError(
        `${this.path}: damaged header at byte ${this.position} (checksum mismatch)`,
      );
    }
    const name = h.toString('utf8', 0, 100).replace(/\0.*$/s, '');
    const size = Number.parseInt(h.toString('latin1', 124, 136).replace(/[\0 ]+$/, ''), 8);
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new TarError(
        `${this.path}: bad size in the header of '${name}' at byte ${this.position}`,
      );
    }
    const entry = { name, size, offset: this.position + BLOCK };
    this.position = entry.offset + size + tarPadding(size).length;
    return entry;
  }

  /** An entry's data, read into one buffer; throws when the file ends before it does. */
  async read(entry: TarEntry): Promise<Buffer> {
    const out = Buffer.allocUnsafe(entry.size);
    let done = 0;
    while (done < entry.size) {
      const { bytesRead } = await this.file.read(out, done, entry.size - done, entry.offset + done);
      if (bytesRead === 0) {
        throw new TarError(
          `${this.path}: truncated inside '${entry.name}' (${done} of ${entry.size} bytes)`,
        );
      }
      done += bytesRead;
    }
    return out;
  }
}
