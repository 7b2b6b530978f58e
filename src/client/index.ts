/**
 * `aimm-store/client`: a TypeScript client for the aimm-store daemon's Juggler API.
 *
 * ```ts
 * import { JugglerClient } from 'aimm-store/client';
 * const client = await JugglerClient.connect('ws://127.0.0.1:9950/', { username, password });
 * const meta = await client.put('plugins.sklearn.SVC', bytes);
 * client.watch().subscribe((change) => console.log(change));
 * ```
 */

export { REQUEST_ERROR_CODES, type RequestErrorCode } from '../common/error-codes.js';
export {
  AuthenticationError,
  type ClientState,
  type ConnectOptions,
  DEFAULT_ADDRESS,
  JugglerClient,
  type ModelChangeEvent,
  type ModelInfo,
  type PutOptions,
  type RemoveResult,
  type RevisionInfo,
  type StoredModel,
} from './client.js';
export {
  ConnectionClosedError,
  type ConnectionOptions,
  JugglerConnection,
  type Notification,
  RequestFailedError,
  type TlsOptions,
} from './connection.js';
export { ConnectFailedError, type ConnectFailure } from './diagnose.js';
export {
  type HttpClientOptions,
  HttpModelClient,
  type HttpPutOptions,
  type ProgressCallback,
} from './http-client.js';
export { applyPatch, type JsonPatchOp, PatchError } from './patch.js';
export type { Framing } from './wire.js';
