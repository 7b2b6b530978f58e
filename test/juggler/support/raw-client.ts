/**
 * A raw Juggler test client: sends exact texts in either framing and records everything the
 * server sends (frames, reassembled messages with their 0.7 segment lengths, pings, close).
 */
import WebSocket from 'ws';
import { until } from './harness.js';

export type Received =
  | { kind: 'message'; text: string; msg: Record<string, unknown>; segments: number[] }
  /** A frame this client could not read in its framing (e.g. the server detected the other one). */
  | { kind: 'invalid'; text: string }
  | { kind: 'ping'; payload: string }
  | { kind: 'pong'; payload: string };

export class RawClient {
  readonly frames: string[] = [];
  readonly received: Received[] = [];
  closeCode: number | null = null;
  closeReason = '';
  readonly closed: Promise<void>;
  private parts: string[] = [];
  private nextId = 1;
  private readonly ws: WebSocket;

  private constructor(
    url: string,
    readonly framing: '0.6' | '0.7',
    readonly answerPings: boolean,
  ) {
    this.ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 512 * 1024 * 1024 });
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        resolve();
      });
    });
    this.ws.on('error', () => {});
    this.ws.on('message', (data) => this.onFrame(String(data)));
  }

  static async open(
    url: string,
    framing: '0.6' | '0.7',
    options: { answerPings?: boolean } = {},
  ): Promise<RawClient> {
    const c = new RawClient(url, framing, options.answerPings ?? true);
    await new Promise<void>((resolve, reject) => {
      c.ws.once('open', () => resolve());
      c.ws.once('error', reject);
    });
    return c;
  }

  get messages(): Record<string, unknown>[] {
    return this.received.flatMap((r) => (r.kind === 'message' ? [r.msg] : []));
  }

  ofType(type: string): Record<string, unknown>[] {
    return this.messages.filter((m) => m.type === type);
  }

  /** Sends one raw WebSocket text (exactly as given); later `request` ids stay above its id. */
  sendFrame(text: string): void {
    const m = /"id": ?(\d+)/.exec(text);
    if (m !== null) this.nextId = Math.max(this.nextId, Number(m[1]) + 1);
    this.ws.send(text);
  }

  sendBinary(data: Buffer): void {
    this.ws.send(data, { binary: true });
  }

  /** Sends a JSON text in this client's framing (0.7: one `0` segment). */
  sendJson(json: string): void {
    this.ws.send(this.framing === '0.6' ? json : `0${json}`);
  }

  /** Sends a request with the next id (JSON in Python's format like AIMM's client); returns the id. */
  sendRequest(name: string, data: unknown): number {
    const id = this.nextId++;
    this.sendJson(JSON.stringify({ type: 'request', id, name, data }));
    return id;
  }

  /** Sends a request and waits for its response. */
  async request(name: string, data: unknown, timeoutMs = 5000): Promise<Record<string, unknown>> {
    const id = this.sendRequest(name, data);
    return this.response(id, timeoutMs);
  }

  async response(id: number, timeoutMs = 5000): Promise<Record<string, unknown>> {
    const find = () => this.messages.find((m) => m.type === 'response' && m.id === id);
    await until(() => find() !== undefined || this.closeCode !== null, `response ${id}`, timeoutMs);
    const r = find();
    if (r === undefined)
      throw new Error(`connection closed (${this.closeCode}) before response ${id}`);
    return r;
  }

  async waitFor(
    predicate: (msgs: Record<string, unknown>[]) => boolean,
    what: string,
    timeoutMs = 5000,
  ): Promise<void> {
    await until(() => predicate(this.messages), what, timeoutMs);
  }

  async waitClosed(timeoutMs = 5000): Promise<void> {
    await until(() => this.closeCode !== null, 'close', timeoutMs);
  }

  close(code = 1000): Promise<void> {
    if (this.closeCode === null) this.ws.close(code);
    return this.closed;
  }

  terminate(): void {
    this.ws.terminate();
  }

  private onFrame(text: string): void {
    this.frames.push(text);
    try {
      this.readFrame(text);
    } catch {
      this.received.push({ kind: 'invalid', text });
    }
  }

  private readFrame(text: string): void {
    if (this.framing === '0.6') {
      this.received.push({ kind: 'message', text, msg: JSON.parse(text), segments: [text.length] });
      return;
    }
    const type = text[0];
    const payload = text.slice(1);
    if (type === '2') {
      this.received.push({ kind: 'ping', payload });
      if (this.answerPings) this.ws.send(`3${payload}`);
    } else if (type === '3') {
      this.received.push({ kind: 'pong', payload });
    } else if (type === '1') {
      this.parts.push(payload);
    } else if (type === '0') {
      this.parts.push(payload);
      const joined = this.parts.join('');
      const segments = this.parts.map((p) => p.length);
      this.parts = [];
      this.received.push({ kind: 'message', text: joined, msg: JSON.parse(joined), segments });
    } else {
      throw new Error(`invalid 0.7 frame: ${text.slice(0, 40)}`);
    }
  }
}
