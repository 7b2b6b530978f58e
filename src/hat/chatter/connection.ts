/**
 * A chatter connection over one TCP socket (hat-drivers `hat.drivers.chatter`).
 *
 * - Message ids: our own counter from 1, one id per message sent (pings and pongs included).
 * - Conversations: `(owner, first)`; a received message maps to the local key
 *   `{owner: !msg.owner, first: msg.first}`, which is what a reply must be sent with.
 * - Pings: after `pingDelay` ms without receiving anything we send `HatChatter.Ping` (last=false);
 *   if nothing at all arrives within `pingTimeout` ms after it, the connection closes with a
 *   {@link PingTimeoutError}. Every received Ping is answered at once with a Pong; Pings and Pongs
 *   never reach the handler. `pingDelay = 0` disables our own pings (replies are always sent).
 * - Any malformed frame, or an exception thrown by the message handler, closes the connection
 *   with a typed error. Nothing here throws at the caller asynchronously.
 */
import type { Socket } from 'node:net';
import {
  ConnectionClosedError,
  HatConnectionError,
  PingTimeoutError,
  ProtocolError,
} from './errors.js';
import { FrameReader } from './framing.js';
import {
  type ChatterMsg,
  DEFAULT_MAX_FRAME_SIZE,
  decodeBody,
  encodeFrame,
  PING,
  PONG,
} from './message.js';

export interface Conversation {
  /** True when we started the conversation. */
  readonly owner: boolean;
  /** Id of its first message in the starter's numbering. */
  readonly first: number;
}

/** A received application message (never a Ping or Pong). */
export interface ReceivedMsg {
  readonly id: number;
  /** The conversation in local terms (reply with `conv: msg.conv`). */
  readonly conv: Conversation;
  /** True when this message started its conversation (`owner && first == id`). */
  readonly first: boolean;
  readonly last: boolean;
  readonly token: boolean;
  readonly type: string;
  readonly data: Uint8Array;
}

export interface ConnectionOptions {
  /** Idle time before we send a Ping, ms (default 20000; 0 disables our pings). */
  pingDelay?: number;
  /** Time to wait for any message after our Ping before closing, ms (default 20000). */
  pingTimeout?: number;
  /** Largest accepted frame body in bytes (default {@link DEFAULT_MAX_FRAME_SIZE}). */
  maxFrameSize?: number;
  /** Called for every application message, in order. Throwing closes the connection. */
  onMessage: (msg: ReceivedMsg) => void;
  /** Called once when the connection starts closing, with the reason (null: local clean close). */
  onClose?: (reason: Error | null) => void;
}

export interface SendOptions {
  /** Reply in this conversation; omitted: start a new one. */
  conv?: Conversation;
  /** Close the conversation (default true). */
  last?: boolean;
  /** Pass the turn (default true; the reference always sends true). */
  token?: boolean;
}

export const DEFAULT_PING_DELAY = 20_000;
export const DEFAULT_PING_TIMEOUT = 20_000;

/** How long a locally closed socket may take to flush before it is destroyed. */
const CLOSE_FLUSH_TIMEOUT = 2_000;

export class Connection {
  readonly pingDelay: number;
  readonly pingTimeout: number;
  readonly maxFrameSize: number;
  /** Resolves once the socket is fully closed; the value is why (null for a local clean close). */
  readonly closed: Promise<Error | null>;

  private nextId = 1;
  private readonly reader: FrameReader;
  private readonly onMessage: (msg: ReceivedMsg) => void;
  private readonly onClose: ((reason: Error | null) => void) | undefined;
  private closeReason: Error | null | undefined = undefined;
  private resolveClosed!: (reason: Error | null) => void;
  private socketClosed = false;
  private paused = false;

  private lastReceived = Date.now();
  /** Chunks received so far: a change after our Ping means the peer is alive. */
  private receivedCount = 0;
  private countAtPing = 0;
  private awaitingPong = false;
  private pingTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly socket: Socket,
    options: ConnectionOptions,
  ) {
    this.pingDelay = options.pingDelay ?? DEFAULT_PING_DELAY;
    this.pingTimeout = options.pingTimeout ?? DEFAULT_PING_TIMEOUT;
    this.maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    if (!(this.pingDelay >= 0) || !(this.pingTimeout > 0)) {
      throw new RangeError(`invalid ping delay/timeout ${this.pingDelay}/${this.pingTimeout}`);
    }
    this.reader = new FrameReader(this.maxFrameSize);
    this.onMessage = options.onMessage;
    this.onClose = options.onClose;
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });

    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('end', () => this.fail(new ConnectionClosedError('connection closed by the peer')));
    socket.on('error', (err) =>
      this.fail(new ConnectionClosedError(`connection error: ${err.message}`, { cause: err })),
    );
    socket.on('close', () => {
      this.socketClosed = true;
      if (this.closeReason === undefined) {
        this.startClose(new ConnectionClosedError('connection closed'));
      }
      this.resolveClosed(this.closeReason ?? null);
    });
    if (socket.destroyed) {
      this.fail(new ConnectionClosedError('socket already closed'));
    } else {
      this.armPingTimer(this.pingDelay);
    }
  }

  /** False once closing has started (locally or by the peer). */
  get isOpen(): boolean {
    return this.closeReason === undefined;
  }

  /** Why the connection closed (undefined while open, null for a local clean close). */
  get reason(): Error | null | undefined {
    return this.closeReason;
  }

  /**
   * Sends one message and returns its conversation. Throws {@link ConnectionClosedError} when the
   * connection is closed. `onWritten` is called once the frame is handed to the OS (or with an
   * error if the socket fails first).
   */
  send(
    type: string,
    data: Uint8Array,
    options: SendOptions = {},
    onWritten?: (err?: Error) => void,
  ): Conversation {
    if (this.closeReason !== undefined) {
      throw new ConnectionClosedError('connection closed', {
        cause: this.closeReason ?? undefined,
      });
    }
    const id = this.nextId++;
    const conv = options.conv ?? { owner: true, first: id };
    const frame = encodeFrame({
      id,
      first: conv.first,
      owner: conv.owner,
      token: options.token ?? true,
      last: options.last ?? true,
      type,
      data,
    });
    if (onWritten === undefined) {
      this.socket.write(frame);
    } else {
      this.socket.write(frame, (err) => {
        onWritten(
          err
            ? new ConnectionClosedError(`write failed: ${err.message}`, { cause: err })
            : undefined,
        );
      });
    }
    return conv;
  }

  /** Closes cleanly: pending writes are flushed first (bounded), then the socket is destroyed. */
  close(): Promise<Error | null> {
    if (this.closeReason === undefined) {
      this.startClose(null);
      const socket = this.socket;
      socket.end(() => socket.destroy());
      setTimeout(() => socket.destroy(), CLOSE_FLUSH_TIMEOUT).unref();
    }
    return this.closed;
  }

  /** Closes at once with `reason` (nothing more is read or written). */
  abort(reason: Error): Promise<Error | null> {
    this.fail(reason);
    return this.closed;
  }

  /** Stops reading (and our ping timers) until {@link resume}: a stalled peer, for tests. */
  pause(): void {
    if (this.paused || this.closeReason !== undefined) return;
    this.paused = true;
    this.socket.pause();
    this.clearPingTimer();
  }

  resume(): void {
    if (!this.paused || this.closeReason !== undefined) return;
    this.paused = false;
    this.lastReceived = Date.now();
    this.awaitingPong = false;
    this.armPingTimer(this.pingDelay);
    this.socket.resume();
  }

  private receive(chunk: Buffer): void {
    if (this.closeReason !== undefined) return;
    this.lastReceived = Date.now();
    this.receivedCount++;
    try {
      this.reader.push(chunk, (body) => this.dispatch(body));
    } catch (err) {
      this.fail(
        err instanceof HatConnectionError
          ? err
          : new ProtocolError(
              `message handler failed: ${err instanceof Error ? err.message : String(err)}`,
              { cause: err },
            ),
      );
    }
  }

  private dispatch(body: Uint8Array): void {
    if (this.closeReason !== undefined) return;
    const msg: ChatterMsg = decodeBody(body);
    if (msg.type === PING) {
      this.send(PONG, new Uint8Array(0), { conv: { owner: !msg.owner, first: msg.first } });
      return;
    }
    if (msg.type === PONG) return;
    this.onMessage({
      id: msg.id,
      conv: { owner: !msg.owner, first: msg.first },
      first: msg.owner && msg.first === msg.id,
      last: msg.last,
      token: msg.token,
      type: msg.type,
      data: msg.data,
    });
  }

  private fail(reason: Error): void {
    if (this.closeReason !== undefined) return;
    this.startClose(reason);
    this.socket.destroy();
  }

  private startClose(reason: Error | null): void {
    this.closeReason = reason;
    this.clearPingTimer();
    if (this.socketClosed) this.resolveClosed(reason);
    if (this.onClose !== undefined) {
      try {
        this.onClose(reason);
      } catch {
        // A close callback must not break the transport; its errors are the caller's to handle.
      }
    }
  }

  // -- ping loop (lazy: received frames only record a time; the timer re-arms itself) --------

  private armPingTimer(ms: number): void {
    this.clearPingTimer();
    if (this.pingDelay === 0 || this.closeReason !== undefined || this.paused) return;
    this.pingTimer = setTimeout(() => this.onPingTimer(), Math.max(0, ms));
    this.pingTimer.unref();
  }

  private clearPingTimer(): void {
    if (this.pingTimer !== null) {
      clearTimeout(this.pingTimer);
      this.pingTimer = null;
    }
  }

  private onPingTimer(): void {
    this.pingTimer = null;
    if (this.closeReason !== undefined || this.paused) return;
    const now = Date.now();
    if (this.awaitingPong) {
      if (this.receivedCount !== this.countAtPing) {
        this.awaitingPong = false;
        this.armPingTimer(this.pingDelay - (now - this.lastReceived));
        return;
      }
      this.fail(new PingTimeoutError(this.pingTimeout));
      return;
    }
    const idle = now - this.lastReceived;
    if (idle < this.pingDelay) {
      this.armPingTimer(this.pingDelay - idle);
      return;
    }
    this.send(PING, new Uint8Array(0), { last: false });
    this.awaitingPong = true;
    this.countAtPing = this.receivedCount;
    this.armPingTimer(this.pingTimeout);
  }
}
