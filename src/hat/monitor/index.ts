/** hat-monitor's component protocol: codec, one connection, and the blessing-aware component. */
export * from './codec.js';
export * from './common.js';
export * from './component.js';
export * from './connection.js';
export * as schema from './schema.js';
