/**
 * The event backend's configuration: the seed's `model_prefix` plus aimm-store's optional extras
 * (schema `aimm://server/backend/event.yaml#`), checked and completed with defaults.
 */
import { BackendError } from '../../backend/types.js';

export const CONF_SCHEMA_ID = 'aimm://server/backend/event.yaml#';

export type AckMode = 'registered' | 'persisted';

export interface EventBackendConfig {
  modelPrefix: readonly string[];
  /** Path of the SQLite snapshot, or null for none (models live in memory). */
  snapshotPath: string | null;
  ack: AckMode;
  queueWhenDisconnected: boolean;
  idStride: number;
  idOffset: number;
  maxBatchEvents: number;
  maxBatchBytes: number;
  /** Register requests in flight at once on the connection (the register window; 1: one). */
  maxRegistersInFlight: number;
  /** Backpressure: writes (and their model bytes) the pipeline holds before writers wait. */
  maxQueuedWrites: number;
  maxQueuedBytes: number;
  maxInstanceBytes: number;
  requestTimeoutMs: number;
  catchUpPageSize: number;
  catchUpPageBytes: number;
  reconnectMinDelayMs: number;
  reconnectMaxDelayMs: number;
  closeTimeoutMs: number;
  /** With several Hat addresses: a server non-operational this long is left for another. */
  standbySwitchMs: number;
  /**
   * Full replay (no checkpoint): `latest_then_history` (default) is ready from `latest` and makes
   * revisions exact in the background; `history` replays the history before ready; `latest` only.
   */
  fullReplay: FullReplay;
  /** How recovery reads Hat's history (full replay and catch-up): see `recovery.ts`. */
  catchUp: CatchUpMode;
}

export type CatchUpMode = 'auto' | 'timeseries' | 'server';

/**
 * `latest_then_history` (the default since issue 15): ready from `latest`, revisions completed in
 * the background; `history`: exact before ready; `latest`: AIMM's scan only.
 */
export type FullReplay = 'history' | 'latest' | 'latest_then_history';

export const DEFAULTS = {
  ack: 'registered' as AckMode,
  // A start without a checkpoint (a new standby, a rebuilt node) is ready as fast as AIMM's:
  // docs/backend-event.md, "Ready from `latest`" (issue 15).
  fullReplay: 'latest_then_history' as FullReplay,
  maxBatchEvents: 1000,
  maxBatchBytes: 8 * 1024 * 1024,
  // The register window (docs/backend-event.md, "Register window"; docs/performance.md).
  maxRegistersInFlight: 2,
  // Backpressure (docs/backend-event.md, "Backpressure"): a few batches' worth.
  maxQueuedWrites: 4096,
  maxQueuedBytes: 64 * 1024 * 1024,
  // 32 MiB: see "Model size" in docs/backend-event.md (Hat's cost per byte, not our frame limit).
  maxInstanceBytes: 32 * 1024 * 1024,
  requestTimeoutMs: 30_000,
  catchUpPageSize: 1000,
  catchUpPageBytes: 16 * 1024 * 1024,
  reconnectMinDelayMs: 200,
  reconnectMaxDelayMs: 30_000,
  closeTimeoutMs: 10_000,
  standbySwitchMs: 10_000,
};

/** Validates `conf` (the `backend` section) and fills in defaults; throws BackendError('invalid'). */
export function parseConfig(conf: Record<string, unknown>): EventBackendConfig {
  const fail = (message: string): never => {
    throw new BackendError('invalid', `event backend config: ${message}`);
  };
  const prefix = conf.model_prefix;
  if (!Array.isArray(prefix) || prefix.some((s) => typeof s !== 'string'))
    fail('model_prefix must be an array of strings');
  const modelPrefix = (prefix as string[]).slice();
  for (const seg of modelPrefix)
    if (seg === '*' || seg === '?')
      fail(`model_prefix segment '${seg}' is a wildcard; segments must be literal`);

  let snapshotPath: string | null = null;
  if (conf.snapshot !== undefined && conf.snapshot !== null) {
    const s = conf.snapshot as Record<string, unknown>;
    if (typeof s !== 'object' || typeof s.path !== 'string' || s.path === '')
      fail('snapshot.path must be a non-empty string');
    snapshotPath = s.path as string;
  }

  const ack = conf.ack ?? DEFAULTS.ack;
  if (ack !== 'registered' && ack !== 'persisted') fail("ack must be 'registered' or 'persisted'");

  const queueWhenDisconnected = conf.queue_when_disconnected === true;
  if (queueWhenDisconnected && snapshotPath === null)
    fail('queue_when_disconnected needs a snapshot (snapshot.path): queued writes are kept in it');

  let idStride = 1;
  let idOffset = 0;
  if (conf.id_allocation !== undefined) {
    const a = conf.id_allocation as Record<string, unknown>;
    idStride = int(a?.stride, 'id_allocation.stride', 1);
    idOffset = a?.offset === undefined ? 0 : int(a.offset, 'id_allocation.offset', 0);
    if (idOffset >= idStride)
      fail('id_allocation.offset must be smaller than id_allocation.stride');
  }

  const reconnect = (conf.reconnect ?? {}) as Record<string, unknown>;
  const reconnectMinDelayMs = optInt(
    reconnect.min_delay_ms,
    'reconnect.min_delay_ms',
    1,
    DEFAULTS.reconnectMinDelayMs,
  );
  const reconnectMaxDelayMs = optInt(
    reconnect.max_delay_ms,
    'reconnect.max_delay_ms',
    1,
    Math.max(DEFAULTS.reconnectMaxDelayMs, reconnectMinDelayMs),
  );
  if (reconnectMaxDelayMs < reconnectMinDelayMs)
    fail('reconnect.max_delay_ms must not be smaller than reconnect.min_delay_ms');

  const catchUpPageSize = optInt(
    conf.catch_up_page_size,
    'catch_up_page_size',
    1,
    DEFAULTS.catchUpPageSize,
  );
  if (catchUpPageSize > 4096)
    fail('catch_up_page_size must be at most 4096 (Hat caps pages there)');

  const fullReplay = conf.full_replay ?? DEFAULTS.fullReplay;
  if (fullReplay !== 'history' && fullReplay !== 'latest' && fullReplay !== 'latest_then_history')
    fail("full_replay must be 'history', 'latest' or 'latest_then_history'");

  const catchUp = conf.catch_up ?? 'auto';
  if (catchUp !== 'auto' && catchUp !== 'timeseries' && catchUp !== 'server')
    fail("catch_up must be 'auto', 'timeseries' or 'server'");

  return {
    modelPrefix,
    fullReplay: fullReplay as FullReplay,
    catchUp: catchUp as CatchUpMode,
    snapshotPath,
    ack: ack as AckMode,
    queueWhenDisconnected,
    idStride,
    idOffset,
    maxBatchEvents: optInt(conf.max_batch_events, 'max_batch_events', 1, DEFAULTS.maxBatchEvents),
    maxBatchBytes: optInt(conf.max_batch_bytes, 'max_batch_bytes', 1, DEFAULTS.maxBatchBytes),
    maxRegistersInFlight: optInt(
      conf.max_registers_in_flight,
      'max_registers_in_flight',
      1,
      DEFAULTS.maxRegistersInFlight,
    ),
    maxQueuedWrites: optInt(
      conf.max_queued_writes,
      'max_queued_writes',
      1,
      DEFAULTS.maxQueuedWrites,
    ),
    maxQueuedBytes: optInt(conf.max_queued_bytes, 'max_queued_bytes', 1, DEFAULTS.maxQueuedBytes),
    maxInstanceBytes: maxInstanceBytes(
      optInt(conf.max_instance_bytes, 'max_instance_bytes', 1, DEFAULTS.maxInstanceBytes),
    ),
    requestTimeoutMs: optInt(
      conf.request_timeout_ms,
      'request_timeout_ms',
      1,
      DEFAULTS.requestTimeoutMs,
    ),
    catchUpPageSize,
    catchUpPageBytes: optInt(
      conf.catch_up_page_bytes,
      'catch_up_page_bytes',
      1,
      DEFAULTS.catchUpPageBytes,
    ),
    reconnectMinDelayMs,
    reconnectMaxDelayMs,
    closeTimeoutMs: optInt(conf.close_timeout_ms, 'close_timeout_ms', 0, DEFAULTS.closeTimeoutMs),
    standbySwitchMs: optInt(
      conf.standby_switch_ms,
      'standby_switch_ms',
      1,
      DEFAULTS.standbySwitchMs,
    ),
  };

  function int(v: unknown, name: string, min: number): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min)
      fail(`${name} must be an integer >= ${min}`);
    return v as number;
  }
  function optInt(v: unknown, name: string, min: number, dflt: number): number {
    return v === undefined ? dflt : int(v, name, min);
  }
}

/**
 * The largest `max_instance_bytes` whose event still fits one eventer frame (256 MiB, the limit of
 * the frames we read: Hat's register response and notification carry the event back), with 4 MiB
 * left for the JSON around the base64, the model type and the SBS framing: 188 MiB.
 */
export const MAX_INSTANCE_BYTES_LIMIT = 188 * 1024 * 1024;

function maxInstanceBytes(n: number): number {
  if (n > MAX_INSTANCE_BYTES_LIMIT)
    throw new BackendError(
      'invalid',
      `event backend config: max_instance_bytes must be at most ${MAX_INSTANCE_BYTES_LIMIT} (188 MiB): base64 in JSON makes an event 4/3 of the model, and Hat's answers carrying it back must fit the 256 MiB eventer frame limit`,
    );
  return n;
}

/** The subscription the backend needs: every event type under the prefix. */
export function subscriptionOf(modelPrefix: readonly string[]): string[][] {
  return [[...modelPrefix, '*']];
}
