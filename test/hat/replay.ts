/** Support for replaying recorded conversations: raw frame reading, decoding to value form. */
import type { Socket } from 'node:net';
import { decodeBody } from '../../src/hat/chatter/message.js';
import * as schema from '../../src/hat/eventer/schema.js';
import { decode } from '../../src/hat/sbs/codec.js';
import { type Decoded, hex, type Step, toVectorValue } from './vectors.js';

export type { Decoded, Step } from './vectors.js';

export interface Conversation {
  description: string;
  recorded_at: string;
  server: { eventer_port?: number; server_token?: string | null };
  client_actions: string[];
  steps: Step[];
}

/** Reads whole frames (length prefix included) from a socket; `null` marks the end of stream. */
export class RawFrames {
  private buf = Buffer.alloc(0);
  private ended = false;
  private waiter: (() => void) | null = null;

  constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    const end = () => {
      this.ended = true;
      this.wake();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private take(): Buffer | null {
    if (this.buf.length < 1) return null;
    const m = this.buf[0] as number;
    if (this.buf.length < 1 + m) return null;
    let k = 0;
    for (let i = 1; i <= m; i++) k = k * 256 + (this.buf[i] as number);
    if (this.buf.length < 1 + m + k) return null;
    const frame = this.buf.subarray(0, 1 + m + k);
    this.buf = this.buf.subarray(1 + m + k);
    return Buffer.from(frame);
  }

  /** The next frame, or null at end of stream; rejects after `timeoutMs`. */
  async next(timeoutMs: number, what = 'frame'): Promise<Buffer | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.take();
      if (f !== null) return f;
      if (this.ended) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }
}

/** A frame decoded to the recording's `decoded` form (payload in value form). */
export function decodeFrame(frame: Uint8Array): Decoded {
  const m = frame[0] as number;
  const msg = decodeBody(frame.subarray(1 + m));
  const type = schema.types[msg.type];
  const payload =
    msg.type === 'HatChatter.Ping' || msg.type === 'HatChatter.Pong'
      ? null
      : type === undefined
        ? { undecodable: msg.type }
        : toVectorValue(decode(type, msg.data));
  return {
    id: msg.id,
    first: msg.first,
    owner: msg.owner,
    token: msg.token,
    last: msg.last,
    data: { type: msg.type, data_hex: hex(msg.data) },
    payload,
  };
}

/** Replaces every event `timestamp` (server clock) with a marker, keeping everything else. */
export function maskTimestamps(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(maskTimestamps);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v).map(([k, x]) => [k, k === 'timestamp' ? '<timestamp>' : maskTimestamps(x)]),
    );
  }
  return v;
}

/** Every `{id, timestamp}` pair of events in a decoded payload. */
export function eventsIn(
  v: unknown,
  out: { id: { session: number; instance: number }; timestamp: unknown }[] = [],
) {
  if (Array.isArray(v)) for (const x of v) eventsIn(x, out);
  else if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('id' in o && 'timestamp' in o && 'type' in o) {
      out.push(o as unknown as { id: { session: number; instance: number }; timestamp: unknown });
    } else for (const x of Object.values(o)) eventsIn(x, out);
  }
  return out;
}
