/**
 * Incremental reader of chatter frames: `[m: 1 byte][k: m bytes big-endian][body: k bytes]`.
 *
 * Survives any TCP split or coalescing (bytes may arrive one at a time or many frames at once),
 * accepts non-minimal length fields like the reference, and refuses a frame whose announced body
 * exceeds `maxFrameSize` before buffering any of it. Bodies never alias the caller's chunks for
 * longer than the synchronous callback: a body spanning chunks is copied into its own buffer.
 *
 * A large body the reader assembled may be given back ({@link FrameReader.recycle}) once nothing
 * refers to it: the next large body is then assembled in the same memory instead of fresh memory.
 * A large model's echo (Hat's notification of our own event, then its register response: 1.33×
 * the model each) costs one buffer instead of one per message, and no garbage waiting for V8's next
 * collection (which a growth of external memory triggers only after tens of MiB).
 */
import { SpareBuffer } from '../../common/spare-buffer.js';
import { FrameTooLargeError } from './errors.js';

/** Bodies of at least this many bytes, assembled by the reader, may be recycled. */
export const RECYCLE_MIN_BYTES = 1024 * 1024;
/** A recycled body not reused within this time is let go (so an idle connection holds none). */
export const SPARE_TTL_MS = 1000;

enum State {
  LengthSize,
  Length,
  Body,
}

export class FrameReader {
  private state = State.LengthSize;
  /** Bytes of the length field still to read. */
  private lengthBytesLeft = 0;
  /** Body length being accumulated (exact: refused as soon as it passes the maximum). */
  private bodyLength = 0;
  /** Body under assembly when it spans chunks. */
  private body: Buffer | null = null;
  private bodyFilled = 0;
  private failed: Error | null = null;
  /** A recycled body's memory, whole, for the next large body. */
  private readonly spare = new SpareBuffer(SPARE_TTL_MS);
  /** Memory of the large bodies this reader assembled (the only memory it may recycle). */
  private readonly assembled = new WeakSet<ArrayBufferLike>();

  /**
   * `transientChunks`: the caller reuses the memory of each chunk once `push` returns (one read
   * buffer for every socket read), so a body inside one chunk is copied too.
   */
  constructor(
    readonly maxFrameSize: number,
    readonly transientChunks = false,
  ) {
    if (!(maxFrameSize >= 0) || !Number.isSafeInteger(maxFrameSize)) {
      throw new RangeError(`invalid maxFrameSize ${maxFrameSize}`);
    }
  }

  /** Bytes of a recycled body's memory held for the next large body. */
  get spareBytes(): number {
    return this.spare.bytes;
  }

  /**
   * Gives back a body this reader delivered, once neither it nor any view of it is referred to:
   * its memory may hold the next large body. Ignored for a body the reader did not assemble
   * itself (a view of a caller's chunk) or below {@link RECYCLE_MIN_BYTES}. Give each body back at
   * most once.
   */
  recycle(body: Uint8Array): void {
    if (body.byteLength < RECYCLE_MIN_BYTES || !this.assembled.has(body.buffer)) return;
    this.spare.keep(Buffer.from(body.buffer, 0, body.buffer.byteLength));
  }

  /** Lets go of the recycled memory (it becomes garbage). */
  dropSpare(): void {
    this.spare.drop();
  }

  /** Bytes held for an incomplete frame (for memory accounting and tests). */
  get buffered(): number {
    return this.body === null ? 0 : this.bodyFilled;
  }

  /**
   * Consumes `chunk` and calls `onBody` for every complete frame body, in order. Throws
   * {@link FrameTooLargeError} (and stays failed) on an oversized frame. If `onBody` throws, the
   * error propagates and the reader must not be used again.
   */
  push(chunk: Uint8Array, onBody: (body: Uint8Array) => void): void {
    if (this.failed !== null) throw this.failed;
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.state) {
        case State.LengthSize: {
          const m = chunk[i++] as number;
          this.bodyLength = 0;
          if (m === 0) {
            this.startBody(chunk, i, onBody);
            i = this.consumedTo;
          } else {
            this.lengthBytesLeft = m;
            this.state = State.Length;
          }
          break;
        }
        case State.Length: {
          const b = chunk[i++] as number;
          this.bodyLength = this.bodyLength * 256 + b;
          if (this.bodyLength > this.maxFrameSize) {
            const size = Number.isSafeInteger(this.bodyLength)
              ? this.bodyLength
              : Number.POSITIVE_INFINITY;
            this.failed = new FrameTooLargeError(size, this.maxFrameSize);
            throw this.failed;
          }
          if (--this.lengthBytesLeft === 0) {
            this.startBody(chunk, i, onBody);
            i = this.consumedTo;
          }
          break;
        }
        case State.Body: {
          const body = this.body as Buffer;
          const take = Math.min(n - i, this.bodyLength - this.bodyFilled);
          body.set(chunk.subarray(i, i + take), this.bodyFilled);
          this.bodyFilled += take;
          i += take;
          if (this.bodyFilled === this.bodyLength) {
            this.body = null;
            this.bodyFilled = 0;
            this.state = State.LengthSize;
            onBody(body);
          }
          break;
        }
      }
    }
  }

  private consumedTo = 0;

  /** The length is known: deliver the body at once if the chunk holds it all, else start buffering. */
  private startBody(chunk: Uint8Array, i: number, onBody: (body: Uint8Array) => void): void {
    const k = this.bodyLength;
    if (chunk.length - i >= k) {
      this.state = State.LengthSize;
      this.consumedTo = i + k;
      const body = chunk.subarray(i, i + k);
      onBody(this.transientChunks ? Buffer.from(body) : body);
      return;
    }
    this.body = this.bodyBuffer(k);
    this.bodyFilled = 0;
    this.state = State.Body;
    this.consumedTo = i;
  }

  /** Memory for a body of `k` bytes spanning chunks: the spare when it fits, else fresh. */
  private bodyBuffer(k: number): Buffer {
    if (k < RECYCLE_MIN_BYTES) return Buffer.allocUnsafe(k);
    const spare = this.spare.take(k);
    if (spare !== null) return spare.subarray(0, k);
    const body = Buffer.allocUnsafe(k);
    this.assembled.add(body.buffer);
    return body;
  }
}
