/**
 * Opens the backend a daemon config describes, without the rest of the daemon (no controls, no
 * monitor registration): what `export`, `import` and `migrate` work on. The Hat connection is the
 * config's fixed `eventer_server` address(es); a monitor-mode config is refused, because a tool
 * must not register as a component of the group.
 */
import type { Logger } from 'pino';
import type { Backend } from '../backend/types.js';
import { MetricsRegistry } from '../common/metrics.js';
import { formatIssues } from '../common/schema.js';
import { buildHatConnector } from './hat.js';
import { loadConfig } from './run.js';

export class OpenBackendError extends Error {}

export interface OpenedBackend {
  backend: Backend;
  /** The config's `name` and backend module, for reports. */
  name: string;
  module: string;
}

export async function openConfiguredBackend(file: string, logger: Logger): Promise<OpenedBackend> {
  const loaded = await loadConfig(file);
  const issues = 'issues' in loaded ? loaded.issues : loaded.check.issues;
  if (issues.length > 0) throw new OpenBackendError(formatIssues(loaded.source, issues).join('\n'));
  const { config, backend: loadedBackend } = (loaded as Exclude<typeof loaded, { issues: unknown }>)
    .check;
  if (config === null || loadedBackend === null) {
    throw new OpenBackendError(`${file}: the config has no usable backend`);
  }
  if (config.hat?.monitor_component !== undefined) {
    throw new OpenBackendError(
      `${file}: hat.monitor_component: give this tool a config with hat.eventer_server (the address of the event server to use) instead; a tool does not join the monitor group`,
    );
  }
  const hat =
    config.hat === null ? null : await buildHatConnector(config.hat, `${config.name}/tool`);
  const backend = await loadedBackend.create({
    name: config.name,
    logger,
    metrics: new MetricsRegistry(),
    hat,
  });
  try {
    await backend.whenReady();
  } catch (err) {
    await backend.close().catch(() => {});
    throw err;
  }
  return { backend, name: config.name, module: loadedBackend.specifier };
}
