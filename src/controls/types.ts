/**
 * The control contract: what clients talk to (Juggler WebSocket, HTTP). A control module exports
 * `create(conf, context)` (sync or async) returning a {@link Control}; modules are loaded like
 * backends (`control[].module` is a specifier for `import()`; built-ins are
 * `aimm-store/controls/juggler` and `aimm-store/controls/http`).
 */
import type { Logger } from 'pino';
import type { Backend, BackendStatus } from '../backend/types.js';
import type { MetricsRegistry } from '../common/metrics.js';

export interface ControlConf {
  module: string;
  [key: string]: unknown;
}

export interface DaemonStatus {
  /** Recovered and (for the event backend) connected: what /readyz and READY=1 report. */
  ready: boolean;
  backend: BackendStatus;
  /** In a redundant Hat (`hat.monitor_component`): this daemon's role in its group. */
  redundancy?: RedundancyStatus;
}

/** A daemon's place in its hat-monitor group. */
export interface RedundancyStatus {
  /** `active` writes; `standby` serves reads; `disconnected`: no monitor connection (reads only). */
  role: 'active' | 'standby' | 'disconnected';
  group: string;
  monitor: { address: string; connected: boolean; cid: number | null };
  /** The group's active instance (this one when active), or null during a handover. */
  active: {
    name: string | null;
    self: boolean;
    juggler: string | null;
    http: string | null;
  } | null;
  /** The event server in use (the monitor's active one). */
  eventServer: { serverId: number; address: string; name: string | null } | null;
}

export interface ControlContext {
  /** The daemon's `name`. */
  name: string;
  logger: Logger;
  metrics: MetricsRegistry;
  backend: Backend;
  /** The daemon's current status (readiness). */
  status(): DaemonStatus;
}

export interface Control {
  /** Where it listens, once started (the real port when configured with port 0). */
  readonly address: { host: string; port: number };
  /** True when clients must speak TLS (`wss://`, `https://`): the URLs the daemon publishes say so. */
  readonly secure?: boolean;
  /**
   * SIGHUP: re-read what can change without a restart (the TLS certificate and CA files, a tokens
   * file) without dropping connections. Resolves with log fields of what was reloaded, or null when there is
   * nothing to reload; rejects when the new files are unusable, keeping the current ones.
   */
  reload?(): Promise<Record<string, unknown> | null>;
  /** Stops accepting clients, ends their connections, releases the listener. Idempotent. */
  close(): Promise<void>;
}

export interface ControlModule {
  create(conf: ControlConf, context: ControlContext): Control | Promise<Control>;
}
