/**
 * One client connection: framing (detected from the client's first message, or fixed), 0.7
 * segment reassembly and pings, request dispatch with a window of requests in flight, the login
 * state and the last state sent (the server's flush computes the next diff from it). Nothing a
 * client sends can throw out of here: bad frames close the connection with a reason, bad requests
 * get error responses.
 *
 * Backpressure: with `max_pending_requests` requests in flight the session stops reading the
 * connection (`ws.pause()`: TCP then pushes back on the client). Messages the WebSocket layer had
 * already parsed wait in {@link Session.backlog}, in order, and are handled as requests complete;
 * once the backlog is empty and the window has room, reading resumes. Memory per connection stays
 * bounded: the window's messages, what the WebSocket layer had buffered, one unfinished message.
 */

import { isAscii } from 'node:buffer';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import type { Role } from '../roles.js';
import type { Settings } from './conf.js';
import {
  detectFraming,
  encodeFrames,
  type Framing,
  HEAD_CHARS,
  LARGE_MESSAGE_BYTES,
  looksLike07Json,
  OPEN_BRACE,
  PING,
  PONG,
  peekRequestId,
  SEGMENT_LAST,
  SEGMENT_MORE,
  SegmentAssembler,
} from './framing.js';
import { type ErrorCode, type HandlerEnv, handleRequest, type SessionAccess } from './handlers.js';
import { parseLargeRequest } from './large-request.js';
import { type MessageError, parseRequest, type Request, responseText } from './messages.js';
import { tooLargeText } from './size-limit.js';
import type { SentState } from './state-texts.js';

/** What a session needs from its server. */
export interface SessionHost {
  readonly settings: Settings;
  readonly env: HandlerEnv;
  readonly logger: Logger;
  /** The session can now receive state (framing known) or its view changed (login/logout). */
  stateChanged(session: Session): void;
  /** Sequence number of the last model change seen. */
  changeSeq(): number;
  closed(session: Session): void;
  count(event: SessionEvent): void;
}

export type SessionEvent =
  | { kind: 'request'; name: string; success: boolean }
  | { kind: 'rejected'; reason: string }
  /** The connection reached its window and stopped being read. */
  | { kind: 'paused' }
  | { kind: 'login'; success: boolean };

const OPEN = 1;

export class Session implements SessionAccess {
  framing: Framing | null;
  authorized: boolean;
  user: string | null = null;
  role: Role = 'write';
  /** The state this client holds (undefined until the first push). */
  lastSent: SentState | undefined;
  /** Notifications are due for changes after this sequence number (see SessionHost.changeSeq). */
  notifyAfter = Number.POSITIVE_INFINITY;
  private pending = 0;
  /** Messages received while at the window, handled in order as requests complete. */
  private backlog: { raw: RawData; isBinary: boolean }[] = [];
  /** We stopped reading the socket ourselves (the window is full): no ping timeout meanwhile. */
  private paused = false;
  private closing = false;
  /** The socket is corked until the end of this turn (see corkForTurn). */
  private corkedTurn = false;
  private closeWhenAnswered = false;
  private readonly assembler: SegmentAssembler;
  private framingTimer: NodeJS.Timeout | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private readonly log: Logger;

  constructor(
    private readonly ws: WebSocket,
    readonly remote: string,
    private readonly host: SessionHost,
  ) {
    const s = host.settings;
    this.log = host.logger.child({ remote });
    this.authorized = s.users === null;
    this.assembler = new SegmentAssembler(s.maxMessageSize);
    this.framing = null;
    ws.on('message', (data, isBinary) => this.onReceived(data, isBinary));
    ws.on('close', (code) => this.onClose(code));
    ws.on('error', (err) => this.log.debug({ err }, 'websocket error'));
    if (s.framing !== 'auto') {
      this.setFraming(s.framing);
    } else {
      this.framingTimer = setTimeout(() => {
        this.framingTimer = null;
        if (this.framing === null) this.setFraming('0.7');
      }, s.framingWaitMs);
    }
  }

  /** Can receive state and notifications. */
  get ready(): boolean {
    return this.framing !== null && !this.closing && this.ws.readyState === OPEN;
  }

  // SessionAccess (for handlers)
  login(username: string, role: Role): void {
    this.user = username;
    this.role = role;
    this.log.info({ user: username, role }, 'login');
    this.host.count({ kind: 'login', success: true });
    if (!this.authorized) {
      this.authorized = true;
      this.notifyAfter = this.host.changeSeq();
      this.host.stateChanged(this);
    }
  }

  logout(): void {
    if (this.host.settings.users === null) return; // open: nothing to log out of
    this.log.info({ user: this.user }, 'logout');
    this.user = null;
    this.authorized = false;
    this.host.stateChanged(this);
  }

  closeAfterResponse(): void {
    this.closeWhenAnswered = true;
  }

  /** Sends one JSON text in this connection's framing (no-op once closing). */
  sendText(json: string): void {
    if (!this.ready) return;
    // A client that is not reading is one whose backlog from earlier messages exceeds the limit:
    // this message itself may be larger than max_send_buffer (a big model read).
    const backlog = this.ws.bufferedAmount;
    for (const frame of encodeFrames(
      this.framing as Framing,
      json,
      this.host.settings.maxSegmentSize,
    ))
      this.ws.send(frame);
    if (backlog > this.host.settings.maxSendBuffer) {
      this.log.warn(
        { buffered: this.ws.bufferedAmount, limit: this.host.settings.maxSendBuffer },
        'client is not reading; disconnecting it',
      );
      this.host.count({ kind: 'rejected', reason: 'send_buffer' });
      this.closing = true;
      this.ws.terminate();
    }
  }

  /**
   * Runs `send` with the connection's socket corked, so that the messages it sends leave in one
   * write instead of one system call each. ws has no public cork; its own sender corks
   * `_socket` the same way around each frame.
   */
  corked(send: () => void): void {
    const socket = (this.ws as unknown as { _socket?: Socket })._socket;
    socket?.cork();
    try {
      send();
    } finally {
      socket?.uncork();
    }
  }

  /**
   * Keeps the socket corked until the current turn's promise continuations have run: a group
   * commit acknowledges many requests at once, and their responses then leave in one write
   * instead of one system call (and one wake-up of the client) each. Large messages are not held
   * back for it.
   */
  private corkForTurn(): void {
    if (this.corkedTurn) return;
    const socket = (this.ws as unknown as { _socket?: Socket })._socket;
    if (socket === undefined) return;
    socket.cork();
    this.corkedTurn = true;
    // A tick queued from a promise continuation runs once the microtask queue is empty.
    process.nextTick(() => {
      this.corkedTurn = false;
      socket.uncork();
    });
  }

  close(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.clearTimers();
    this.backlog = [];
    // The close handshake needs the client's close frame: read again.
    if (this.paused) {
      this.paused = false;
      this.ws.resume();
    }
    if (this.ws.readyState === OPEN) this.ws.close(code, truncateReason(reason));
  }

  terminate(): void {
    this.closing = true;
    this.ws.terminate();
  }

  private setFraming(framing: Framing): void {
    this.framing = framing;
    if (this.framingTimer !== null) clearTimeout(this.framingTimer);
    this.framingTimer = null;
    this.log.debug({ framing }, 'framing');
    if (this.authorized) this.notifyAfter = this.host.changeSeq();
    if (framing === '0.7') this.touch();
    this.host.stateChanged(this);
  }

  /** Requests in flight (dispatched to the backend and not yet answered). */
  get inFlight(): number {
    return this.pending;
  }

  /** Messages waiting for room in the window. */
  get backlogLength(): number {
    return this.backlog.length;
  }

  /** True while reading is paused because the window is full. */
  get isPaused(): boolean {
    return this.paused;
  }

  private onReceived(raw: RawData, isBinary: boolean): void {
    if (this.closing) return;
    if (this.backlog.length > 0 || this.atWindow()) {
      // Parsed by the WebSocket layer before (or just as) reading stopped: keep it, in order.
      this.backlog.push({ raw, isBinary });
      this.pauseReading();
      return;
    }
    this.onMessage(raw, isBinary);
  }

  private atWindow(): boolean {
    return this.pending >= this.host.settings.maxPendingRequests;
  }

  private pauseReading(): void {
    if (this.paused) return;
    this.paused = true;
    this.ws.pause();
    this.host.count({ kind: 'paused' });
    // The client is not silent: we are not reading. Its pongs wait unread, so no ping timeout.
    this.stopPingTimers();
  }

  /** A request completed: handle what waited, then read again once the window has room. */
  private drainBacklog(): void {
    while (this.backlog.length > 0 && !this.atWindow() && !this.closing) {
      const m = this.backlog.shift() as { raw: RawData; isBinary: boolean };
      this.onMessage(m.raw, m.isBinary);
    }
    if (this.closing) {
      this.backlog = [];
      return;
    }
    if (this.paused && this.backlog.length === 0 && !this.atWindow()) {
      this.paused = false;
      this.ws.resume();
      if (this.framing === '0.7') this.touch();
    }
  }

  private onMessage(raw: RawData, isBinary: boolean): void {
    if (this.closing) return;
    if (isBinary) {
      this.reject(1003, 'binary messages are not supported (Juggler uses text messages)', 'binary');
      return;
    }
    const bytes = Buffer.isBuffer(raw)
      ? raw
      : Array.isArray(raw)
        ? Buffer.concat(raw)
        : Buffer.from(raw);
    if (this.framing === null) {
      // Both framings announce themselves by an ASCII character: its byte tells.
      const f = detectFraming(bytes.length === 0 ? '' : String.fromCharCode(bytes[0] as number));
      if (f === null) {
        this.reject(
          1002,
          'unrecognized framing: a first message must start with { (0.6) or 0-3 (0.7)',
          'framing',
        );
        return;
      }
      this.setFraming(f);
    }
    if (this.framing === '0.6') {
      this.onMessage06(bytes);
    } else {
      this.touch();
      this.onFrame07(bytes);
    }
  }

  private onMessage06(bytes: Buffer): void {
    // A large ASCII message (a model) is read from its bytes (its characters are its bytes).
    if (bytes.length < LARGE_MESSAGE_BYTES || !isAscii(bytes)) {
      this.onJson06(bytes.toString('utf8'));
      return;
    }
    if (bytes.length > this.host.settings.maxMessageSize) {
      this.tooLarge(bytes.toString('latin1', 0, HEAD_CHARS), bytes.length);
      return;
    }
    if (looksLike07Json(bytes[0], bytes[1])) {
      this.reject(1002, 'expected hat-juggler 0.6 framing (this connection speaks 0.6)', 'framing');
      return;
    }
    this.onRequest(() => parseLargeRequest(bytes));
  }

  private onJson06(text: string): void {
    if (text.length > this.host.settings.maxMessageSize) {
      this.tooLarge(text.slice(0, HEAD_CHARS), text.length);
      return;
    }
    if (looksLike07Json(text.charCodeAt(0), text.charCodeAt(1))) {
      this.reject(1002, 'expected hat-juggler 0.6 framing (this connection speaks 0.6)', 'framing');
      return;
    }
    this.onJson(text);
  }

  private onFrame07(frame: Buffer): void {
    const type = frame[0];
    if (type === SEGMENT_LAST || type === SEGMENT_MORE) {
      const r = this.assembler.push(frame.subarray(1), type === SEGMENT_LAST);
      if (r.kind === 'message') this.onJson(r.text);
      else if (r.kind === 'ascii') this.onRequest(() => parseLargeRequest(r.bytes));
      else if (r.kind === 'too_large') this.tooLarge(r.head, r.length);
    } else if (type === PING) {
      this.ws.send(`3${frame.toString('utf8', 1)}`);
    } else if (type === PONG) {
      // pong: touch() already restarted the idle timer
    } else {
      const hint = type === OPEN_BRACE ? ' (this connection speaks 0.7: prefix 0)' : '';
      this.reject(1002, `unsupported 0.7 message type${hint}`, 'framing');
    }
  }

  private onJson(text: string): void {
    this.onRequest(() => parseRequest(text));
  }

  private onRequest(parse: () => Request): void {
    let req: Request;
    try {
      req = parse();
    } catch (err) {
      const e = err as MessageError;
      if (e.id !== null) this.respond(e.id, false, e.message, 'invalid');
      else this.reject(1002, e.message, 'invalid_message');
      return;
    }
    // Never over the window: onReceived/drainBacklog hand over no message while it is full.
    this.pending++;
    void handleRequest(req.name, req.data, this, this.host.env).then((outcome) => {
      this.pending--;
      this.host.count({ kind: 'request', name: req.name, success: outcome.success });
      this.respond(req.id, outcome.success, outcome.data, outcome.code);
      if (this.closeWhenAnswered) this.close(1000, 'login failed');
      this.drainBacklog();
    });
  }

  /** `code`: on failures, the machine-readable reason (see handlers.ts for when it is sent). */
  private respond(id: number, success: boolean, data: unknown, code?: ErrorCode): void {
    try {
      const text = responseText(id, success, data, code);
      if (text.length <= CORK_FOR_TURN_MAX) this.corkForTurn();
      this.sendText(text);
    } catch (err) {
      this.log.error({ err }, 'cannot send a response');
    }
  }

  private tooLarge(head: string, length: number): void {
    this.host.count({ kind: 'rejected', reason: 'too_large' });
    const id = peekRequestId(head);
    const limit = this.host.settings.maxMessageSize;
    if (id !== null) {
      this.log.warn({ length, limit }, 'request over max_message_size refused');
      this.respond(id, false, tooLargeText(length, limit), 'too_large');
    } else {
      // A close reason holds at most 123 bytes: the short form, naming the setting.
      this.close(
        1009,
        `message of ${length} characters is over the limit of ${limit} (max_message_size)`,
      );
    }
  }

  private reject(code: number, reason: string, metric: string): void {
    this.log.warn({ reason }, 'closing connection after a protocol error');
    this.host.count({ kind: 'rejected', reason: metric });
    this.close(code, reason);
  }

  /** Something arrived (0.7): restart the idle timer that leads to a ping. */
  private touch(): void {
    if (this.closing || this.paused) {
      this.stopPingTimers();
      return;
    }
    if (this.pingTimer !== null) {
      clearTimeout(this.pingTimer);
      this.pingTimer = null;
    }
    // On every message: restart the pending idle timer rather than make a new one.
    if (this.idleTimer !== null) {
      this.idleTimer.refresh();
      return;
    }
    const { pingDelayMs, pingTimeoutMs } = this.host.settings;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (!this.ready) return;
      this.ws.send('2');
      this.pingTimer = setTimeout(() => {
        this.pingTimer = null;
        this.log.info('no answer to ping; closing');
        this.terminate();
      }, pingTimeoutMs);
    }, pingDelayMs);
  }

  private stopPingTimers(): void {
    if (this.pingTimer !== null) clearTimeout(this.pingTimer);
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.pingTimer = this.idleTimer = null;
  }

  private clearTimers(): void {
    for (const t of [this.framingTimer, this.idleTimer, this.pingTimer])
      if (t !== null) clearTimeout(t);
    this.framingTimer = this.idleTimer = this.pingTimer = null;
  }

  private onClose(code: number): void {
    this.closing = true;
    this.backlog = [];
    this.clearTimers();
    this.log.debug({ code }, 'connection closed');
    this.host.closed(this);
  }
}

/** Responses up to this length wait for the end of their turn to leave together. */
const CORK_FOR_TURN_MAX = 16 * 1024;

function truncateReason(reason: string): string {
  // A close reason is at most 123 bytes; ours are ASCII.
  return reason.length <= 123 ? reason : `${reason.slice(0, 120)}...`;
}
