/**
 * Support for the hat-monitor tests: the MsgServer messages of a recorded session (loaded by
 * ./monitor-vectors.ts), and a scriptable fake monitor server that writes recorded or crafted
 * frames and collects what the component sends.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { FrameReader } from '../../src/hat/chatter/framing.js';
import { type ChatterMsg, decodeBody, encodeFrame } from '../../src/hat/chatter/message.js';
import { decodeClientMsg, decodeServerMsg, MSG_CLIENT } from '../../src/hat/monitor/codec.js';
import type { ClientMsg, ServerMsg } from '../../src/hat/monitor/common.js';
import { isFrame, type MonitorConversation, unhex } from './monitor-vectors.js';

/** The MsgServer messages the monitor sent on connection `label`, decoded, in order. */
export function recordedServerMsgs(conv: MonitorConversation, label: string): ServerMsg[] {
  return conv.steps
    .filter(isFrame)
    .filter(
      (s) => s.conn === label && s.dir === 's2c' && s.decoded.data.type === 'HatObserver.MsgServer',
    )
    .map((s) => decodeServerMsg(unhex(s.decoded.data.data_hex)));
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `cond` until it holds; rejects with `what` after `timeoutMs`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** One connection accepted by the {@link FakeMonitor}. */
export class FakeMonitorConnection {
  /** Every chatter message the component sent, in order (data copied). */
  readonly received: ChatterMsg[] = [];
  /** The component closed (or reset) the connection. */
  ended = false;
  /** A frame from the component could not be read (never expected). */
  readError: Error | null = null;
  private nextId = 1;
  private readonly reader = new FrameReader(16 * 1024 * 1024);

  constructor(
    readonly index: number,
    readonly socket: Socket,
    private readonly onMessage: (conn: FakeMonitorConnection, msg: ChatterMsg) => void,
    private readonly onEnd: (conn: FakeMonitorConnection) => void,
  ) {
    socket.on('data', (chunk: Buffer) => {
      try {
        this.reader.push(chunk, (body) => {
          const msg = decodeBody(body);
          const copy = { ...msg, data: Uint8Array.from(msg.data) };
          this.received.push(copy);
          this.onMessage(this, copy);
        });
      } catch (err) {
        this.readError = err as Error;
        socket.destroy();
      }
    });
    const end = () => {
      if (this.ended) return;
      this.ended = true;
      this.onEnd(this);
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  /** The MsgClient messages received so far, decoded. */
  clientMsgs(): ClientMsg[] {
    return this.received.filter((m) => m.type === MSG_CLIENT).map((m) => decodeClientMsg(m.data));
  }

  /** Writes a recorded frame verbatim (its id continues our numbering). */
  writeRecorded(frameHex: string): void {
    const frame = unhex(frameHex);
    const m = frame[0] as number;
    const msg = decodeBody(frame.subarray(1 + m));
    this.nextId = Math.max(this.nextId, msg.id + 1);
    if (!this.socket.destroyed) this.socket.write(frame);
  }

  /** Sends a one-message conversation (as the monitor does) with the next id. */
  send(type: string, data: Uint8Array): void {
    const id = this.nextId++;
    const frame = encodeFrame({ id, first: id, owner: true, token: true, last: true, type, data });
    if (!this.socket.destroyed) this.socket.write(frame);
  }

  writeRaw(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * A monitor component port that does nothing by itself: the test writes frames and reads what the
 * component sent. Every accepted connection is kept in {@link connections}.
 */
export class FakeMonitor {
  readonly connections: FakeMonitorConnection[] = [];

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** Called for every message received, on any connection (set by the test). */
  onMessage: (conn: FakeMonitorConnection, msg: ChatterMsg) => void = () => {};
  onAccept: (conn: FakeMonitorConnection) => void = () => {};
  onEnd: (conn: FakeMonitorConnection) => void = () => {};

  static async start(): Promise<FakeMonitor> {
    let self: FakeMonitor | null = null;
    const pending: Socket[] = [];
    const server = createServer((socket) => {
      if (self === null) pending.push(socket);
      else self.accept(socket);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    self = new FakeMonitor(server, port);
    for (const s of pending) self.accept(s);
    return self;
  }

  get address() {
    return { host: '127.0.0.1', port: this.port };
  }

  private accept(socket: Socket): void {
    const conn = new FakeMonitorConnection(
      this.connections.length,
      socket,
      (c, m) => this.onMessage(c, m),
      (c) => this.onEnd(c),
    );
    this.connections.push(conn);
    this.onAccept(conn);
  }

  /** The connection with this index (0 = the first accepted), once accepted. */
  async connection(index: number, timeoutMs = 5000): Promise<FakeMonitorConnection> {
    await until(
      () => this.connections.length > index,
      `monitor connection #${index + 1}`,
      timeoutMs,
    );
    return this.connections[index] as FakeMonitorConnection;
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
