/**
 * The Juggler WebSocket server: accepts connections (any path, no subprotocol, no compression),
 * keeps one {@link Session} per connection, and runs the state sync. Changes are batched: a flush
 * runs `flushDelayMs` after the first change (AIMM's autoflush), computes each session's JSON
 * Patch from the state it holds to the state it may see (sessions in the same place share one
 * diff text), sends it, then the `model_change` notifications of the batch.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import type { Logger } from 'pino';
import { type WebSocket, WebSocketServer } from 'ws';
import type { Backend, ModelChange } from '../../backend/types.js';
import { formatAddress } from '../../common/address.js';
import { type CounterSeries, type MetricsRegistry, seriesBy } from '../../common/metrics.js';
import { listenError } from '../listen-error.js';
import { ServerTls } from '../tls.js';
import type { Control, DaemonStatus } from '../types.js';
import { Users } from './auth.js';
import type { Settings } from './conf.js';
import { modelChangeText } from './fast-texts.js';
import type { HandlerEnv } from './handlers.js';
import { KNOWN_REQUESTS } from './handlers.js';
import { ModelView } from './model-view.js';
import { flatten } from './pyjson.js';
import { Session, type SessionEvent, type SessionHost } from './session.js';
import { type PushedState, type SentState, StateTexts } from './state-texts.js';

export interface ServerContext {
  logger: Logger;
  metrics: MetricsRegistry;
  backend: Backend;
  /** The daemon's status (its role in a redundant group goes into the state). */
  status?: () => DaemonStatus;
}

export class JugglerServer implements Control, SessionHost {
  readonly env: HandlerEnv;
  readonly logger: Logger;
  private readonly sessions = new Set<Session>();
  private readonly view: ModelView;
  private wss: WebSocketServer | null = null;
  private http: Server | TlsServer | null = null;
  private tls: ServerTls | null = null;
  private batch: { seq: number; change: ModelChange }[] = [];
  private seq = 0;
  private flushTimer: NodeJS.Timeout | null = null;
  /** In a redundant group: the role part of the state. */
  private role: { key: string; value: Readonly<Record<string, unknown>> } | null = null;
  /** The state the last flush pushed (the same object while neither part changed). */
  private pushed: PushedState | null = null;
  private roleTimer: NodeJS.Timeout | null = null;
  private closing: Promise<void> | null = null;
  private listenAddress: { host: string; port: number } = { host: '', port: 0 };
  private readonly m;
  private readonly requestsOk: (name: string) => CounterSeries;
  private readonly requestsFailed: (name: string) => CounterSeries;

  constructor(
    readonly settings: Settings,
    private readonly ctx: ServerContext,
  ) {
    this.logger = ctx.logger;
    const reg = ctx.metrics;
    this.m = {
      connections: reg.gauge('juggler_connections', 'Open Juggler connections'),
      requests: reg.counter(
        'juggler_requests_total',
        'Juggler requests answered, by name and result',
      ),
      rejected: reg.counter(
        'juggler_rejected_total',
        'Juggler messages or connections refused, by reason',
      ),
      logins: reg.counter('juggler_logins_total', 'Juggler login attempts, by result'),
      notifications: reg.counter('juggler_notifications_total', 'model_change notifications sent'),
      paused: reg.counter(
        'juggler_paused_total',
        'Times a Juggler connection reached max_pending_requests and stopped being read (backpressure)',
      ),
      inFlight: reg.gauge(
        'juggler_requests_in_flight',
        'Juggler requests being handled, all connections',
      ),
      backlog: reg.gauge(
        'juggler_backlog_messages',
        'Messages received from paused connections and waiting for room in their window',
      ),
    };
    this.requestsOk = seriesBy(this.m.requests, (name) => ({ name, result: 'ok' }));
    this.requestsFailed = seriesBy(this.m.requests, (name) => ({ name, result: 'error' }));
    this.m.inFlight.collect(() => this.sum((s) => s.inFlight));
    this.m.backlog.collect(() => this.sum((s) => s.backlogLength));
    this.env = {
      backend: ctx.backend,
      users: settings.users === null ? null : new Users(settings.users),
      logger: ctx.logger,
      onLoginFailure: (username) => {
        this.m.logins.inc({ result: 'failure' });
        this.logger.warn({ user: username }, 'login failed');
      },
    };
    this.view = new ModelView(ctx.backend, settings.stateInstances, ctx.logger, {
      change: (c) => {
        this.batch.push({ seq: ++this.seq, change: c });
        this.scheduleFlush();
      },
      dirty: () => this.scheduleFlush(),
    });
  }

  get address(): { host: string; port: number } {
    return this.listenAddress;
  }

  /** Listening with TLS (wss://). */
  get secure(): boolean {
    return this.settings.tls !== null;
  }

  /**
   * SIGHUP: re-reads `pem_file`/`ca_file`; new connections get the new certificate, open ones keep
   * theirs. Null without TLS; throws (keeping the current material) when a file is unusable.
   */
  async reload(): Promise<Record<string, unknown> | null> {
    const tls = this.tls;
    const http = this.http;
    if (tls === null || http === null || !('setSecureContext' in http)) return null;
    return tls.reload(http);
  }

  get connectionCount(): number {
    return this.sessions.size;
  }

  async start(): Promise<void> {
    await this.ctx.backend.whenReady();
    await this.view.start();
    if (this.ctx.status?.().redundancy !== undefined) {
      // The role changes without a model change: checked twice a second, pushed when it differs.
      this.updateRole();
      this.roleTimer = setInterval(() => {
        if (this.updateRole()) this.scheduleFlush();
      }, ROLE_CHECK_MS);
      this.roleTimer.unref();
    }
    const s = this.settings;
    // Our own HTTP server, so that close can also drop connections that never finish a request.
    const upgradeRequired: RequestListener = (_req, res) => {
      res.writeHead(426, { 'Content-Type': 'text/plain', Upgrade: 'websocket' });
      res.end('426 Upgrade Required: this is a Juggler WebSocket endpoint\n');
    };
    if (s.tls !== null) {
      try {
        this.tls = new ServerTls(s.tls);
      } catch (err) {
        this.view.close();
        throw err;
      }
    }
    const http =
      this.tls === null
        ? createServer(upgradeRequired)
        : createTlsServer(this.tls.serverOptions(), upgradeRequired);
    http.headersTimeout = 10_000;
    http.requestTimeout = 10_000;
    const wss = new WebSocketServer({
      server: http,
      // Room for a message a little over the limit (answered with an error) and for segments.
      maxPayload: s.maxMessageSize + 65_536 + 16,
      perMessageDeflate: false,
      clientTracking: false,
    });
    // ws re-emits the HTTP server's errors: listen failures are handled below, later ones logged.
    wss.on('error', (err) => {
      if (http.listening) this.logger.error({ err }, 'juggler listener error');
    });
    this.http = http;
    this.wss = wss;
    try {
      await new Promise<void>((resolve, reject) => {
        http.once('listening', resolve);
        http.once('error', reject);
        http.listen(s.port, s.host);
      });
    } catch (err) {
      this.view.close();
      wss.close();
      throw await listenError('juggler', s.host, s.port, err);
    }
    wss.on('connection', (ws, req) => this.onConnection(ws, req));
    const addr = http.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : s.port;
    this.listenAddress = { host: s.host, port };
    this.logger.info(
      {
        control: 'juggler',
        host: s.host,
        port,
        url: `${this.tls === null ? 'ws' : 'wss'}://${formatAddress(this.listenAddress)}/`,
        ...this.tls?.describe(),
        framing: s.framing,
        login: s.users !== null,
        state_instances: s.stateInstances,
      },
      'listening',
    );
  }

  close(): Promise<void> {
    if (this.closing === null) this.closing = this.doClose();
    return this.closing;
  }

  // SessionHost
  changeSeq(): number {
    return this.seq;
  }

  stateChanged(_session: Session): void {
    this.scheduleFlush();
  }

  closed(session: Session): void {
    if (this.sessions.delete(session)) this.m.connections.dec();
  }

  count(e: SessionEvent): void {
    if (e.kind === 'request') {
      const name = KNOWN_REQUESTS.has(e.name) ? e.name : 'other';
      (e.success ? this.requestsOk : this.requestsFailed)(name).inc();
    } else if (e.kind === 'rejected') {
      this.m.rejected.inc({ reason: e.reason });
    } else if (e.kind === 'paused') {
      this.m.paused.inc();
    } else if (e.success) {
      this.m.logins.inc({ result: 'success' });
    }
  }

  private sum(of: (s: Session) => number): number {
    let n = 0;
    for (const s of this.sessions) n += of(s);
    return n;
  }

  private onConnection(ws: WebSocket, req: IncomingMessage): void {
    const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
    if (this.closing !== null) {
      ws.close(1001, 'server shutting down');
      return;
    }
    if (this.sessions.size >= this.settings.maxConnections) {
      this.m.rejected.inc({ reason: 'connections' });
      this.logger.warn({ remote, limit: this.settings.maxConnections }, 'too many connections');
      ws.close(1013, 'too many connections');
      return;
    }
    const session = new Session(ws, remote, this);
    this.sessions.add(session);
    this.m.connections.inc();
    this.logger.debug({ remote }, 'connection');
  }

  private scheduleFlush(): void {
    if (this.flushTimer !== null || this.closing !== null) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.flush();
    }, this.settings.flushDelayMs);
  }

  /** Refreshes the role part of the state; true when it changed. */
  private updateRole(): boolean {
    const r = this.ctx.status?.().redundancy;
    if (r === undefined) return false;
    const value = { role: r.role, group: r.group, active: r.active, event_server: r.eventServer };
    const key = JSON.stringify(value);
    if (key === this.role?.key) return false;
    this.role = { key, value: Object.freeze(value) };
    return true;
  }

  /** The models' current version, plus `redundancy` in a redundant group. */
  private statePushed(): PushedState {
    const version = this.view.snapshot();
    const redundancy = this.role?.value;
    if (this.pushed?.version !== version || this.pushed.redundancy !== redundancy)
      this.pushed = { version, redundancy };
    return this.pushed;
  }

  /** Sends every ready session its state diff, then the batch's notifications. */
  private flush(): void {
    const batch = this.batch;
    this.batch = [];
    // Nobody to send to: no new version; the view keeps collecting what changed and the next
    // version's step covers it. A session that becomes ready gets the whole state.
    if (!this.anyReady()) return;
    const pushed = this.statePushed();
    let notifications: { seq: number; text: string }[] | null = null;
    let sent = 0;
    const texts = new StateTexts(this.view);
    for (const s of this.sessions) {
      if (!s.ready) continue;
      // The diff and the batch's notifications leave in one write, not one per message.
      s.corked(() => {
        const target: SentState = s.authorized ? pushed : 'empty';
        const text = texts.get(s.lastSent, target);
        s.lastSent = target;
        if (text !== null) s.sendText(text);
        if (s.authorized && batch.length > 0) {
          notifications ??= batch.map((b) => ({
            seq: b.seq,
            // Flat: the batch's texts all live until the last session got them.
            text: flatten(modelChangeText(b.change)),
          }));
          // Only changes made since this session could see them (login, or framing known).
          for (const n of notifications) {
            if (n.seq <= s.notifyAfter) continue;
            s.sendText(n.text);
            sent++;
          }
        }
      });
    }
    if (sent > 0) this.m.notifications.inc({}, sent);
  }

  private anyReady(): boolean {
    for (const s of this.sessions) if (s.ready) return true;
    return false;
  }

  private async doClose(): Promise<void> {
    if (this.roleTimer !== null) clearInterval(this.roleTimer);
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    this.view.close();
    const http = this.http;
    const listenerClosed =
      http === null
        ? Promise.resolve()
        : new Promise<void>((resolve) => http.close(() => resolve()));
    this.wss?.close();
    for (const s of this.sessions) s.close(1001, 'server shutting down');
    const deadline = Date.now() + this.settings.shutdownTimeoutMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await sleep(10);
    for (const s of this.sessions) s.terminate();
    // Whatever is left (e.g. a client that never finished its HTTP request) is dropped.
    http?.closeAllConnections();
    await listenerClosed;
    this.logger.info({ control: 'juggler' }, 'closed');
  }
}

const ROLE_CHECK_MS = 500;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
