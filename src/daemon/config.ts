/**
 * Configuration validation, all of it before anything is created (no data file, no folder, no
 * listener): the daemon's own schema (`schemas/main.yaml`), then the backend's part (its module's
 * own schema), then each control's part (likewise), then rules across parts. Every failure is a
 * {@link ConfigIssue} with a JSON path and a rule; the result carries the loaded control modules
 * so that `serve` does not resolve them twice.
 */
import { readFileSync } from 'node:fs';
import type { LoadedBackend } from '../backend/loader.js';
import type { BackendConf } from '../backend/types.js';
import { loadModule, ModuleLoadError } from '../common/load-module.js';
import { type ConfigIssue, SchemaRegistry } from '../common/schema.js';
import type { ControlConf, ControlModule } from '../controls/types.js';
import { validateBackendPart } from './backend-conf.js';
import { type ConfModule, validateModuleConf } from './module-conf.js';

export const MAIN_SCHEMA_ID = 'aimm-store://main.yaml#';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export interface Address {
  host: string;
  port: number;
}

/** `hat.monitor_component` (AIMM's form): register with hat-monitor instead of fixed addresses. */
export interface MonitorComponentConf {
  host: string;
  /** Default {@link DEFAULT_MONITOR_PORT}. */
  port?: number;
  group: string;
  event_server_group: string;
}

export const DEFAULT_MONITOR_PORT = 23010;

/** `hat`: exactly one of `eventer_server` and `monitor_component`. */
export interface HatConf {
  eventer_server?: Address | Address[];
  monitor_component?: MonitorComponentConf;
  client_name?: string;
  client_token?: string;
  client_token_file?: string;
  /** Seconds. */
  ping_delay?: number;
  ping_timeout?: number;
  connect_timeout?: number;
}

/** A validated configuration with defaults applied. */
export interface DaemonConfig {
  name: string;
  backend: BackendConf;
  control: ControlConf[];
  hat: HatConf | null;
  log: { level: LogLevel };
  /** Seconds allowed for a graceful stop. */
  shutdown_timeout: number;
}

export const DEFAULT_NAME = 'aimm-store';
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';
export const DEFAULT_SHUTDOWN_TIMEOUT = 20;

export interface LoadedControl {
  conf: ControlConf;
  module: ControlModule & ConfModule;
  /** JSON path of its config part, e.g. `$.control[1]`. */
  path: string;
}

export interface ConfigCheck {
  issues: ConfigIssue[];
  /** Problems of the environment rather than the config, when checked leniently (check-config). */
  warnings: ConfigIssue[];
  /** Set when there is no issue. */
  config: DaemonConfig | null;
  /** The backend module, loaded and its part validated (nothing created). */
  backend: LoadedBackend | null;
  controls: LoadedControl[];
}

export interface CheckOptions {
  /** Where relative module paths are resolved (the config file's folder). */
  baseDir: string;
  schemas?: SchemaRegistry;
  /**
   * Whether files the daemon reads at start (the Hat token file) must be readable now: errors for
   * `serve` (default), warnings for `check-config`, which may run where those files are not.
   */
  files?: 'error' | 'warning';
}

export async function checkConfig(raw: unknown, options: CheckOptions): Promise<ConfigCheck> {
  const schemas = options.schemas ?? new SchemaRegistry();
  const issues = schemas.validate(MAIN_SCHEMA_ID, raw, '$');
  const controls: LoadedControl[] = [];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { issues, warnings: [], config: null, backend: null, controls };
  }
  const conf = raw as Record<string, unknown>;
  const broken = (path: string) =>
    issues.some(
      (i) => i.path === path || i.path.startsWith(`${path}.`) || i.path.startsWith(`${path}[`),
    );

  let needsHat = false;
  let backend: LoadedBackend | null = null;
  if (!broken('$.backend')) {
    const part = await validateBackendPart(conf.backend, { baseDir: options.baseDir, schemas });
    issues.push(...part.issues);
    needsHat = part.needsHat;
    backend = part.loaded;
  }

  if (Array.isArray(conf.control)) {
    for (const [i, item] of conf.control.entries()) {
      const path = `$.control[${i}]`;
      if (broken(path)) continue;
      const loaded = await loadControl(item as ControlConf, path, options.baseDir, schemas);
      if ('issues' in loaded) issues.push(...loaded.issues);
      else controls.push(loaded);
    }
  }

  const hat = conf.hat as HatConf | undefined;
  issues.push(...checkHat(hat, needsHat, broken('$.hat')));
  const warnings: ConfigIssue[] = [];
  if (!broken('$.hat')) {
    (options.files === 'warning' ? warnings : issues).push(...checkTokenFile(hat));
  }
  issues.push(...checkListeners(conf.control));

  if (issues.length > 0) return { issues, warnings, config: null, backend: null, controls };
  return { issues, warnings, config: withDefaults(conf), backend, controls };
}

async function loadControl(
  conf: ControlConf,
  path: string,
  baseDir: string,
  schemas: SchemaRegistry,
): Promise<LoadedControl | { issues: ConfigIssue[] }> {
  let mod: ControlModule & ConfModule;
  try {
    mod = await loadModule<ControlModule & ConfModule>(conf.module, {
      kind: 'control',
      functions: ['create'],
      baseDir,
    });
  } catch (err) {
    if (!(err instanceof ModuleLoadError)) throw err;
    return { issues: [{ path: `${path}.module`, rule: 'module', message: err.message }] };
  }
  const issues = validateModuleConf(mod, conf, path, schemas, conf.module);
  return issues.length > 0 ? { issues } : { conf, module: mod, path };
}

function checkHat(hat: HatConf | undefined, needsHat: boolean, broken: boolean): ConfigIssue[] {
  if (hat === undefined) {
    return needsHat
      ? [
          {
            path: '$.hat',
            rule: 'required',
            message: 'is required by the configured backend (it talks to a Hat event server)',
          },
        ]
      : [];
  }
  if (broken) return [];
  if (hat.eventer_server !== undefined && hat.monitor_component !== undefined) {
    return [
      {
        path: '$.hat.monitor_component',
        rule: 'exclusive',
        message:
          'give either eventer_server (fixed addresses) or monitor_component (found through hat-monitor), not both',
      },
    ];
  }
  if (hat.eventer_server === undefined && hat.monitor_component === undefined) {
    return [
      {
        path: '$.hat',
        rule: 'required',
        message:
          'needs eventer_server (the Hat event server address) or monitor_component (hat-monitor: {host, port, group, event_server_group})',
      },
    ];
  }
  if (hat.client_token !== undefined && hat.client_token_file !== undefined) {
    return [
      {
        path: '$.hat.client_token_file',
        rule: 'exclusive',
        message: 'give either client_token or client_token_file, not both',
      },
    ];
  }
  return [];
}

function checkTokenFile(hat: HatConf | undefined): ConfigIssue[] {
  if (hat?.client_token_file === undefined || hat.client_token !== undefined) return [];
  try {
    readFileSync(hat.client_token_file);
    return [];
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return [{ path: '$.hat.client_token_file', rule: 'file', message: `cannot read (${code})` }];
  }
}

/** Two controls on the same fixed host:port cannot both listen. */
function checkListeners(controls: unknown): ConfigIssue[] {
  if (!Array.isArray(controls)) return [];
  const seen = new Map<string, number>();
  const issues: ConfigIssue[] = [];
  for (const [i, c] of controls.entries()) {
    const server = (c as { server?: { host?: unknown; port?: unknown } } | null)?.server;
    if (typeof server?.host !== 'string' || typeof server.port !== 'number' || server.port === 0)
      continue;
    const key = `${server.host}:${server.port}`;
    const first = seen.get(key);
    if (first === undefined) seen.set(key, i);
    else
      issues.push({
        path: `$.control[${i}].server`,
        rule: 'unique',
        message: `${key} is already used by $.control[${first}]`,
      });
  }
  return issues;
}

function withDefaults(conf: Record<string, unknown>): DaemonConfig {
  const log = (conf.log ?? {}) as { level?: LogLevel };
  return {
    name: (conf.name as string | undefined) ?? DEFAULT_NAME,
    backend: conf.backend as BackendConf,
    control: conf.control as ControlConf[],
    hat: (conf.hat as HatConf | undefined) ?? null,
    log: { level: log.level ?? DEFAULT_LOG_LEVEL },
    shutdown_timeout: (conf.shutdown_timeout as number | undefined) ?? DEFAULT_SHUTDOWN_TIMEOUT,
  };
}

/** The addresses of `hat.eventer_server` as a list ([] in monitor mode). */
export function hatAddresses(hat: HatConf): Address[] {
  const es = hat.eventer_server;
  return es === undefined ? [] : Array.isArray(es) ? es : [es];
}
