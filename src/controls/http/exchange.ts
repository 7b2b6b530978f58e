/** What every route handler gets: the request, the response, the control's options. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Counter } from '../../common/metrics.js';
import type { ControlContext } from '../types.js';
import type { HttpAuth } from './auth.js';
import type { ChangeStreams } from './changes.js';
import type { UploadBudget } from './upload-budget.js';

export interface HandlerOptions {
  context: ControlContext;
  /** Serve /models and /models/{id}. */
  serveModels: boolean;
  /** Serve the web console (`/`, `/console/...`). */
  serveConsole: boolean;
  /** Serve POST /models, PUT and DELETE /models/{id}. */
  writes: boolean;
  /** The control's own upload limit (`max_model_size`), if set; the backend's applies too. */
  maxModelBytes: number | undefined;
  /** An upload with no byte for this long is cut off with 408 (and one waiting for the budget, 503). */
  bodyTimeoutMs: number;
  /** Bytes of upload bodies held at once (`max_upload_bytes_in_flight`). */
  uploads: UploadBudget;
  requests: Counter;
  logger: Logger;
  /** Serves /changes (with serveModels). */
  changes: ChangeStreams;
  /** Authentication and roles; absent or disabled: every request is let through. */
  auth?: HttpAuth;
  /** The OpenAPI description served at `/openapi.json` (JSON text). */
  openapi: string;
}

export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  options: HandlerOptions;
  /** The `{id}` path segment, undecoded (validated by the handler). */
  id: string;
  /** The `{n}` path segment of `/models/{id}/revisions/{n}`, undecoded; else ''. */
  revision: string;
  query: URLSearchParams;
}

export type RouteHandler = (x: Exchange) => Promise<void> | void;
