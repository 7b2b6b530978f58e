/**
 * The requests of the Juggler control: AIMM's REPL requests with AIMM's keys and replies (`login`,
 * `logout`, `add_instance`, `update_instance`; `create_instance`, `fit`, `predict` refused: this
 * daemon stores models, it does not run them), and ours (`get_instance`, `remove_instance`,
 * `list_instances`, `expected_revision`, `meta_only`). Handlers validate every field and turn
 * backend failures into error texts for the client; they never throw anything else.
 *
 * Every failure also has a machine-readable {@link ErrorCode}. It is sent beside the text (the
 * response's `code`) unless the request is one of AIMM's in AIMM's form ({@link inAimmForm}): the
 * replies AIMM's clients get stay byte for byte what AIMM sends.
 */
import type { Logger } from 'pino';
import { rollbackModel } from '../../backend/rollback.js';
import { type Backend, BackendError, type ModelMeta } from '../../backend/types.js';
import { REQUEST_ERROR_CODES, type RequestErrorCode } from '../../common/error-codes.js';
import { modelJson, revisionJson } from '../model-json.js';
import { allows, type Role } from '../roles.js';
import type { Users } from './auth.js';
import { decodeStrictBase64, encodeBase64 } from './base64.js';
import { markModelReply } from './fast-texts.js';
import { decodedInstanceOf } from './large-request.js';

/** What a handler may do to its session. */
export interface SessionAccess {
  readonly authorized: boolean;
  /** What the session may do once authorized (`write` on an open server). */
  readonly role: Role;
  login(username: string, role: Role): void;
  logout(): void;
  /** Close the connection (code 1000) once the response has been sent. */
  closeAfterResponse(): void;
}

export interface HandlerEnv {
  backend: Backend;
  /** null: open (no login required). */
  users: Users | null;
  logger: Logger;
  onLoginFailure(username: string): void;
}

export interface Outcome {
  success: boolean;
  data: unknown;
  /** On a failure: the code to send beside the text (absent for requests in AIMM's form). */
  code?: ErrorCode;
}

/** Why a request failed, for programs (docs/juggler-api.md, "Error codes"). */
export type ErrorCode = RequestErrorCode;

/** The codes a BackendError's own code passes through as: all but the login's (ours alone). */
const BACKEND_CODES: ReadonlySet<string> = new Set(
  REQUEST_ERROR_CODES.filter((c) => c !== 'unauthorized' && c !== 'forbidden'),
);

/** A failure whose message is the error text sent to the client. */
export class RequestError extends Error {
  constructor(
    message: string,
    readonly code: ErrorCode = 'invalid',
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

type Handler = (data: unknown, session: SessionAccess, env: HandlerEnv) => Promise<unknown>;

const ENGINE_CALLS = new Set(['create_instance', 'fit', 'predict']);

/** Requests that change models: refused (`forbidden`) to a session whose role is `read`. */
export const WRITE_REQUESTS: ReadonlySet<string> = new Set([
  'add_instance',
  'update_instance',
  'remove_instance',
  'rollback_instance',
]);

const handlers: Readonly<Record<string, Handler>> = {
  logout: async (_data, session) => {
    session.logout();
    return null;
  },
  add_instance: async (data, _session, env) => {
    const d = object(data, 'add_instance');
    const modelType = modelTypeOf(d);
    const { bytes, b64, given } = instanceOf(d);
    if (d.expected_revision !== undefined && d.expected_revision !== null)
      throw new RequestError('expected_revision applies to update_instance and remove_instance');
    const metaOnly = flag(d, 'meta_only'); // checked before the write: a refused request stores nothing
    // `bytes` were just decoded from the request (the reply uses the base64 text): hand them over.
    const r = await env.backend.createModel(modelType, bytes, { handOver: true, ...given });
    return metaOnly ? metaReply(r.meta, r.ack) : aimmReply(r.meta, b64());
  },
  update_instance: async (data, _session, env) => {
    const d = object(data, 'update_instance');
    const modelType = modelTypeOf(d);
    const id = instanceIdOf(d);
    const { bytes, b64, given } = instanceOf(d);
    const options = revisionOption(d);
    const metaOnly = flag(d, 'meta_only'); // checked before the write: a refused request stores nothing
    const r = await env.backend.updateModel(id, modelType, bytes, {
      ...options,
      handOver: true,
      ...given,
    });
    return metaOnly ? metaReply(r.meta, r.ack) : aimmReply(r.meta, b64());
  },
  get_instance: async (data, _session, env) => {
    const d = object(data, 'get_instance');
    const id = instanceIdOf(d);
    const model = await env.backend.getModel(id);
    if (model === null) throw new RequestError(`model ${id} not found`, 'not_found');
    const { instance, ...meta } = model;
    if (flag(d, 'meta_only')) return metaReply(meta);
    return modelJson(meta, encodeBase64(instance));
  },
  remove_instance: async (data, _session, env) => {
    const d = object(data, 'remove_instance');
    const id = instanceIdOf(d);
    const r = await env.backend.deleteModel(id, revisionOption(d));
    return {
      instance_id: r.instanceId,
      model_type: r.modelType,
      revision: r.revision,
      ack: r.ack,
      ...(r.revisionProvisional === true ? { revision_provisional: true } : {}),
    };
  },
  get_history: async (data, _session, env) => {
    const d = object(data, 'get_history');
    const id = instanceIdOf(d);
    const after = optionalCount(d, 'after');
    const limit = optionalCount(d, 'limit');
    const history = await env.backend.getHistory?.(id, {
      ...(after === undefined ? {} : { after }),
      ...(limit === undefined ? {} : { limit }),
    });
    if (history === undefined) throw new RequestError('this backend keeps no model history');
    if (history === null) throw new RequestError(`model ${id} not found`, 'not_found');
    return history.map(revisionJson);
  },
  get_revision: async (data, _session, env) => {
    const d = object(data, 'get_revision');
    const id = instanceIdOf(d);
    const revision = requiredCount(d, 'revision');
    const model = await env.backend.getRevision?.(id, revision);
    if (model === undefined) throw new RequestError('this backend keeps no model history');
    if (model === null)
      throw new RequestError(`revision ${revision} of model ${id} is not kept`, 'not_found');
    const { instance, ...meta } = model;
    if (flag(d, 'meta_only')) return metaReply(meta);
    return modelJson(meta, encodeBase64(instance));
  },
  rollback_instance: async (data, _session, env) => {
    const d = object(data, 'rollback_instance');
    const id = instanceIdOf(d);
    const revision = requiredCount(d, 'revision');
    const expected = revisionOption(d).expectedRevision;
    const r = await rollbackModel(env.backend, id, revision, expected);
    return metaReply(r.meta, r.ack);
  },
  list_instances: async (_data, _session, env) => {
    const metas = await env.backend.getModels();
    // (Entries of a list: plain modelJson, not marked as replies of their own.)
    return metas.map((m) => modelJson(m));
  },
};

/** AIMM's request names (what AIMM's REPL control answers). */
const AIMM_REQUESTS: ReadonlySet<string> = new Set([
  'login',
  'logout',
  'add_instance',
  'update_instance',
  ...ENGINE_CALLS,
]);

/** Our fields on AIMM's requests: AIMM's clients never send them. */
const EXTENSION_FIELDS = ['meta_only', 'expected_revision'];

/**
 * A request AIMM's clients could send: one of AIMM's names, without our extension fields. Its
 * failures get AIMM's reply (the text alone, no `code`), so AIMM's recorded sessions replay byte
 * for byte; everything else (our requests, AIMM's with `meta_only` or `expected_revision`) gets the
 * code as well.
 */
export function inAimmForm(name: string, data: unknown): boolean {
  if (!AIMM_REQUESTS.has(name)) return false;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return true;
  return !EXTENSION_FIELDS.some((k) => Object.hasOwn(data, k));
}

/** Names this control answers (anything else gets AIMM's `{"success": false}`). */
export const KNOWN_REQUESTS: ReadonlySet<string> = new Set([
  'login',
  ...Object.keys(handlers),
  ...ENGINE_CALLS,
]);

/** Runs one request; resolves with the Juggler outcome, never rejects. */
export async function handleRequest(
  name: string,
  data: unknown,
  session: SessionAccess,
  env: HandlerEnv,
): Promise<Outcome> {
  try {
    if (name === 'login') return { success: true, data: login(data, session, env) };
    if (!KNOWN_REQUESTS.has(name)) {
      // AIMM's quirk, kept for its clients: unknown names are not Juggler errors.
      return { success: true, data: { success: false } };
    }
    if (!session.authorized) throw new RequestError('unauthorized action', 'unauthorized');
    if (WRITE_REQUESTS.has(name) && !allows(session.role, 'write'))
      throw new RequestError(
        `forbidden: '${name}' needs the role write (this user has read)`,
        'forbidden',
      );
    if (ENGINE_CALLS.has(name))
      throw new RequestError(
        `aimm-store persists models and does not run them: '${name}' is not supported`,
      );
    const handler = handlers[name] as Handler;
    return { success: true, data: await handler(data, session, env) };
  } catch (err) {
    let failure: { text: string; code: ErrorCode };
    if (err instanceof RequestError) failure = { text: err.message, code: err.code };
    else if (err instanceof BackendError)
      failure = {
        text: err.message,
        code: BACKEND_CODES.has(err.code) ? (err.code as ErrorCode) : 'internal',
      };
    else {
      env.logger.error({ err, request: name }, 'request failed');
      failure = { text: 'internal error', code: 'internal' };
    }
    const outcome: Outcome = { success: false, data: failure.text };
    // A read-only user is ours alone (AIMM has no roles): its refusals always carry the code.
    if (!inAimmForm(name, data) || failure.code === 'forbidden') outcome.code = failure.code;
    return outcome;
  }
}

function login(data: unknown, session: SessionAccess, env: HandlerEnv): { success: boolean } {
  const d = object(data, 'login');
  if (typeof d.username !== 'string' || typeof d.password !== 'string')
    throw new RequestError('login needs username and password strings');
  const role = env.users === null ? 'write' : env.users.authenticate(d.username, d.password);
  if (role !== null) {
    session.login(d.username, role);
    return { success: true };
  }
  env.onLoginFailure(d.username);
  session.closeAfterResponse();
  return { success: false };
}

function object(data: unknown, request: string): Record<string, unknown> {
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw new RequestError(`${request} data must be an object`);
  return data as Record<string, unknown>;
}

function modelTypeOf(d: Record<string, unknown>): string {
  if (typeof d.model_type !== 'string' || d.model_type === '')
    throw new RequestError('model_type must be a non-empty string');
  return d.model_type;
}

function instanceIdOf(d: Record<string, unknown>): number {
  const id = d.instance_id;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1)
    throw new RequestError(`instance_id must be a positive integer, got ${describe(id)}`);
  return id;
}

/**
 * The request's model: its bytes, its base64 text (made on demand when the request was read from
 * its bytes), and `given`: the write option passing that text on to the backend when it exists
 * already (so that a backend writing base64 need not encode the bytes again).
 */
function instanceOf(d: Record<string, unknown>): {
  bytes: Buffer;
  b64: () => string;
  given: { base64?: string };
} {
  // A large request was decoded while it was read from its bytes (large-request.ts): its text
  // is made only if the reply needs it.
  const decoded = decodedInstanceOf(d);
  if (decoded !== null) return { bytes: decoded, b64: () => d.instance_b64 as string, given: {} };
  const text = d.instance_b64;
  if (typeof text !== 'string') throw new RequestError('instance_b64 must be a string');
  const bytes = decodeStrictBase64(text);
  if (bytes === null)
    throw new RequestError(
      'instance_b64 is not valid standard base64 (A-Z a-z 0-9 + /, padded with =, no line breaks)',
    );
  return { bytes, b64: () => text, given: { base64: text } };
}

function revisionOption(d: Record<string, unknown>): { expectedRevision?: number } {
  const r = d.expected_revision;
  if (r === undefined || r === null) return {};
  if (typeof r !== 'number' || !Number.isSafeInteger(r) || r < 0)
    throw new RequestError(`expected_revision must be a non-negative integer, got ${describe(r)}`);
  return { expectedRevision: r };
}

/** An optional positive integer field (`after`, `limit`). */
function optionalCount(d: Record<string, unknown>, key: string): number | undefined {
  const v = d[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new RequestError(`${key} must be a non-negative integer, got ${describe(v)}`);
  return v;
}

function requiredCount(d: Record<string, unknown>, key: string): number {
  const v = optionalCount(d, key);
  if (v === undefined || v < 1)
    throw new RequestError(`${key} must be a positive integer, got ${describe(d[key])}`);
  return v;
}

function flag(d: Record<string, unknown>, key: string): boolean {
  const v = d[key];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new RequestError(`${key} must be a boolean`);
  return v;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return `the string ${JSON.stringify(v.slice(0, 40))}`;
  if (typeof v === 'number') return String(v);
  if (v === undefined) return 'nothing';
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

/** AIMM's model shape: `{instance_id, model_type, instance}`. */
function aimmReply(meta: ModelMeta, b64: string): Record<string, unknown> {
  return { instance_id: meta.instanceId, model_type: meta.modelType, instance: b64 };
}

/** Our metadata shape: {@link modelJson}, and on writes the `ack`. */
function metaReply(meta: ModelMeta, ack?: string): Record<string, unknown> {
  const r = modelJson(meta);
  if (ack !== undefined) r.ack = ack;
  return markModelReply(r);
}
