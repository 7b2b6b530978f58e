/**
 * `aimm-store serve` and `aimm-store check-config` as functions returning an exit code:
 * 0 ok, 1 failure (a module failed to start, recovery failed, a stop timed out, a fatal error),
 * 2 configuration errors (printed as `FILE: PATH: MESSAGE (rule: RULE)`, before anything is created).
 *
 * serve: read and validate the config → logger → systemd notifier → daemon start. SIGTERM/SIGINT
 * stop it gracefully within `shutdown_timeout` seconds (exit 1 if it takes longer; a second SIGINT
 * exits at once). SIGHUP re-reads the controls' TLS files (daemon.ts `reload`). An uncaught
 * exception or unhandled rejection is logged and stops the daemon (1).
 */
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { BackendLoadError } from '../backend/loader.js';
import { BackendError } from '../backend/types.js';
import { MetricsRegistry } from '../common/metrics.js';
import { type ConfigIssue, formatIssues } from '../common/schema.js';
import { packageVersion } from '../common/version.js';
import { type ConfigCheck, checkConfig } from './config.js';
import { readConfigFile } from './config-file.js';
import { Daemon, DaemonStartError } from './daemon.js';
import { DEFAULT_CONFIG_SOURCE, defaultConfig } from './default-config.js';
import { createLogger } from './logger.js';
import { createNotifier } from './notify.js';
import { worldReadableWarning } from './secrets.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_CONFIG = 2;

export interface Loaded {
  source: string;
  check: ConfigCheck;
  raw: unknown;
}

/** Reads (or takes the embedded default) and validates; prints nothing. */
export async function loadConfig(
  file: string | undefined,
  files: 'error' | 'warning' = 'error',
): Promise<Loaded | ConfigFailure> {
  let raw: unknown;
  if (file === undefined) {
    raw = defaultConfig();
  } else {
    const read = readConfigFile(file);
    if (!read.ok) return { source: file, issues: read.issues };
    raw = read.value;
  }
  // Relative module paths resolve from the config file's folder (the working one for the default).
  const baseDir = file === undefined ? process.cwd() : dirname(resolve(file));
  const check = await checkConfig(raw, { baseDir, files });
  return { source: file ?? DEFAULT_CONFIG_SOURCE, check, raw };
}

export interface ConfigFailure {
  source: string;
  issues: ConfigIssue[];
}

function printIssues(source: string, issues: readonly ConfigIssue[]): void {
  for (const line of formatIssues(source, issues)) process.stderr.write(`${line}\n`);
}

/**
 * `check-config --conf FILE`: 0 when valid, 2 with every issue printed. It fails on everything
 * `serve` refuses before it starts (an unreadable `hat.client_token_file` included): a config that
 * passes here does not exit 2 under systemd, where exit 2 is not restarted.
 */
export async function checkConfigCommand(file: string): Promise<number> {
  const loaded = await loadConfig(file);
  const issues = 'issues' in loaded ? loaded.issues : loaded.check.issues;
  if (issues.length > 0) {
    printIssues(loaded.source, issues);
    return EXIT_CONFIG;
  }
  if ('raw' in loaded) {
    for (const line of formatIssues(file, loaded.check.warnings)) {
      process.stderr.write(`warning: ${line}\n`);
    }
    const warning = worldReadableWarning(file, loaded.raw);
    if (warning !== null) process.stderr.write(`warning: ${warning}\n`);
  }
  process.stdout.write(`${file}: ok\n`);
  return EXIT_OK;
}

/** `serve [--conf FILE]`: runs until stopped; resolves with the exit code. */
export async function serve(file: string | undefined): Promise<number> {
  const loaded = await loadConfig(file);
  const issues = 'issues' in loaded ? loaded.issues : loaded.check.issues;
  if ('issues' in loaded || loaded.check.config === null || loaded.check.backend === null) {
    printIssues(loaded.source, issues);
    return EXIT_CONFIG;
  }
  const { config, backend, controls } = loaded.check;
  const logger = createLogger({ level: config.log.level, name: config.name });
  logger.info(
    { version: packageVersion(), config: loaded.source, node: process.version },
    'started',
  );
  if (file !== undefined) {
    const warning = worldReadableWarning(file, loaded.raw);
    if (warning !== null) logger.warn(warning);
  }
  if (controls.length === 0) logger.warn('no controls configured: no client can reach the models');
  const notifier = createNotifier(logger);
  const daemon = new Daemon({
    config,
    backend,
    controls,
    logger,
    metrics: new MetricsRegistry(),
    notifier,
  });
  return new Lifecycle(daemon, logger, config.shutdown_timeout * 1000, () =>
    notifier.close(),
  ).run();
}

/**
 * A backend that refused to start with its own {@link BackendError} (a file in use, an unusable
 * path: conditions, not bugs): the log fields for one plain line, else undefined.
 */
function backendRefusal(err: unknown): Record<string, unknown> | undefined {
  if (!(err instanceof BackendLoadError) || !(err.cause instanceof BackendError)) return undefined;
  return { module: err.module, code: err.cause.code };
}

/** Signals, fatal errors and the stop deadline around one daemon. */
class Lifecycle {
  private exitCode = EXIT_OK;
  private stopping: Promise<void> | null = null;
  private readonly handlers: [string, (...args: never[]) => void][] = [];
  private finished: () => void = () => {};
  private readonly done = new Promise<void>((resolve) => {
    this.finished = resolve;
  });

  constructor(
    private readonly daemon: Daemon,
    private readonly logger: Logger,
    private readonly timeoutMs: number,
    private readonly release: () => void,
  ) {}

  async run(): Promise<number> {
    this.install();
    // The daemon runs until stopped, even with no listener (a config without controls), and a stop
    // stuck on a promise with nothing else pending must still meet its deadline.
    const keepAlive = setInterval(() => {}, 1 << 30);
    try {
      await this.daemon.start();
    } catch (err) {
      // A port or a data file in use is no bug: one line that says what and where, no stack and
      // no cause chain repeating the message.
      const fields = err instanceof DaemonStartError ? err.logFields : backendRefusal(err);
      this.logger.error(fields ?? { err }, (err as Error).message);
      this.exitCode = EXIT_FAILURE;
      void this.stop('start failed');
    }
    await this.done;
    clearInterval(keepAlive);
    this.uninstall();
    this.release();
    this.logger.flush();
    // Should something still hold the event loop (a socket a module forgot), do not hang.
    setTimeout(() => process.exit(this.exitCode), 2000).unref();
    return this.exitCode;
  }

  private stop(reason: string): Promise<void> {
    if (this.stopping === null) {
      const deadline = setTimeout(() => {
        this.logger.error({ timeoutMs: this.timeoutMs }, 'shutdown timed out; exiting');
        this.logger.flush();
        process.exit(EXIT_FAILURE);
      }, this.timeoutMs);
      deadline.unref();
      this.stopping = this.daemon.stop(reason).finally(() => {
        clearTimeout(deadline);
        this.finished();
      });
    }
    return this.stopping;
  }

  private install(): void {
    let interrupts = 0;
    this.on('SIGTERM', () => void this.stop('SIGTERM'));
    this.on('SIGINT', () => {
      if (++interrupts > 1) {
        this.logger.warn('second SIGINT: exiting now');
        this.logger.flush();
        process.exit(EXIT_FAILURE);
      }
      void this.stop('SIGINT');
    });
    // SIGHUP re-reads the controls' TLS files (certificate renewal) and tokens files; the config
    // needs a restart.
    this.on('SIGHUP', () => void this.daemon.reload());
    this.on('uncaughtException', (err: Error) => this.fatal(err, 'uncaught exception'));
    this.on('unhandledRejection', (err: unknown) => this.fatal(err, 'unhandled rejection'));
  }

  private fatal(err: unknown, what: string): void {
    this.logger.fatal({ err }, `${what}; stopping`);
    this.exitCode = EXIT_FAILURE;
    void this.stop(what);
  }

  private on(event: string, handler: (...args: never[]) => void): void {
    process.on(event as 'SIGTERM', handler as () => void);
    this.handlers.push([event, handler]);
  }

  private uninstall(): void {
    for (const [event, handler] of this.handlers) {
      process.off(event as 'SIGTERM', handler as () => void);
    }
  }
}
