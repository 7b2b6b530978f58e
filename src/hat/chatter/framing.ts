/**
 * Incremental reader of chatter frames: `[m: 1 byte][k: m bytes big-endian][body: k bytes]`.
 *
 * Survives any TCP split or coalescing (bytes may arrive one at a time or many frames at once),
 * accepts non-minimal length fields like the reference, and refuses a frame whose announced body
 * exceeds `maxFrameSize` before buffering any of it. Bodies never alias the caller's chunks for
 * longer than the synchronous callback: a body spanning chunks is copied into its own buffer.
 */
import { FrameTooLargeError } from './errors.js';

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

  constructor(readonly maxFrameSize: number) {
    if (!(maxFrameSize >= 0) || !Number.isSafeInteger(maxFrameSize)) {
      throw new RangeError(`invalid maxFrameSize ${maxFrameSize}`);
    }
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
      onBody(chunk.subarray(i, i + k));
      return;
    }
    this.body = Buffer.allocUnsafe(k);
    this.bodyFilled = 0;
    this.state = State.Body;
    this.consumedTo = i;
  }
}
