/** The Hat protocol library: SBS codec, chatter transport, eventer client (the `./hat` export). */

export {
  ConnectError,
  ConnectionClosedError,
  FrameTooLargeError,
  HatConnectionError,
  PingTimeoutError,
  ProtocolError,
} from './chatter/errors.js';
export * as chatter from './chatter/index.js';
export { type ConnectOptions, connect, EventerInitError } from './eventer/client.js';
export type {
  Event,
  EventerClient,
  EventId,
  EventPayload,
  EventType,
  QueryParams,
  QueryResult,
  RegisterEvent,
  Status,
  Timestamp,
} from './eventer/common.js';
export {
  jsonPayload,
  matches,
  matchesAny,
  parseJsonPayload,
  serverQuery,
  timeseriesQuery,
} from './eventer/common.js';
export type { HatConnectorOptions } from './eventer/connector.js';
export { createHatConnector } from './eventer/connector.js';
export * as eventer from './eventer/index.js';
export {
  createMonitorHatConnector,
  type EventServerInfo,
  type EventServerSelection,
  type MonitorHatConnector,
  type MonitorHatConnectorOptions,
  selectEventServer,
} from './eventer/monitor-connector.js';
export * as monitor from './monitor/index.js';
export * as sbs from './sbs/index.js';
