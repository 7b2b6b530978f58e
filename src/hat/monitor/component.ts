/**
 * A hat-monitor component (hat-monitor 0.8.21, `hat.monitor.component`): registers `name`,
 * `group` and `data` with the monitor, answers its blessing, and runs the application's
 * {@link ComponentRunner} only while active.
 *
 * The blessing handshake, as the Python library does it:
 * 1. connect and send MsgClient with `blessingRes {token: null, ready}`;
 * 2. when ready and the own entry's `blessingReq.token` is set, send it back as `blessingRes.token`;
 * 3. only when a MsgServer echoes that response token while it still equals the request token is
 *    the component active: `runner.start()` is called;
 * 4. when ready turns false or the request token changes or goes null, `runner.stop()` is awaited
 *    first, and only then is the response token set back to null (ready false is sent at once,
 *    still with the token: `{token, false}` then `{null, false}`, as the recordings show). With
 *    BLESS_ONE the monitor blesses another component only after that, so two runners never
 *    overlap.
 *
 * Unlike the Python library, a lost connection (or MsgClose) is not the end: the runner is
 * stopped at once and the component reconnects with capped, jittered exponential backoff. A runner
 * whose start fails is stopped, the blessing released (ready false), and ready offered again after
 * `restartDelayMs`.
 */
import { BehaviorSubject, type Observable, type Subscription } from 'rxjs';
import { backoffDelay } from '../../common/backoff.js';
import { type Address, formatAddress } from '../chatter/connect.js';
import { type ComponentInfo, ownInfo, type ServerMsg } from './common.js';
import {
  connectMonitor,
  type MonitorConnection,
  type MonitorConnectOptions,
} from './connection.js';

export interface ComponentRunner {
  /** The component became active. A rejection releases the blessing (see restartDelayMs). */
  start(): Promise<void>;
  /** The component stops being active: the blessing is released only once this resolves. */
  stop(): Promise<void>;
}

export interface MonitorComponentOptions extends MonitorConnectOptions {
  address: Address;
  name: string;
  group: string;
  /** Any JSON value (default null); sent as JSON text. */
  data?: unknown;
  runner: ComponentRunner;
  /** Backoff between reconnects, ms (default 500 … 10000). */
  reconnectMinDelayMs?: number;
  reconnectMaxDelayMs?: number;
  /** After a failed runner start: ms with ready false before offering ready again (default 1000). */
  restartDelayMs?: number;
  /** Notes for logs: connection changes, activity, failures. */
  onEvent?: (event: ComponentEvent) => void;
  random?: () => number;
}

export type ComponentEvent =
  | { kind: 'connected'; address: string }
  | { kind: 'disconnected'; address: string; reason: Error | null; retryInMs: number }
  | { kind: 'connect_failed'; address: string; error: Error; retryInMs: number }
  | { kind: 'active'; token: number }
  | { kind: 'inactive'; token: number; why: string }
  | { kind: 'runner_failed'; error: Error; phase: 'start' | 'stop' };

export interface ComponentState {
  /** Connected to the monitor, and its first MsgServer received. */
  connected: boolean;
  /** The monitor's address (`host:port`). */
  address: string;
  /** The latest MsgServer of the current connection (null while disconnected). */
  server: ServerMsg | null;
  /** This component's entry in it. */
  own: ComponentInfo | null;
  /** The runner runs (blessed, response echoed, started). */
  active: boolean;
}

export class MonitorComponent {
  readonly state$: Observable<ComponentState>;
  private readonly subject: BehaviorSubject<ComponentState>;
  private readonly opts: MonitorComponentOptions;
  private readonly where: string;
  private dataText: string;
  private userReady = false;
  /** False for `restartDelayMs` after a failed runner start. */
  private restartHold = false;
  private conn: MonitorConnection | null = null;
  private connSub: Subscription | null = null;
  /** The response token we last sent on this connection. */
  private resToken: number | null = null;
  private running = false;
  private runningToken: number | null = null;
  private stopping: Promise<void> | null = null;
  private connecting = false;
  private closedFlag = false;
  private loop: Promise<void> | null = null;
  private wakeLoop: (() => void) | null = null;
  private busy = false;
  private dirty = false;
  private settled: Promise<void> = Promise.resolve();
  private timers = new Set<NodeJS.Timeout>();

  constructor(options: MonitorComponentOptions) {
    this.opts = options;
    this.where = formatAddress(options.address);
    this.dataText = dataText(options.data ?? null);
    this.subject = new BehaviorSubject<ComponentState>({
      connected: false,
      address: this.where,
      server: null,
      own: null,
      active: false,
    });
    this.state$ = this.subject.asObservable();
  }

  get state(): ComponentState {
    return this.subject.value;
  }

  get ready(): boolean {
    return this.userReady;
  }

  /** Starts connecting (and reconnecting until closed). */
  start(): void {
    this.loop ??= this.run();
  }

  setReady(ready: boolean): void {
    if (this.userReady === ready) return;
    this.userReady = ready;
    this.reconcile();
  }

  /** Replaces the published data (any JSON value) and sends it at once when connected. */
  setData(data: unknown): void {
    const text = dataText(data);
    if (text === this.dataText) return;
    this.dataText = text;
    this.reconcile();
  }

  /** Stops the runner if it runs, closes the connection and stops reconnecting. */
  async close(): Promise<void> {
    if (this.closedFlag) {
      await this.loop;
      return;
    }
    this.closedFlag = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.wakeLoop?.();
    this.reconcile();
    await this.settled;
    await this.stopRunner('component closed');
    await this.conn?.close();
    // A connect still pending (an unreachable monitor) is not waited for: the loop closes what
    // it yields and ends by itself.
    if (!this.connecting) await this.loop;
    this.subject.complete();
  }

  // ---- connection loop -----------------------------------------------------------------------

  private async run(): Promise<void> {
    let attempt = 0;
    const min = this.opts.reconnectMinDelayMs ?? 500;
    const max = Math.max(min, this.opts.reconnectMaxDelayMs ?? 10_000);
    while (!this.closedFlag) {
      let conn: MonitorConnection;
      try {
        this.connecting = true;
        conn = await connectMonitor(this.opts.address, this.opts);
      } catch (err) {
        this.connecting = false;
        if (this.closedFlag) break;
        const retryInMs = backoffDelay(attempt++, min, max, this.opts.random);
        this.note({
          kind: 'connect_failed',
          address: this.where,
          error: err as Error,
          retryInMs,
        });
        await this.sleep(retryInMs);
        continue;
      }
      this.connecting = false;
      if (this.closedFlag) {
        await conn.close();
        break;
      }
      this.conn = conn;
      this.resToken = null;
      let gotState = false;
      this.connSub = conn.state$.subscribe((msg) => {
        gotState = true;
        this.publish({ connected: true, server: msg, own: ownInfo(msg) ?? null });
        this.reconcile();
      });
      this.note({ kind: 'connected', address: this.where });
      this.reconcile();
      const reason = await conn.closed;
      this.connSub.unsubscribe();
      this.connSub = null;
      this.conn = null;
      this.resToken = null;
      this.publish({ connected: false, server: null, own: null });
      // Whatever the runner does, without the monitor it is no longer blessed.
      await this.settled;
      await this.stopRunner('connection to the monitor lost');
      if (this.closedFlag) break;
      if (gotState) attempt = 0;
      const retryInMs = backoffDelay(attempt++, min, max, this.opts.random);
      this.note({ kind: 'disconnected', address: this.where, reason, retryInMs });
      await this.sleep(retryInMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.wakeLoop = null;
        resolve();
      }, ms);
      this.timers.add(t);
      this.wakeLoop = () => {
        clearTimeout(t);
        this.timers.delete(t);
        resolve();
      };
    });
  }

  // ---- the blessing handshake ----------------------------------------------------------------

  /** Runs {@link step} until nothing changes; one step at a time (steps await the runner). */
  private reconcile(): void {
    this.dirty = true;
    if (this.busy) return;
    this.busy = true;
    this.settled = (async () => {
      try {
        while (this.dirty) {
          this.dirty = false;
          await this.step();
        }
      } finally {
        this.busy = false;
      }
    })();
  }

  private async step(): Promise<void> {
    const conn = this.conn;
    const own = this.state.own;
    const ready = this.userReady && !this.restartHold && !this.closedFlag;
    const reqToken = own?.blessingReq.token ?? null;

    if (this.running && (!ready || conn === null || reqToken !== this.runningToken)) {
      const why = !ready
        ? 'not ready'
        : conn === null
          ? 'connection to the monitor lost'
          : 'blessing withdrawn';
      // Like the Python component's set_ready(False): the monitor learns at once that we are no
      // longer ready ({token, ready: false}); the token itself is released after the runner stops.
      if (!ready && conn !== null && !this.closedFlag)
        conn.send({
          name: this.opts.name,
          group: this.opts.group,
          data: this.dataText,
          blessingRes: { token: this.resToken, ready: false },
        });
      await this.stopRunner(why);
      // The released token goes out before any new one (hat.monitor.component sends it too).
      if (this.conn !== null && !this.closedFlag)
        this.conn.send({
          name: this.opts.name,
          group: this.opts.group,
          data: this.dataText,
          blessingRes: { token: null, ready },
        });
      this.dirty = true;
      return;
    }
    if (conn === null) return;
    // A response token no longer backed by the request (or by our readiness) is withdrawn.
    if (this.resToken !== null && !this.running && (!ready || reqToken !== this.resToken))
      this.resToken = null;
    if (ready && reqToken !== null && this.resToken === null) this.resToken = reqToken;
    conn.send({
      name: this.opts.name,
      group: this.opts.group,
      data: this.dataText,
      blessingRes: { token: this.resToken, ready },
    });
    // Active only once the monitor echoes our response while it still equals its request.
    if (
      ready &&
      !this.running &&
      this.resToken !== null &&
      reqToken === this.resToken &&
      own?.blessingRes.token === this.resToken
    ) {
      await this.startRunner(this.resToken);
      this.dirty = true;
    }
  }

  private async startRunner(token: number): Promise<void> {
    this.running = true;
    this.runningToken = token;
    this.publish({ active: true });
    this.note({ kind: 'active', token });
    try {
      await this.opts.runner.start();
    } catch (err) {
      this.note({ kind: 'runner_failed', error: err as Error, phase: 'start' });
      await this.stopRunner('runner failed to start');
      this.restartHold = true;
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.restartHold = false;
        this.reconcile();
      }, this.opts.restartDelayMs ?? 1000);
      this.timers.add(t);
    }
  }

  /** Stops the runner once, however many callers ask at the same time. */
  private stopRunner(why: string): Promise<void> {
    if (!this.running) return Promise.resolve();
    this.stopping ??= (async () => {
      const token = this.runningToken ?? 0;
      try {
        await this.opts.runner.stop();
      } catch (err) {
        this.note({ kind: 'runner_failed', error: err as Error, phase: 'stop' });
      }
      this.running = false;
      this.runningToken = null;
      this.resToken = null;
      this.stopping = null;
      this.publish({ active: false });
      this.note({ kind: 'inactive', token, why });
    })();
    return this.stopping;
  }

  /** Tells the application; a throwing callback must not break the component. */
  private note(event: ComponentEvent): void {
    try {
      this.opts.onEvent?.(event);
    } catch {
      // The application's notes are its own business.
    }
  }

  private publish(change: Partial<ComponentState>): void {
    if (this.subject.closed) return;
    this.subject.next({ ...this.subject.value, ...change });
  }
}

function dataText(data: unknown): string {
  const text = JSON.stringify(data);
  if (text === undefined) throw new TypeError('component data must be a JSON value');
  return text;
}
