/**
 * aimm-store's package root: what a third-party backend or control needs to implement the
 * contracts, plus the shared helpers they are given. The built-ins and the libraries have their own
 * entries: `aimm-store/backends/sqlite`, `aimm-store/backends/event`, `aimm-store/controls/juggler`,
 * `aimm-store/controls/http`, `aimm-store/client` (Juggler client) and `aimm-store/hat` (Hat library).
 */
export {
  BackendLoadError,
  backendSubscription,
  createBackend,
  loadBackend,
  validateBackendConf,
} from './backend/loader.js';
export type {
  AckLevel,
  Backend,
  BackendConf,
  BackendContext,
  BackendErrorCode,
  BackendModule,
  BackendStatus,
  ChangeKind,
  ChangeOrigin,
  DeleteResult,
  HatConnectOptions,
  HatConnector,
  Model,
  ModelChange,
  ModelMeta,
  WriteOptions,
  WriteResult,
} from './backend/types.js';
export { BackendError } from './backend/types.js';
export { Counter, Gauge, type Labels, MetricsRegistry } from './common/metrics.js';
export { type ConfigIssue, formatIssues, SchemaRegistry } from './common/schema.js';
export type {
  Control,
  ControlConf,
  ControlContext,
  ControlModule,
  DaemonStatus,
} from './controls/types.js';
