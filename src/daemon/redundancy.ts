/**
 * The daemon's part in a redundant Hat (`hat.monitor_component`): it registers with hat-monitor as
 * a component of its `group`, follows the monitor's choice of event server (the backend's Hat
 * connector), and writes only while the monitor has blessed it.
 *
 * - Role `active`: blessed, the blessing echoed (hat.monitor.component's rule), and the backend in
 *   sync with Hat (`Backend.sync`: ids continue past everything the previous active wrote).
 * - Role `standby`: connected to the monitor, not active. The backend keeps following the prefix's
 *   events; reads and watch work; writes are refused with `not_active`, naming the active instance
 *   and its addresses from its monitor data.
 * - Role `disconnected`: no monitor connection; like standby (a daemon that loses the monitor stops
 *   writing at once: the monitor may already have blessed another).
 *
 * Leaving `active`: new writes are refused first, writes already accepted finish (their Hat
 * requests are answered or time out), and only then is the blessing released — so the next active
 * never writes while this one still does. The daemon offers `ready` once it runs (recovered and
 * serving) and withdraws it when it stops.
 *
 * Published monitor data: `{name, role, juggler, http}` (addresses as URLs, null when absent).
 */
import type { Logger } from 'pino';
import { filter, firstValueFrom, map } from 'rxjs';
import { type Backend, BackendError } from '../backend/types.js';
import type { MetricsRegistry } from '../common/metrics.js';
import type { RedundancyStatus } from '../controls/types.js';
import { formatAddress } from '../hat/chatter/connect.js';
import {
  createMonitorHatConnector,
  type EventServerInfo,
  type MonitorHatConnector,
} from '../hat/eventer/monitor-connector.js';
import { type ComponentInfo, isActive } from '../hat/monitor/common.js';
import { type ComponentEvent, MonitorComponent } from '../hat/monitor/component.js';
import { DEFAULT_MONITOR_PORT, type MonitorComponentConf } from './config.js';
import type { ServedBackend } from './served-backend.js';

export type Role = RedundancyStatus['role'];

/** Where clients reach a daemon (URLs), as published in its monitor data. */
export interface Endpoints {
  juggler: string | null;
  http: string | null;
}

export interface RedundancyOptions {
  conf: MonitorComponentConf;
  name: string;
  clientName: string;
  clientToken: string | null;
  /** Ms; as for the eventer (hat.ping_delay etc.), also used for the monitor connection. */
  pingDelay?: number;
  pingTimeout?: number;
  connectTimeout?: number;
  logger: Logger;
  metrics: MetricsRegistry;
}

const ROLES: readonly Role[] = ['active', 'standby', 'disconnected'];

export class Redundancy {
  /** The backend's Hat connector: always the monitor's active event server. */
  readonly connector: MonitorHatConnector;
  private readonly component: MonitorComponent;
  private readonly logger: Logger;
  private readonly group: string;
  private readonly name: string;
  private backend: Backend | null = null;
  private served: ServedBackend | null = null;
  private active = false;
  private endpoints: Endpoints = { juggler: null, http: null };
  private readonly roleChanges;
  private readonly roleGauge;
  private readonly invalidData;

  constructor(options: RedundancyOptions) {
    const { conf, logger, metrics } = options;
    this.logger = logger.child({ component: 'monitor' });
    this.group = conf.group;
    this.name = options.name;
    const address = { host: conf.host, port: conf.port ?? DEFAULT_MONITOR_PORT };
    this.component = new MonitorComponent({
      address,
      name: options.name,
      group: conf.group,
      data: this.data(),
      pingDelay: options.pingDelay,
      pingTimeout: options.pingTimeout,
      connectTimeout: options.connectTimeout,
      runner: { start: () => this.activate(), stop: () => this.deactivate() },
      onEvent: (e) => this.onComponentEvent(e),
    });
    this.invalidData = metrics.counter(
      'monitor_invalid_server_data_total',
      'Monitor states whose active event server published data that is not a hat-event server’s (no server used)',
    );
    this.connector = createMonitorHatConnector({
      components$: this.component.state$.pipe(
        map((s) => (s.connected && s.server !== null ? s.server.components : null)),
      ),
      serverGroup: conf.event_server_group,
      clientName: options.clientName,
      clientToken: options.clientToken,
      pingDelay: options.pingDelay,
      pingTimeout: options.pingTimeout,
      connectTimeout: options.connectTimeout,
      onSelection: (s) => {
        if (s.kind === 'server')
          this.logger.info(
            { serverId: s.server.serverId, address: formatAddress(s.server.address) },
            'monitor: event server selected',
          );
        else {
          if (s.reason === 'invalid_data') this.invalidData.inc();
          this.logger.warn({ reason: s.reason, detail: s.detail }, 'monitor: no event server');
        }
      },
    });
    this.roleChanges = metrics.counter(
      'role_changes_total',
      'Changes of this daemon’s role in its redundant group, by new role',
    );
    this.roleGauge = metrics.gauge(
      'role',
      'This daemon’s role in its redundant group: 1 for the current role, 0 for the others',
    );
    this.component.state$.subscribe(() => this.updateRoleGauge());
    metrics
      .gauge('monitor_connected', '1 while connected to hat-monitor')
      .collect(() => (this.component.state.connected ? 1 : 0));
  }

  private updateRoleGauge(): void {
    const role = this.role;
    for (const r of ROLES) this.roleGauge.set(r === role ? 1 : 0, { role: r });
  }

  get role(): Role {
    if (this.active) return 'active';
    return this.component.state.connected ? 'standby' : 'disconnected';
  }

  /** Starts talking to the monitor (before the backend, which needs its event server). */
  start(): void {
    this.component.start();
  }

  /** The backend to sync and the served backend whose writes the role gates. */
  attach(backend: Backend, served: ServedBackend): void {
    this.backend = backend;
    this.served = served;
    served.setWriteGate(() => this.refusal());
  }

  /** Publishes where clients reach this daemon (once its controls listen). */
  setEndpoints(endpoints: Endpoints): void {
    this.endpoints = endpoints;
    this.component.setData(this.data());
  }

  /** Offers (or withdraws) this daemon for the blessing. Withdrawing waits for the release. */
  setReady(ready: boolean): void {
    this.component.setReady(ready);
  }

  /**
   * Resolves once this daemon no longer acts as the active one (nor is becoming it): the
   * component's runner, whose stop ends our activity, has stopped.
   */
  async release(): Promise<void> {
    this.component.setReady(false);
    await firstValueFrom(this.component.state$.pipe(filter((s) => !s.active)), {
      defaultValue: null,
    });
  }

  status(): RedundancyStatus {
    const state = this.component.state;
    const server: EventServerInfo | null = this.connector.current;
    return {
      role: this.role,
      group: this.group,
      monitor: { address: state.address, connected: state.connected, cid: state.own?.cid ?? null },
      active: this.activeInstance(),
      eventServer:
        server === null
          ? null
          : {
              serverId: server.serverId,
              address: formatAddress(server.address),
              name: server.name,
            },
    };
  }

  async close(): Promise<void> {
    await this.component.close();
    await this.connector.close();
  }

  // ---- activity ------------------------------------------------------------------------------

  private async activate(): Promise<void> {
    this.logger.info('monitor: blessed; catching up with Hat before writing');
    const started = Date.now();
    await this.backend?.sync?.();
    this.active = true;
    this.roleChanges.inc({ role: 'active' });
    this.updateRoleGauge();
    this.component.setData(this.data());
    this.logger.info({ syncMs: Date.now() - started }, 'monitor: active: accepting writes');
  }

  private async deactivate(): Promise<void> {
    if (!this.active) return;
    this.active = false;
    const inFlight = this.served?.drainWrites();
    await inFlight;
    this.roleChanges.inc({ role: this.role });
    this.updateRoleGauge();
    this.component.setData(this.data());
    this.logger.info({ role: this.role }, 'monitor: no longer active: writes refused');
  }

  private refusal(): BackendError | null {
    if (this.active) return null;
    const active = this.activeInstance();
    const where = (e: Endpoints) =>
      [e.juggler, e.http].filter((x): x is string => x !== null).join(', ');
    const role = this.role === 'standby' ? 'a standby' : 'not connected to hat-monitor';
    const target =
      active === null
        ? `no instance of group '${this.group}' is active right now (a handover may be in progress); retry shortly`
        : `the active instance is ${active.name ?? '(unnamed)'}${where(active) === '' ? '' : ` at ${where(active)}`}`;
    return new BackendError(
      'not_active',
      `aimm-store ${this.name} is ${role} in group '${this.group}' and does not accept writes: ${target}`,
    );
  }

  private activeInstance(): RedundancyStatus['active'] {
    if (this.active) return { name: this.name, self: true, ...this.endpoints };
    const server = this.component.state.server;
    const own = this.component.state.own;
    const info = server?.components.find((c) => c.group === this.group && isActive(c) && c !== own);
    if (info === undefined) return null;
    return { name: info.name, self: false, ...endpointsOf(info) };
  }

  private data(): Record<string, unknown> {
    return { name: this.name, role: this.active ? 'active' : 'standby', ...this.endpoints };
  }

  private onComponentEvent(e: ComponentEvent): void {
    switch (e.kind) {
      case 'connected':
        this.logger.info({ address: e.address }, 'monitor: connected');
        return;
      case 'disconnected':
        this.logger.warn(
          { address: e.address, reason: e.reason?.message ?? null, retryInMs: e.retryInMs },
          'monitor: connection lost; reconnecting',
        );
        return;
      case 'connect_failed':
        this.logger.warn(
          { address: e.address, err: e.error.message, retryInMs: e.retryInMs },
          'monitor: cannot connect; retrying',
        );
        return;
      case 'active':
        this.logger.info({ token: e.token }, 'monitor: blessing echoed');
        return;
      case 'inactive':
        this.logger.info({ token: e.token, why: e.why }, 'monitor: blessing released');
        return;
      case 'runner_failed':
        this.logger.warn(
          { phase: e.phase, err: e.error.message },
          'monitor: could not take over the writes; offering again shortly',
        );
        return;
    }
  }
}

/** The Juggler/HTTP URLs another aimm-store published, if its data has them. */
function endpointsOf(info: ComponentInfo): Endpoints {
  let data: unknown;
  try {
    data = JSON.parse(info.data);
  } catch {
    return { juggler: null, http: null };
  }
  const d = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
  return {
    juggler: typeof d.juggler === 'string' ? d.juggler : null,
    http: typeof d.http === 'string' ? d.http : null,
  };
}
