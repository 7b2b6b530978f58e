/**
 * The client side of the two Juggler framings: hat-juggler 0.6 (one JSON message per WebSocket
 * text message) and 0.7 (`0` last segment, `1` more follows, `2` ping, `3` pong).
 */

export type Framing = '0.6' | '0.7';

/** Splits a JSON text into 0.7 frames of at most `maxSegmentSize` characters (never inside a surrogate pair). */
export function encode07(json: string, maxSegmentSize: number): string[] {
  if (json.length <= maxSegmentSize) return [`0${json}`];
  const frames: string[] = [];
  let pos = 0;
  while (pos < json.length) {
    let end = Math.min(pos + maxSegmentSize, json.length);
    const last = json.charCodeAt(end - 1);
    if (end < json.length && end - pos > 1 && last >= 0xd800 && last <= 0xdbff) end--;
    frames.push((end < json.length ? '1' : '0') + json.slice(pos, end));
    pos = end;
  }
  return frames;
}

export type Frame07 =
  | { kind: 'message'; text: string }
  | { kind: 'partial' }
  | { kind: 'ping'; payload: string }
  | { kind: 'pong' };

/** Reassembles 0.7 frames into JSON texts. */
export class Decoder07 {
  private parts: string[] = [];
  private length = 0;

  constructor(private readonly maxMessageSize: number) {}

  push(frame: string): Frame07 {
    const type = frame.charAt(0);
    const payload = frame.slice(1);
    if (type === '2') return { kind: 'ping', payload };
    if (type === '3') return { kind: 'pong' };
    if (type !== '0' && type !== '1')
      throw new Error(`unsupported Juggler 0.7 message type ${JSON.stringify(type)}`);
    this.length += payload.length;
    if (this.length > this.maxMessageSize)
      throw new Error(`message over ${this.maxMessageSize} characters from the server`);
    this.parts.push(payload);
    if (type === '1') return { kind: 'partial' };
    const text = this.parts.join('');
    this.parts = [];
    this.length = 0;
    return { kind: 'message', text };
  }
}
