export * from './connect.js';
export * from './connection.js';
export * from './errors.js';
export * from './framing.js';
export * from './message.js';
