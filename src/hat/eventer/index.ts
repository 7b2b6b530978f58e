export * from './client.js';
export * from './codec.js';
export * from './common.js';
export * from './connector.js';
export * from './json.js';
export * from './payload.js';
export * as schema from './schema.js';
