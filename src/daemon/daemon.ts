/**
 * The daemon's life: start backend → controls → recovery → ready; stop in reverse.
 *
 * Start: create the backend (through its module's `create`) → start every control, all at once
 * (a control may wait for recovery before it listens; the others, e.g. HTTP, listen at once so that
 * /healthz and /readyz answer during recovery, and requests they pass on wait for recovery) →
 * wait for the backend's recovery and every control → `READY=1`. If a control fails to start,
 * the ones that started are closed again and the daemon stops.
 * Stop (idempotent; a stop during start aborts the start): `STOPPING=1` → refuse new requests and
 * let in-flight ones finish (the drain) → close the controls, last first → close the backend
 * (which finishes or fails its own in-flight writes). Time bounds are the caller's (see run.ts).
 */
import type { Logger } from 'pino';
import type { Subscription } from 'rxjs';
import type { LoadedBackend } from '../backend/loader.js';
import type { Backend, BackendStatus, HatConnector } from '../backend/types.js';
import { formatAddress } from '../common/address.js';
import type { MetricsRegistry } from '../common/metrics.js';
import type { Control, DaemonStatus } from '../controls/types.js';
import type { DaemonConfig, LoadedControl } from './config.js';
import { buildHat } from './hat.js';
import { countChanges, registerDaemonMetrics } from './metrics.js';
import { type Notifier, startWatchdog } from './notify.js';
import type { Redundancy } from './redundancy.js';
import { ServedBackend } from './served-backend.js';

export type DaemonState =
  | 'created'
  | 'starting'
  | 'recovering'
  | 'running'
  | 'stopping'
  | 'stopped';

export interface DaemonParts {
  config: DaemonConfig;
  backend: LoadedBackend;
  controls: LoadedControl[];
  logger: Logger;
  metrics: MetricsRegistry;
  notifier: Notifier;
}

/** How often the backend's recovery detail is checked for `STATUS=` (ms). */
const PROGRESS_INTERVAL_MS = 1000;

/** A failure to start; the message names the module and the cause. */
export class DaemonStartError extends Error {
  /**
   * Set for a condition of the environment rather than a bug (a port in use): the message says it
   * all, so it is logged as one line with these fields and without a stack or cause chain.
   */
  readonly logFields: Record<string, unknown> | undefined;
  constructor(message: string, options?: { cause?: unknown; logFields?: Record<string, unknown> }) {
    super(message, options);
    this.name = 'DaemonStartError';
    this.logFields = options?.logFields;
  }
}

export class Daemon {
  private stateValue: DaemonState = 'created';
  private backend: Backend | null = null;
  private served: ServedBackend | null = null;
  private redundancy: Redundancy | null = null;
  private readonly controls: Control[] = [];
  private controlStarts: Promise<void>[] = [];
  private changes: Subscription | null = null;
  private stopWatchdog: () => void = () => {};
  private starting: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  private stopRequested: () => void = () => {};
  private readonly stopSignal = new Promise<void>((resolve) => {
    this.stopRequested = resolve;
  });

  constructor(private readonly parts: DaemonParts) {
    registerDaemonMetrics(parts.metrics, {
      name: parts.config.name,
      ready: () => this.status().ready,
      backendStatus: () => this.backend?.status() ?? null,
    });
  }

  get state(): DaemonState {
    return this.stateValue;
  }

  /** Ready = recovered, every control started, and the backend ready (e.g. Hat connected). */
  status(): DaemonStatus {
    const backend: BackendStatus = this.backend?.status() ?? {
      ready: false,
      detail: this.stateValue,
    };
    const ready = this.stateValue === 'running' && backend.ready;
    if (this.redundancy === null) return { ready, backend };
    return { ready, backend, redundancy: this.redundancy.status() };
  }

  /** Resolves when running; resolves early (not running) when a stop came first; rejects on failure. */
  start(): Promise<void> {
    this.starting ??= this.run();
    return this.starting;
  }

  stop(reason: string): Promise<void> {
    this.stopping ??= this.shutdown(reason);
    return this.stopping;
  }

  private get aborted(): boolean {
    return this.stopping !== null;
  }

  private async run(): Promise<void> {
    const { config, logger, metrics, notifier } = this.parts;
    this.stateValue = 'starting';
    notifier.send({ STATUS: 'starting' });

    let hat: HatConnector | null = null;
    if (config.hat !== null) {
      try {
        const setup = await buildHat(config.hat, config.name, logger, metrics);
        hat = setup.connector;
        this.redundancy = setup.redundancy;
        // The monitor says which event server to use: talk to it before the backend connects.
        this.redundancy?.start();
      } catch (err) {
        throw new DaemonStartError(`cannot set up the Hat connection: ${errorText(err)}`, {
          cause: err,
        });
      }
    }
    const backend = await this.parts.backend.create({
      name: config.name,
      logger: logger.child({ component: 'backend' }),
      metrics,
      hat,
    });
    this.backend = backend;
    const served = new ServedBackend(backend, metrics);
    this.served = served;
    this.redundancy?.attach(backend, served);
    this.changes = countChanges(backend.changes$, metrics);
    logger.info({ module: this.parts.backend.specifier }, 'backend created');
    if (this.aborted) return;

    this.stateValue = 'recovering';
    logger.info('recovering');
    const stopProgress = this.reportProgress(backend);
    try {
      const recovered = backend.whenReady().catch((err: unknown) => {
        throw new DaemonStartError(
          `backend module '${this.parts.backend.specifier}' failed to recover: ${errorText(err)}`,
          { cause: err },
        );
      });
      this.controlStarts = this.parts.controls.map((c) => this.startControl(c, served));
      const controls = Promise.all(this.controlStarts);
      // A stop request ends the wait; what started by then is closed by the stop.
      await Promise.race([Promise.all([recovered, controls]), this.stopSignal]);
    } finally {
      stopProgress();
    }
    if (this.aborted) return;

    this.stateValue = 'running';
    if (this.redundancy !== null) {
      this.redundancy.setEndpoints(endpointsOf(this.parts.controls, this.controls));
      // Recovered and serving: this daemon may now be blessed as its group's writer.
      this.redundancy.setReady(true);
    }
    const status = backend.status();
    logger.info({ controls: this.controls.map((c) => c.address), backend: status }, 'ready');
    notifier.send({ READY: 1, STATUS: status.ready ? 'ready' : `running: ${status.detail ?? ''}` });
    this.stopWatchdog = startWatchdog(notifier, () => this.stateValue === 'running');
  }

  /**
   * SIGHUP: every started control that can reload (TLS files, tokens files) does, each logged on its own; a
   * control whose new files are unusable keeps its current ones and logs an error. The config file
   * itself is read at start only.
   */
  async reload(): Promise<void> {
    const { logger } = this.parts;
    let reloaded = 0;
    for (const [i, control] of this.controls.entries()) {
      if (control?.reload === undefined) continue;
      const path = this.parts.controls[i]?.path;
      try {
        const detail = await control.reload();
        if (detail === null) continue;
        reloaded++;
        logger.info({ control: path, ...detail }, 'SIGHUP: TLS files reloaded');
      } catch (err) {
        reloaded++;
        logger.error(
          { control: path, error: errorText(err) },
          'SIGHUP: TLS reload failed; the control keeps its current certificate',
        );
      }
    }
    if (reloaded === 0)
      logger.info(
        'SIGHUP: no control with TLS to reload; the configuration is read at start only (restart to apply a change)',
      );
  }

  private async startControl(control: LoadedControl, backend: ServedBackend): Promise<void> {
    const { config, logger, metrics } = this.parts;
    let started: Control;
    try {
      started = await control.module.create(control.conf, {
        name: config.name,
        logger: logger.child({ component: 'control' }),
        metrics,
        backend,
        status: () => this.status(),
      });
    } catch (err) {
      throw new DaemonStartError(
        `control module '${control.conf.module}' (${control.path}) failed to start: ${errorText(err)}`,
        { cause: err, logFields: listenFailure(err, control.path) },
      );
    }
    // Kept in config order, so that a stop closes them last first.
    this.controls[this.parts.controls.indexOf(control)] = started;
  }

  /** While recovering: `STATUS=recovering: <detail>` whenever the backend's detail changes. */
  private reportProgress(backend: Backend): () => void {
    let last = '';
    const tick = () => {
      const detail = backend.status().detail ?? '';
      if (detail === last && last !== '') return;
      last = detail;
      this.parts.notifier.send({ STATUS: detail === '' ? 'recovering' : `recovering: ${detail}` });
    };
    tick();
    const timer = setInterval(tick, PROGRESS_INTERVAL_MS);
    timer.unref();
    return () => clearInterval(timer);
  }

  private async shutdown(reason: string): Promise<void> {
    const { logger, notifier } = this.parts;
    const from = this.stateValue;
    this.stateValue = 'stopping';
    this.stopRequested();
    this.stopWatchdog();
    notifier.send({ STOPPING: 1, STATUS: `stopping (${reason})` });
    logger.info({ reason, from }, 'stopping');

    // A start in progress finishes its current step (e.g. a backend create) before cleanup.
    await this.starting?.catch(() => {});
    if (this.redundancy !== null) {
      // Writes stop and the blessing is released first, so that a standby can take over.
      await this.redundancy.release();
    }
    if (this.served !== null) {
      this.served.stopAccepting();
      // Controls still starting (e.g. waiting for recovery) finish or fail before they are closed.
      await Promise.allSettled(this.controlStarts);
      const inFlight = this.served.operationsInFlight;
      if (inFlight > 0) logger.info({ inFlight }, 'draining requests in flight');
      await this.served.drain();
    }
    for (const control of [...this.controls].reverse()) {
      if (control === undefined) continue;
      await control.close().catch((err: unknown) => {
        logger.error({ err, address: control.address }, 'control failed to close');
      });
    }
    if (this.backend !== null) {
      await this.backend.close().catch((err: unknown) => {
        logger.error({ err }, 'backend failed to close');
      });
    }
    await this.redundancy?.close().catch((err: unknown) => {
      logger.error({ err }, 'monitor connection failed to close');
    });
    this.changes?.unsubscribe();
    this.stateValue = 'stopped';
    logger.info({ reason }, 'stopped');
  }
}

/**
 * The Juggler and HTTP URLs of the built-in controls (the first of each), for the monitor data:
 * `wss://`/`https://` for a control with TLS.
 */
export function endpointsOf(
  loaded: readonly LoadedControl[],
  started: readonly Control[],
): { juggler: string | null; http: string | null } {
  const url = (scheme: string, kind: string): string | null => {
    const i = loaded.findIndex((c) => c.conf.module.endsWith(`/controls/${kind}`));
    const control = i < 0 ? undefined : started[i];
    if (control === undefined) return null;
    return `${scheme}${control.secure === true ? 's' : ''}://${formatAddress(control.address)}/`;
  };
  return { juggler: url('ws', 'juggler'), http: url('http', 'http') };
}

/** A control's listen failure (`ListenError`, by name: the module may be another copy): log fields. */
function listenFailure(err: unknown, path: string): Record<string, unknown> | undefined {
  if (!(err instanceof Error) || err.name !== 'ListenError') return undefined;
  const e = err as Error & { control?: unknown; host?: unknown; port?: unknown; code?: unknown };
  return { control: e.control, path, host: e.host, port: e.port, code: e.code };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
