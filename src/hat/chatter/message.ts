/**
 * HatChatter messages (hat-drivers 0.10 `schemas_sbs/chatter.sbs`) and their TCP framing:
 * `[m: 1 byte][k: m bytes, unsigned big-endian][body: k bytes = SBS HatChatter.Msg]`.
 */
import {
  boolean,
  bytes,
  integer,
  none,
  Reader,
  readInteger,
  readLength,
  record,
  SbsError,
  string,
  Writer,
  writeInteger,
} from '../sbs/codec.js';
import { ProtocolError } from './errors.js';

/** `HatChatter.Data`: the payload's full SBS type name and its SBS encoding. */
export const DataType = record('HatChatter.Data', { type: string, data: bytes });

/** `HatChatter.Msg`, fields in wire order. */
export const MsgType = record('HatChatter.Msg', {
  id: integer,
  first: integer,
  owner: boolean,
  token: boolean,
  last: boolean,
  data: DataType,
});

/** `HatChatter.Ping` and `HatChatter.Pong` are `None`: their `data.data` is empty. */
export const PingType = none;
export const PongType = none;

export const PING = 'HatChatter.Ping';
export const PONG = 'HatChatter.Pong';

/** One chatter message as it travels (ids in the sender's numbering). */
export interface ChatterMsg {
  id: number;
  /** Id of the message that started the conversation, in the starter's numbering. */
  first: number;
  /** True when the sender of this message started the conversation. */
  owner: boolean;
  token: boolean;
  /** True closes the conversation. */
  last: boolean;
  /** Full SBS type name of the payload, e.g. `HatEventer.MsgInitReq`. */
  type: string;
  /**
   * SBS encoding of the payload. A decoded message's `data` is a view into the frame it came in
   * (no copy; decoders copy what they keep): copy it to keep it beyond the callback.
   */
  data: Uint8Array;
}

/** Body length limit used when none is configured (a frame announcing more is refused unread). */
export const DEFAULT_MAX_FRAME_SIZE = 256 * 1024 * 1024;

const HEADER_ROOM = 9; // 1 byte m + up to 8 length bytes

/** Encodes a message as one complete frame (minimal length field, at least one byte). */
export function encodeFrame(msg: ChatterMsg): Buffer {
  const w = new Writer(HEADER_ROOM + 32 + msg.type.length * 3 + msg.data.length);
  w.pos = HEADER_ROOM;
  MsgType.write(w, {
    id: msg.id,
    first: msg.first,
    owner: msg.owner,
    token: msg.token,
    last: msg.last,
    data: { type: msg.type, data: msg.data },
  });
  return withLength(w, w.pos - HEADER_ROOM);
}

/** Payloads from this size on are not copied into their frame ({@link encodeFrameParts}). */
export const SEPARATE_DATA_BYTES = 256 * 1024;

/**
 * The frame of {@link encodeFrame} as the buffers to write one after the other: for a payload of
 * {@link SEPARATE_DATA_BYTES} or more, the head (length prefix and message up to the payload's
 * own length) and the payload itself, not copied — the caller must leave `msg.data` unchanged
 * until it is written. Smaller messages: one buffer, as `encodeFrame` gives it.
 */
export function encodeFrameParts(msg: ChatterMsg): Buffer[] {
  const data = msg.data;
  if (!(data instanceof Uint8Array) || data.length < SEPARATE_DATA_BYTES) return [encodeFrame(msg)];
  // `HatChatter.Msg` is a record (fields back to back) whose last field is `data: HatChatter.Data`,
  // whose last field is `data: Bytes` (its length, then its bytes): everything before the payload
  // bytes is the head.
  const w = new Writer(HEADER_ROOM + 48 + msg.type.length * 3);
  w.pos = HEADER_ROOM;
  integer.write(w, msg.id);
  integer.write(w, msg.first);
  boolean.write(w, msg.owner);
  boolean.write(w, msg.token);
  boolean.write(w, msg.last);
  string.write(w, msg.type);
  writeInteger(w, data.length, 'Bytes');
  const head = withLength(w, w.pos - HEADER_ROOM + data.length);
  return [head, Buffer.from(data.buffer, data.byteOffset, data.length)];
}

/** The frame's length prefix for a body of `k` bytes, put in front of `w`'s bytes. */
function withLength(w: Writer, k: number): Buffer {
  let m = 1;
  while (m < 8 && k >= 2 ** (8 * m)) m++;
  const start = HEADER_ROOM - 1 - m;
  w.buf[start] = m;
  let v = k;
  for (let i = HEADER_ROOM - 1; i > start; i--) {
    w.buf[i] = v % 256;
    v = Math.floor(v / 256);
  }
  return w.buf.subarray(start, w.pos);
}

function messageId(value: unknown, field: string): number {
  if (typeof value !== 'number' || value < 0) {
    throw new ProtocolError(`chatter message ${field} ${String(value)} is not a valid message id`);
  }
  return value;
}

/**
 * Decodes a frame body (without its length prefix). Like the reference reader, trailing bytes
 * after the message are ignored. Throws {@link ProtocolError} on malformed input.
 */
export function decodeBody(body: Uint8Array): ChatterMsg {
  const r = new Reader(body);
  try {
    const id = readInteger(r);
    const first = readInteger(r);
    const owner = boolean.read(r);
    const token = boolean.read(r);
    const last = boolean.read(r);
    const type = string.read(r);
    const n = readLength(r, 'Bytes');
    const data = r.buf.subarray(r.pos, r.pos + n);
    return {
      id: messageId(id, 'id'),
      first: messageId(first, 'first'),
      owner,
      token,
      last,
      type,
      data,
    };
  } catch (err) {
    if (err instanceof SbsError) {
      throw new ProtocolError(`malformed chatter message: ${err.message}`, { cause: err });
    }
    throw err;
  }
}
