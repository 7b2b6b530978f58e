/**
 * The two Juggler framings (juggler.md):
 * - hat-juggler 0.6: every WebSocket text message is one whole JSON message;
 * - hat-juggler 0.7: every text message starts with a type character: `0` last (or only) segment
 *   of a JSON message, `1` a segment with more to follow, `2` ping, `3` pong.
 * Detection is by the first character of the first message a client sends.
 */

import { isAscii } from 'node:buffer';
import { SpareBuffer } from '../../common/spare-buffer.js';

export type Framing = '0.6' | '0.7';

/** The 0.7 type characters (`0` to `3`), and the brace a JSON text starts with. */
export const SEGMENT_LAST = 0x30;
export const SEGMENT_MORE = 0x31;
export const PING = 0x32;
export const PONG = 0x33;
export const OPEN_BRACE = 0x7b;

/** The framing a connection's first message announces, or null when it is neither. */
export function detectFraming(firstMessage: string): Framing | null {
  const c = firstMessage.charCodeAt(0);
  if (c === OPEN_BRACE) return '0.6';
  if (c >= SEGMENT_LAST && c <= PONG) return '0.7';
  return null;
}

/**
 * Whether a message starting with these two characters (codes) is a 0.7 message carrying JSON:
 * a type character, then a brace (a 0.7 client on a connection that speaks 0.6).
 */
export function looksLike07Json(first: number | undefined, second: number | undefined): boolean {
  return first !== undefined && first >= SEGMENT_LAST && first <= PONG && second === OPEN_BRACE;
}

/** The WebSocket text messages that carry one JSON text in `framing`. */
export function encodeFrames(framing: Framing, json: string, maxSegmentSize: number): string[] {
  if (framing === '0.6') return [json];
  if (json.length <= maxSegmentSize) return [`0${json}`];
  const frames: string[] = [];
  for (let pos = 0; pos < json.length; pos += maxSegmentSize) {
    const end = pos + maxSegmentSize;
    frames.push((end < json.length ? '1' : '0') + json.slice(pos, end));
  }
  return frames;
}

/** Result of feeding one `0`/`1` segment to a {@link SegmentAssembler}. */
export type AssembleResult =
  | { kind: 'partial' }
  | { kind: 'message'; text: string }
  /**
   * A message of at least {@link LARGE_MESSAGE_BYTES} that is all ASCII, as its bytes. When it
   * came in several segments, its bytes are the assembler's own memory, reused for the next
   * message: read them before the next `push` and keep no view of them.
   */
  | { kind: 'ascii'; bytes: Buffer }
  /** The message grew over the limit; `head` is its first characters (to find the request id). */
  | { kind: 'too_large'; head: string; length: number };

/** Messages from this size on are handed over as bytes when they are all ASCII (large-request.ts). */
export const LARGE_MESSAGE_BYTES = 64 * 1024;

/** The characters of a refused message kept to find its request id. */
export const HEAD_CHARS = 512;

/** How long the memory of a joined message is kept for the next one. */
const JOINED_TTL_MS = 1000;

/**
 * Joins 0.7 segments (their bytes, after the type character) into JSON texts, refusing to hold
 * more than `maxMessageSize` characters: past the limit only the head is kept and the rest of the
 * message is counted and dropped. ASCII segments are kept as bytes (their characters are their
 * bytes); a message made of them only and large enough is handed over as bytes, not as a string.
 */
export class SegmentAssembler {
  /** Memory joined messages are assembled in, reused by the next one (1 s at most). */
  private readonly joined = new SpareBuffer(JOINED_TTL_MS);
  private parts: (Buffer | string)[] = [];
  private ascii = true;
  private length = 0;
  private overflowHead: string | null = null;

  constructor(private readonly maxMessageSize: number) {}

  /** Characters currently held for an unfinished message. */
  get buffered(): number {
    return this.overflowHead === null ? this.length : 0;
  }

  push(payload: Buffer, last: boolean): AssembleResult {
    const isAsciiPart = isAscii(payload);
    const part = isAsciiPart ? payload : payload.toString('utf8');
    this.length += part.length;
    if (this.overflowHead === null) {
      if (this.length > this.maxMessageSize) {
        this.overflowHead = headOf([...this.parts, part]);
        this.parts = [];
        this.ascii = true;
      } else {
        this.parts.push(part);
        if (!isAsciiPart) this.ascii = false;
      }
    }
    if (!last) return { kind: 'partial' };
    const length = this.length;
    this.length = 0;
    if (this.overflowHead !== null) {
      const head = this.overflowHead;
      this.overflowHead = null;
      return { kind: 'too_large', head, length };
    }
    const parts = this.parts;
    const ascii = this.ascii;
    this.parts = [];
    this.ascii = true;
    if (ascii) {
      if (parts.length === 1 || length < LARGE_MESSAGE_BYTES) {
        const bytes = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts as Buffer[]);
        if (bytes.length >= LARGE_MESSAGE_BYTES) return { kind: 'ascii', bytes };
        return { kind: 'message', text: bytes.toString('latin1', 0, bytes.length) };
      }
      return { kind: 'ascii', bytes: this.join(parts as Buffer[], length) };
    }
    return { kind: 'message', text: parts.map(textOf).join('') };
  }

  /**
   * The parts joined in the assembler's own memory, grown when too small: a large model's message
   * (13.3 MB for 10 MiB) needs no fresh memory per write, and leaves no garbage for V8's next
   * collection. Let go after a second without use.
   */
  private join(parts: readonly Buffer[], length: number): Buffer {
    const out = this.joined.take(length) ?? Buffer.allocUnsafe(length);
    let at = 0;
    for (const p of parts) at += p.copy(out, at);
    this.joined.keep(out);
    return out.subarray(0, length);
  }
}

/** The first {@link HEAD_CHARS} characters of the parts' text. */
function headOf(parts: readonly (Buffer | string)[]): string {
  let head = '';
  for (const p of parts) {
    if (head.length >= HEAD_CHARS) break;
    head += typeof p === 'string' ? p.slice(0, HEAD_CHARS) : p.toString('latin1', 0, HEAD_CHARS);
  }
  return head.slice(0, HEAD_CHARS);
}

/** An ASCII part's text is its Latin-1 reading. */
function textOf(p: Buffer | string): string {
  return typeof p === 'string' ? p : p.toString('latin1', 0, p.length);
}

/**
 * The request id of a message that is too large to parse, read from its head: `"id": N` before
 * any `"data"` member (as every Juggler client orders them). Null when it cannot be read safely.
 */
export function peekRequestId(head: string): number | null {
  const dataAt = head.indexOf('"data"');
  const scope = dataAt < 0 ? head : head.slice(0, dataAt);
  if (!/"type"\s*:\s*"request"/.test(scope)) return null;
  const m = /"id"\s*:\s*(-?\d{1,16})\s*[,}]/.exec(scope);
  if (m === null) return null;
  const id = Number(m[1]);
  return Number.isSafeInteger(id) ? id : null;
}
