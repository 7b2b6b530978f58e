/**
 * The daemon's own metrics (backends and controls register theirs through the same registry):
 * build info, readiness, uptime, process memory and CPU, backend connection state, and model
 * changes by kind and origin. Labels are low-cardinality (no ids, no model types).
 */
import type { Observable, Subscription } from 'rxjs';
import type { BackendStatus, ModelChange } from '../backend/types.js';
import { type MetricsRegistry, seriesBy } from '../common/metrics.js';
import { packageVersion } from '../common/version.js';

export interface DaemonMetricsSource {
  name: string;
  ready(): boolean;
  backendStatus(): BackendStatus | null;
}

export function registerDaemonMetrics(metrics: MetricsRegistry, source: DaemonMetricsSource): void {
  const startedAt = Date.now();
  metrics
    .gauge('info', 'Build and instance information (always 1)')
    .set(1, { version: packageVersion(), name: source.name, node: process.version });
  metrics
    .gauge('start_time_seconds', 'Start time of the process, seconds since the Unix epoch')
    .set(Math.floor(startedAt / 1000));
  metrics
    .gauge('uptime_seconds', 'Seconds since the daemon started')
    .collect(() => (Date.now() - startedAt) / 1000);
  metrics
    .gauge('ready', '1 when recovered (and connected, for the event backend) and serving, else 0')
    .collect(() => (source.ready() ? 1 : 0));
  metrics
    .gauge('backend_connected', '1 when the backend reports its remote peer (Hat) connected')
    .collect(() => (source.backendStatus()?.connected === true ? 1 : 0));
  metrics
    .gauge('process_resident_memory_bytes', 'Resident set size of the process')
    .collect(() => process.memoryUsage.rss());
  metrics
    .gauge('process_heap_used_bytes', 'V8 heap in use')
    .collect(() => process.memoryUsage().heapUsed);
  metrics.gauge('process_cpu_seconds', 'User plus system CPU time of the process').collect(() => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  });
}

/** Counts every model change by kind (created/updated/deleted) and origin (local/remote). */
export function countChanges(
  changes$: Observable<ModelChange>,
  metrics: MetricsRegistry,
): Subscription {
  const counter = metrics.counter('model_changes_total', 'Model changes by kind and origin');
  const byOrigin = {
    local: seriesBy(counter, (change: ModelChange['change']) => ({ change, origin: 'local' })),
    remote: seriesBy(counter, (change: ModelChange['change']) => ({ change, origin: 'remote' })),
  };
  return changes$.subscribe({
    next: (c) => byOrigin[c.origin](c.change).inc(),
    error: () => {},
  });
}
