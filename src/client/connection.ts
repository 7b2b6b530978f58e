/**
 * A Juggler client connection (either framing): requests with responses matched by id, the
 * server's state kept in sync from its JSON Patch diffs, notifications, and 0.7 pings both ways.
 */
import { BehaviorSubject, type Observable, Subject } from 'rxjs';
import WebSocket from 'ws';
import { REQUEST_ERROR_CODES, type RequestErrorCode } from '../common/error-codes.js';
import {
  connectFailure,
  type FailureFacts,
  hostPort,
  type Probe,
  probeChatter,
} from './diagnose.js';
import { applyPatch, type JsonPatchOp } from './patch.js';
import { Decoder07, encode07, type Framing } from './wire.js';

export interface ConnectionOptions {
  /** Framing to speak (default 0.7, what current Juggler servers and the npm client use). */
  framing?: Framing;
  /** 0.7: ping after this many ms without a message from the server; null: never (default 10 000). */
  pingDelay?: number | null;
  /** 0.7: close when nothing arrives this many ms after a ping (default 10 000). */
  pingTimeout?: number;
  /** 0.7: largest segment sent, in characters (default 65 536). */
  maxSegmentSize?: number;
  /** Largest message accepted from the server, in characters (default 1 GiB). */
  maxMessageSize?: number;
  /** Give up opening the WebSocket after this many ms (default 10 000). */
  connectTimeout?: number;
  /** For `wss://` addresses: what to trust and, for mutual TLS, what to present. */
  tls?: TlsOptions;
}

/** TLS options of a `wss://` connection (passed to `ws`, hence to `tls.connect`). */
export interface TlsOptions {
  /** CA certificate(s) (PEM) to trust instead of the system's (a private CA, a self-signed server). */
  ca?: string | Buffer | (string | Buffer)[];
  /** Client certificate chain (PEM), for a server that requires one (mutual TLS). */
  cert?: string | Buffer;
  /** The client certificate's private key (PEM). */
  key?: string | Buffer;
  /** false: do not verify the server's certificate (default true). Anyone in the path can then read and change the traffic. */
  rejectUnauthorized?: boolean;
}

export interface Notification {
  name: string;
  data: unknown;
}

const KNOWN_CODES: ReadonlySet<string> = new Set(REQUEST_ERROR_CODES);

/** A request the server answered with `success: false`; `data` is what it sent (usually a text). */
export class RequestFailedError extends Error {
  /**
   * The machine-readable reason: the response's `code`, or `unauthorized` for AIMM's
   * `"unauthorized action"` text; null when the server gave none (AIMM's own server, or one of
   * AIMM's requests sent in AIMM's form through `request()`) or one this client does not know.
   */
  readonly code: RequestErrorCode | null;
  constructor(
    readonly request: string,
    readonly data: unknown,
    code?: unknown,
  ) {
    super(typeof data === 'string' ? data : `${request} failed: ${JSON.stringify(data)}`);
    this.name = 'RequestFailedError';
    this.code =
      typeof code === 'string' && KNOWN_CODES.has(code)
        ? (code as RequestErrorCode)
        : data === 'unauthorized action'
          ? 'unauthorized'
          : null;
  }
}

export class ConnectionClosedError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
  ) {
    super(`connection closed (${code}${reason === '' ? '' : `: ${reason}`})`);
    this.name = 'ConnectionClosedError';
  }
}

interface Pending {
  name: string;
  resolve(data: unknown): void;
  reject(err: Error): void;
}

export class JugglerConnection {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly decoder: Decoder07;
  private readonly stateSubject = new BehaviorSubject<unknown>(null);
  private readonly notifySubject = new Subject<Notification>();
  private pingDelayTimer: NodeJS.Timeout | null = null;
  private pingTimeoutTimer: NodeJS.Timeout | null = null;
  private closeInfo: ConnectionClosedError | null = null;
  private stateReceived = false;
  private readonly closedPromise: Promise<ConnectionClosedError>;
  private readonly options: Required<Omit<ConnectionOptions, 'tls'>>;

  /** Opens a connection to `url` (e.g. `ws://127.0.0.1:9950/`). */
  static open(url: string, options: ConnectionOptions = {}): Promise<JugglerConnection> {
    const conn = new JugglerConnection(url, options);
    return conn.opened.then(() => conn);
  }

  private readonly ws: WebSocket;
  private readonly opened: Promise<void>;

  private constructor(url: string, options: ConnectionOptions) {
    this.options = {
      framing: options.framing ?? '0.7',
      pingDelay: options.pingDelay === undefined ? 10_000 : options.pingDelay,
      pingTimeout: options.pingTimeout ?? 10_000,
      maxSegmentSize: options.maxSegmentSize ?? 65_536,
      maxMessageSize: options.maxMessageSize ?? 1024 * 1024 * 1024,
      connectTimeout: options.connectTimeout ?? 10_000,
    };
    this.decoder = new Decoder07(this.options.maxMessageSize);
    this.ws = new WebSocket(url, {
      perMessageDeflate: false,
      maxPayload: this.options.maxMessageSize + 16,
      handshakeTimeout: this.options.connectTimeout,
      ...options.tls,
    });
    this.closedPromise = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        this.onClosed(code, reason.toString('utf8'));
        resolve(this.closeInfo as ConnectionClosedError);
      });
    });
    this.opened = this.opening(url);
    this.ws.on('error', () => {
      // reported through `opened` or the close that follows
    });
    this.ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
  }

  /**
   * Resolves once the WebSocket is open; rejects with a {@link ConnectFailedError} that says what
   * the address seems to be when it is not a Juggler server. An HTTP answer without an upgrade is
   * reported as such; a server that stays silent for a while is asked (on a second connection)
   * whether it is a Hat server speaking chatter, which never answers a WebSocket handshake.
   */
  private opening(url: string): Promise<void> {
    const facts: FailureFacts = { timeoutMs: this.options.connectTimeout };
    let probe: Probe | null = null;
    // A Juggler server answers the handshake in milliseconds; after this, ask what it is.
    const probeDelay = Math.min(1000, this.options.connectTimeout / 3);
    const probeTimer = setTimeout(() => {
      if (this.ws.readyState !== WebSocket.CONNECTING) return;
      // Its answer must come before the handshake times out: 80% of the time left.
      const { host, port } = hostPort(url);
      probe = probeChatter(host, port, (this.options.connectTimeout - probeDelay) * 0.8);
      void probe.result.then((r) => {
        facts.probe = r;
        if (r === 'hat_chatter' && this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
      });
    }, probeDelay);
    this.ws.once('unexpected-response', (_req, res) => {
      facts.http = { status: res.statusCode ?? 0, statusText: res.statusMessage ?? '' };
      res.resume();
      this.ws.terminate();
    });
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(probeTimer);
        (probe as Probe | null)?.cancel();
      };
      this.ws.once('open', () => {
        done();
        this.resetPing();
        resolve();
      });
      this.ws.once('error', (err) => {
        facts.probeConnected = (probe as Probe | null)?.connected;
        done();
        reject(connectFailure(url, err, facts));
      });
    });
  }

  get framing(): Framing {
    return this.options.framing;
  }

  /** The server's state for this connection (null until the first push). */
  get state(): unknown {
    return this.stateSubject.value;
  }

  /** The state after every diff (starts with the current one). */
  get state$(): Observable<unknown> {
    return this.stateSubject.asObservable();
  }

  get notifications$(): Observable<Notification> {
    return this.notifySubject.asObservable();
  }

  /** Resolves with the reason once the connection is closed (by either side). */
  get closed(): Promise<ConnectionClosedError> {
    return this.closedPromise;
  }

  get isOpen(): boolean {
    return this.closeInfo === null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Resolves once the server's first state push has arrived. */
  waitForState(): Promise<void> {
    if (this.stateReceived) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const sub = this.stateSubject.subscribe(() => {
        if (!this.stateReceived) return;
        queueMicrotask(() => sub.unsubscribe());
        resolve();
      });
      void this.closedPromise.then((err) => {
        sub.unsubscribe();
        reject(err);
      });
    });
  }

  /** Sends a request; resolves with the response data or rejects with {@link RequestFailedError}. */
  send(name: string, data: unknown): Promise<unknown> {
    if (!this.isOpen) return Promise.reject(this.closeInfo ?? new Error('connection not open'));
    const id = this.nextId++;
    const text = JSON.stringify({ type: 'request', id, name, data });
    const frames =
      this.options.framing === '0.6' ? [text] : encode07(text, this.options.maxSegmentSize);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { name, resolve, reject });
      for (const f of frames) this.ws.send(f);
    });
  }

  /** 0.7 only: sends a Juggler ping (also tells an auto-detecting server which framing we speak). */
  ping(): void {
    if (this.options.framing === '0.7' && this.isOpen) this.ws.send('2');
  }

  /** Closes with 1000 and waits for the close to complete (at most `timeoutMs`). */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    if (this.ws.readyState !== WebSocket.CLOSING) this.ws.close(1000);
    const timer = setTimeout(() => this.ws.terminate(), timeoutMs);
    await this.closedPromise;
    clearTimeout(timer);
  }

  private onMessage(raw: WebSocket.RawData, isBinary: boolean): void {
    this.resetPing();
    try {
      if (isBinary) throw new Error('binary message from the server');
      const text = Buffer.isBuffer(raw)
        ? raw.toString('utf8')
        : Buffer.concat(Array.isArray(raw) ? raw : [Buffer.from(raw)]).toString('utf8');
      if (this.options.framing === '0.6') {
        this.onJson(text);
        return;
      }
      const f = this.decoder.push(text);
      if (f.kind === 'message') this.onJson(f.text);
      else if (f.kind === 'ping') this.ws.send(`3${f.payload}`);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.ws.close(1002, reason.slice(0, 120));
    }
  }

  private onJson(text: string): void {
    const msg = JSON.parse(text) as Record<string, unknown>;
    if (msg.type === 'response') {
      const p = this.pending.get(msg.id as number);
      if (p === undefined) return;
      this.pending.delete(msg.id as number);
      if (msg.success === true) p.resolve(msg.data);
      else p.reject(new RequestFailedError(p.name, msg.data, msg.code));
    } else if (msg.type === 'state') {
      const next = applyPatch(this.stateSubject.value, msg.diff as JsonPatchOp[]);
      this.stateReceived = true;
      this.stateSubject.next(next);
    } else if (msg.type === 'notify') {
      this.notifySubject.next({ name: String(msg.name), data: msg.data });
    } else {
      throw new Error(`unsupported message type ${JSON.stringify(msg.type)}`);
    }
  }

  private resetPing(): void {
    this.stopPing();
    const { framing, pingDelay, pingTimeout } = this.options;
    if (framing !== '0.7' || pingDelay === null || this.closeInfo !== null) return;
    this.pingDelayTimer = setTimeout(() => {
      this.pingDelayTimer = null;
      this.ping();
      this.pingTimeoutTimer = setTimeout(() => {
        this.pingTimeoutTimer = null;
        this.ws.terminate();
      }, pingTimeout);
    }, pingDelay);
  }

  private stopPing(): void {
    if (this.pingDelayTimer !== null) clearTimeout(this.pingDelayTimer);
    if (this.pingTimeoutTimer !== null) clearTimeout(this.pingTimeoutTimer);
    this.pingDelayTimer = this.pingTimeoutTimer = null;
  }

  private onClosed(code: number, reason: string): void {
    this.stopPing();
    this.closeInfo = new ConnectionClosedError(code, reason);
    for (const p of this.pending.values()) p.reject(this.closeInfo);
    this.pending.clear();
    this.notifySubject.complete();
    this.stateSubject.complete();
  }
}
