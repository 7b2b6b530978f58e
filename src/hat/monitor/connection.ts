/**
 * One connection to a hat-monitor server's component port (hat-monitor 0.8.21,
 * `hat.monitor.observer.client`): chatter over TCP, every message a one-message conversation.
 *
 * The monitor sends `MsgServer` on accept and on every change of its state, often twice per change
 * (the first one stale) and sometimes identical to the previous one; {@link MonitorConnection.state$}
 * emits only the distinct ones. `MsgClose` means the monitor drops us: we close the TCP connection.
 * Anything else from the monitor (an unexpected type, malformed SBS) closes the connection with a
 * {@link ProtocolError}. Nothing here throws at the caller asynchronously.
 */
import { type Observable, ReplaySubject } from 'rxjs';
import { type Address, connectSocket, formatAddress } from '../chatter/connect.js';
import { Connection, type ReceivedMsg } from '../chatter/connection.js';
import { decodeMonitorMessage, encodeClientMsg, MSG_CLIENT } from './codec.js';
import type { ClientMsg, ServerMsg } from './common.js';

export interface MonitorConnectOptions {
  /** Idle ms before we ping (default 20000, chatter's default; 0 = never ping first). */
  pingDelay?: number;
  /** Ms without any message after our ping before the connection is closed (default 20000). */
  pingTimeout?: number;
  /** Ms allowed for the TCP connect (default 10000). */
  connectTimeout?: number;
  /** Largest accepted frame body, bytes (default 16 MiB: a monitor state is small). */
  maxFrameSize?: number;
}

export const DEFAULT_MONITOR_PORT = 23010;
const DEFAULT_CONNECT_TIMEOUT = 10_000;
const DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024;

/** The monitor sent MsgClose: it dropped this component (shutdown, or our input was invalid). */
export class MonitorCloseError extends Error {
  constructor(where: string) {
    super(`the monitor at ${where} closed the connection (MsgClose)`);
    this.name = 'MonitorCloseError';
  }
}

export class MonitorConnection {
  /** Every distinct MsgServer, the latest replayed to new subscribers; completes on close. */
  readonly state$: Observable<ServerMsg>;
  /** Resolves once closed, with the reason (null: closed locally). */
  readonly closed: Promise<Error | null>;
  readonly address: string;
  private readonly conn: Connection;
  private readonly subject = new ReplaySubject<ServerMsg>(1);
  private latest: ServerMsg | null = null;
  private latestKey = '';
  private lastSentKey = '';

  constructor(socket: import('node:net').Socket, address: string, options: MonitorConnectOptions) {
    this.address = address;
    this.state$ = this.subject.asObservable();
    this.conn = new Connection(socket, {
      pingDelay: options.pingDelay,
      pingTimeout: options.pingTimeout,
      maxFrameSize: options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
      onMessage: (msg) => this.onMessage(msg),
      onClose: () => this.subject.complete(),
    });
    this.closed = this.conn.closed;
  }

  /** The latest MsgServer (null before the first). */
  get state(): ServerMsg | null {
    return this.latest;
  }

  get isOpen(): boolean {
    return this.conn.isOpen;
  }

  /**
   * Sends MsgClient unless it equals the last one sent (the monitor ignores an unchanged one
   * anyway). Returns whether it was sent; false also when the connection is closed.
   */
  send(msg: ClientMsg): boolean {
    const data = encodeClientMsg(msg);
    const key = data.toString('hex');
    if (key === this.lastSentKey || !this.conn.isOpen) return false;
    this.conn.send(MSG_CLIENT, data);
    this.lastSentKey = key;
    return true;
  }

  async close(): Promise<void> {
    await this.conn.close();
  }

  private onMessage(msg: ReceivedMsg): void {
    // Throwing here closes the connection with that error (chatter's rule).
    const decoded = decodeMonitorMessage(msg.type, msg.data);
    if (decoded.kind === 'close') {
      void this.conn.abort(new MonitorCloseError(this.address));
      return;
    }
    const key = Buffer.from(msg.data).toString('hex');
    if (key === this.latestKey) return;
    this.latestKey = key;
    this.latest = decoded.msg;
    this.subject.next(decoded.msg);
  }
}

/** Opens a connection to a monitor's component port. Rejects with a ConnectError. */
export async function connectMonitor(
  address: Address,
  options: MonitorConnectOptions = {},
): Promise<MonitorConnection> {
  const socket = await connectSocket(address, options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT);
  try {
    return new MonitorConnection(socket, formatAddress(address), options);
  } catch (err) {
    socket.destroy();
    throw err;
  }
}
