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
 * - A peer busy with our data is not a dead one. The peer reads a frame whole before it reads the
 *   Ping queued behind it, and the Hat event server (Python) then decodes it, stores it, notifies
 *   its subscribers and encodes its response, answering nothing meanwhile: a 47 MB model (63 MB of
 *   JSON) kept a real one silent for more than 20 s. So the wait after our Ping grows by 1 ms per
 *   {@link BUSY_PEER_BYTES_PER_SECOND}/1000 bytes the peer owes us: the larger of the bytes we
 *   sent (pings and pongs aside) since we last received anything and the bytes of our requests it
 *   has not answered yet (a request: a message starting a conversation with last=false; answered:
 *   any message arrives in that conversation). An idle connection owes nothing, so a dead idle
 *   peer is still found after `pingTimeout`; a dead busy one after at most `pingTimeout` + owed
 *   bytes / 1 MB/s.
 * - The verdict waits for input that is already there: after a long synchronous stretch of our
 *   own (decoding a big message) the ping timer may run before the socket's data is read, so the
 *   check is repeated once after the pending I/O (setImmediate) before the connection is closed.
 * - Any malformed frame, or an exception thrown by the message handler, closes the connection
 *   with a typed error. Nothing here throws at the caller asynchronously.
 */
import type { Socket } from 'node:net';
import { transientReadsOf } from './connect.js';
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
  encodeFrameParts,
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
  /**
   * How fast the peer is assumed to work through bytes it owes us (default
   * {@link BUSY_PEER_BYTES_PER_SECOND}): the wait after our Ping grows by owed bytes / this rate.
   */
  busyBytesPerSecond?: number;
  /**
   * Called for every application message, in order. Throwing closes the connection. Returning
   * true says nothing refers to `msg.data` any more (neither it nor a view of it): the memory of a
   * large message may then hold the next one (see `FrameReader.recycle`).
   */
  onMessage: (msg: ReceivedMsg) => unknown;
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

/**
 * The rate at which a peer is assumed to work through the bytes we sent it (1 MB/s): a
 * conservative figure for a busy or slow Hat event server. The Python server decodes a register
 * request's JSON once and encodes it again for its store, for every subscriber's notification and
 * for the response (measured on a 2-core x86 box: `json.loads` 180 MB/s, `json.dumps` 107 MB/s and
 * chatter's frame assembly 57 MB/s, ≈ 14 MB/s together); a real server took more than 20 s for a
 * 63 MB request (< 3 MB/s); 1 MB/s leaves room for slower hardware and a loaded server.
 */
export const BUSY_PEER_BYTES_PER_SECOND = 1_000_000;

/** The extra time a peer gets for `bytes` of ours it has not answered yet, ms. */
export function busyAllowanceMs(
  bytes: number,
  bytesPerSecond = BUSY_PEER_BYTES_PER_SECOND,
): number {
  return bytes <= 0 ? 0 : Math.ceil((bytes * 1000) / bytesPerSecond);
}

/** How long a locally closed socket may take to flush before it is destroyed. */
const CLOSE_FLUSH_TIMEOUT = 2_000;

export class Connection {
  readonly pingDelay: number;
  readonly pingTimeout: number;
  readonly maxFrameSize: number;
  readonly busyBytesPerSecond: number;
  /** Resolves once the socket is fully closed; the value is why (null for a local clean close). */
  readonly closed: Promise<Error | null>;

  private nextId = 1;
  private readonly reader: FrameReader;
  private readonly onMessage: (msg: ReceivedMsg) => unknown;
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
  private pingSentAt = 0;
  private pingTimer: NodeJS.Timeout | null = null;
  /** A verdict on a silent peer waits for the I/O already pending (see the file comment). */
  private verdictPending = false;
  /** Bytes of frames sent since anything was last received. */
  private sentSinceReceived = 0;
  /** Our requests the peer has not answered yet: conversation first id → frame bytes. */
  private readonly unanswered = new Map<number, number>();
  private unansweredBytes = 0;

  constructor(
    readonly socket: Socket,
    options: ConnectionOptions,
  ) {
    this.pingDelay = options.pingDelay ?? DEFAULT_PING_DELAY;
    this.pingTimeout = options.pingTimeout ?? DEFAULT_PING_TIMEOUT;
    this.maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    this.busyBytesPerSecond = options.busyBytesPerSecond ?? BUSY_PEER_BYTES_PER_SECOND;
    if (!(this.pingDelay >= 0) || !(this.pingTimeout > 0)) {
      throw new RangeError(`invalid ping delay/timeout ${this.pingDelay}/${this.pingTimeout}`);
    }
    if (!(this.busyBytesPerSecond > 0)) {
      throw new RangeError(`invalid busyBytesPerSecond ${this.busyBytesPerSecond}`);
    }
    const reads = transientReadsOf(socket);
    this.reader = new FrameReader(this.maxFrameSize, reads !== undefined);
    this.onMessage = options.onMessage;
    this.onClose = options.onClose;
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });

    socket.setNoDelay(true);
    if (reads === undefined) socket.on('data', (chunk: Buffer) => this.receive(chunk));
    else reads.attach((chunk) => this.receive(chunk));
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
   * Bytes the peer owes us an answer or a sign of life for: the larger of the bytes sent since
   * anything was last received and the bytes of our requests it has not answered yet.
   */
  get owedBytes(): number {
    return Math.max(this.sentSinceReceived, this.unansweredBytes);
  }

  /**
   * Sends one message and returns its conversation. Throws {@link ConnectionClosedError} when the
   * connection is closed. `onWritten` is called once the frame is handed to the OS (or with an
   * error if the socket fails first). A `data` of 256 KiB or more is written as it is, not copied:
   * leave it unchanged until it is written (the eventer's encoders give fresh buffers).
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
    // A large payload is written after its head, not copied into one frame buffer.
    const parts = encodeFrameParts({
      id,
      first: conv.first,
      owner: conv.owner,
      token: options.token ?? true,
      last: options.last ?? true,
      type,
      data,
    });
    const frame = { length: parts.reduce((n, p) => n + p.length, 0) };
    // Pings and pongs are no work for the peer: only application messages are owed.
    if (type !== PING && type !== PONG) this.sentSinceReceived += frame.length;
    if (options.conv === undefined) {
      if (!(options.last ?? true) && type !== PING) {
        this.unanswered.set(id, frame.length);
        this.unansweredBytes += frame.length;
      }
    } else if (conv.owner && (options.last ?? true)) {
      this.answered(conv.first);
    }
    const last = parts.length - 1;
    if (last > 0) this.socket.cork();
    for (let i = 0; i < last; i++) this.socket.write(parts[i] as Buffer);
    if (onWritten === undefined) {
      this.socket.write(parts[last] as Buffer);
    } else {
      this.socket.write(parts[last] as Buffer, (err) => {
        onWritten(
          err
            ? new ConnectionClosedError(`write failed: ${err.message}`, { cause: err })
            : undefined,
        );
      });
    }
    if (last > 0) this.socket.uncork();
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
    this.sentSinceReceived = 0;
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
    if (!msg.owner) this.answered(msg.first);
    if (msg.type === PING) {
      this.send(PONG, new Uint8Array(0), { conv: { owner: !msg.owner, first: msg.first } });
      return;
    }
    if (msg.type === PONG) return;
    const released = this.onMessage({
      id: msg.id,
      conv: { owner: !msg.owner, first: msg.first },
      first: msg.owner && msg.first === msg.id,
      last: msg.last,
      token: msg.token,
      type: msg.type,
      data: msg.data,
    });
    if (released === true) this.reader.recycle(body);
  }

  /** The peer answered (or we closed) our conversation `first`: it no longer owes its bytes. */
  private answered(first: number): void {
    const bytes = this.unanswered.get(first);
    if (bytes === undefined) return;
    this.unanswered.delete(first);
    this.unansweredBytes -= bytes;
  }

  private fail(reason: Error): void {
    if (this.closeReason !== undefined) return;
    this.startClose(reason);
    this.socket.destroy();
  }

  private startClose(reason: Error | null): void {
    this.closeReason = reason;
    this.clearPingTimer();
    this.reader.dropSpare();
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
        this.peerAlive(now);
        return;
      }
      const extra = busyAllowanceMs(this.owedBytes, this.busyBytesPerSecond);
      const left = this.pingTimeout + extra - (now - this.pingSentAt);
      if (left > 0) {
        this.armPingTimer(left);
        return;
      }
      // Read what is already waiting on the socket before calling the peer dead.
      if (this.verdictPending) return;
      this.verdictPending = true;
      setImmediate(() => {
        this.verdictPending = false;
        if (this.closeReason !== undefined || this.paused || !this.awaitingPong) return;
        if (this.receivedCount !== this.countAtPing) {
          this.peerAlive(Date.now());
          return;
        }
        const owed = this.owedBytes;
        this.fail(
          new PingTimeoutError(this.pingTimeout, {
            bytes: owed,
            extraMs: busyAllowanceMs(owed, this.busyBytesPerSecond),
          }),
        );
      });
      return;
    }
    const idle = now - this.lastReceived;
    if (idle < this.pingDelay) {
      this.armPingTimer(this.pingDelay - idle);
      return;
    }
    this.send(PING, new Uint8Array(0), { last: false });
    this.awaitingPong = true;
    this.pingSentAt = now;
    this.countAtPing = this.receivedCount;
    this.armPingTimer(this.pingTimeout);
  }

  /** Something arrived since our Ping: wait for the next idle period. */
  private peerAlive(now: number): void {
    this.awaitingPong = false;
    this.armPingTimer(this.pingDelay - (now - this.lastReceived));
  }
}
