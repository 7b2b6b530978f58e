export * from './codec.js';
export * from './schema.js';
