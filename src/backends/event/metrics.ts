/** The event backend's metrics (registered in the daemon's registry, prefix `aimm_store_`). */
import type { Counter, Gauge, MetricsRegistry } from '../../common/metrics.js';

export interface EventMetrics {
  writes: Counter;
  registerRequests: Counter;
  registerEvents: Counter;
  registerBytes: Counter;
  connected: Gauge;
  connects: Counter;
  disconnects: Counter;
  appliedEvents: Counter;
  skippedEvents: Counter;
  recoveries: Counter;
  recoveryEvents: Gauge;
  recoveryReceived: Counter;
  pipelineDepth: Gauge;
  pipelineHeld: Gauge;
  pipelineHeldBytes: Gauge;
  pipelineWaiting: Gauge;
  snapshotQueueDepth: Gauge;
  pendingHeldBytes: Gauge;
  models: Gauge;
}

export function createEventMetrics(registry: MetricsRegistry): EventMetrics {
  return {
    writes: registry.counter(
      'event_writes_total',
      'Model writes through the event backend, by op and result (ok, failed, queued).',
    ),
    registerRequests: registry.counter(
      'event_register_requests_total',
      'MsgRegisterReq sent by the write pipeline, by result (events, failure, error).',
    ),
    registerEvents: registry.counter(
      'event_register_events_total',
      'Events sent in register requests (divide by requests for the mean batch size).',
    ),
    registerBytes: registry.counter(
      'event_register_bytes_total',
      'Approximate payload bytes sent in register requests.',
    ),
    connected: registry.gauge('event_connected', '1 while connected to the Hat event server.'),
    connects: registry.counter('event_connects_total', 'Successful connections to Hat.'),
    disconnects: registry.counter(
      'event_disconnects_total',
      'Lost connections and failed connection attempts to Hat.',
    ),
    appliedEvents: registry.counter(
      'event_applied_events_total',
      'Model events applied to the state, by origin (local, remote).',
    ),
    skippedEvents: registry.counter(
      'event_skipped_events_total',
      'Malformed events under the prefix that were skipped, by reason.',
    ),
    recoveries: registry.counter(
      'event_recoveries_total',
      'Recoveries, by mode (catch_up, history, latest, rebuild).',
    ),
    recoveryEvents: registry.gauge(
      'event_recovery_events',
      'Events replayed by the current or last recovery (progress).',
    ),
    recoveryReceived: registry.counter(
      'event_recovery_received_events_total',
      'Events received from Hat by recovery queries (checks, probes and pages), by query (timeseries, server, latest).',
    ),
    pipelineDepth: registry.gauge(
      'event_pipeline_depth',
      'Writes waiting in the write pipeline for a register request.',
    ),
    pipelineHeld: registry.gauge(
      'event_pipeline_writes',
      'Writes holding room in the write pipeline (waiting for or in a register request); at most max_queued_writes, except for a backlog from the snapshot queue.',
    ),
    pipelineHeldBytes: registry.gauge(
      'event_pipeline_bytes',
      'Model bytes of the writes holding room in the write pipeline (bounded by max_queued_bytes).',
    ),
    pipelineWaiting: registry.gauge(
      'event_pipeline_waiting_writes',
      'Writes whose callers wait for room in the write pipeline (backpressure from a slow Hat).',
    ),
    snapshotQueueDepth: registry.gauge(
      'event_snapshot_queue_depth',
      'Writes queued durably in the snapshot while Hat is unreachable.',
    ),
    pendingHeldBytes: registry.gauge(
      'event_pending_held_bytes',
      'Payload bytes (model copies and event text) held in memory by writes not yet in Hat; writes queued in the snapshot hold none.',
    ),
    models: registry.gauge('event_models', 'Live models known to the event backend.'),
  };
}
