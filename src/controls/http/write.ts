/**
 * The write routes: `POST /models` (the backend allocates the id), `PUT /models/{id}`
 * (create-or-update; `If-Match` compare-and-set, `If-None-Match: *` create only) and
 * `DELETE /models/{id}` (optional `If-Match`). Every check that needs no body — readiness, id,
 * type, preconditions, the declared length against the limit — is answered before the body is
 * read (`body.ts`), so a refused upload is never received.
 */
import { constants } from 'node:buffer';
import {
  BackendError,
  type CreateOptions,
  type ModelMeta,
  type WriteResult,
} from '../../backend/types.js';
import { modelJson } from '../model-json.js';
import { type Body, BodyError, declaredLength, readBody } from './body.js';
import {
  etagOf,
  isProvisionalEtag,
  PreconditionSyntaxError,
  type WritePrecondition,
  writePrecondition,
} from './conditional.js';
import { sendBackendError } from './errors.js';
import type { Exchange } from './exchange.js';
import { modelHeaders } from './model-headers.js';
import { contentTypeOf, instanceIdOf, modelTypeOf, ready } from './model-request.js';
import { header, sendError, sendJson } from './send.js';
import { BudgetTimeoutError, type Release } from './upload-budget.js';

/**
 * The write options of an upload: the body is a fresh buffer nothing else references, so the
 * backend may keep it instead of copying (a failed write keeps nothing, so the create-or-update
 * retry hands the same buffer on); its hash if it was computed while it arrived; the request's
 * `Content-Type`, if any.
 */
function uploadOptions(body: Body, contentType: string | undefined): CreateOptions {
  const options: CreateOptions = { handOver: true };
  if (body.sha256 !== undefined) options.sha256 = body.sha256;
  if (contentType !== undefined) options.contentType = contentType;
  return options;
}

export async function postModel(x: Exchange): Promise<void> {
  if (!ready(x)) return;
  const type = modelTypeOf(x);
  if (type === null) return;
  const contentType = contentTypeOf(x);
  if (contentType === null) return;
  await withUpload(x, async (body) => {
    const { backend } = x.options.context;
    try {
      answerWrite(
        x,
        201,
        await backend.createModel(type, body.bytes, uploadOptions(body, contentType)),
      );
    } catch (err) {
      sendBackendError(x.options.context, x.req, x.res, err);
    }
  });
}

export async function putModel(x: Exchange): Promise<void> {
  if (!ready(x)) return;
  const id = instanceIdOf(x);
  if (id === null) return;
  const type = modelTypeOf(x);
  if (type === null) return;
  const contentType = contentTypeOf(x);
  if (contentType === null) return;
  const pre = preconditionOf(x, true);
  if (pre === null) return;
  if (pre.kind === 'never') {
    await preconditionFailed(x, id, neverMatches(pre.tag));
    return;
  }
  await withUpload(x, (body) =>
    storeUpload(x, id, type, pre, body.bytes, uploadOptions(body, contentType)),
  );
}

/** PUT's write once the body is in: create, update, compare-and-set or create-or-update. */
async function storeUpload(
  x: Exchange,
  id: number,
  type: string,
  pre: Exclude<WritePrecondition, { kind: 'never' }>,
  body: Buffer,
  upload: CreateOptions,
): Promise<void> {
  const { backend } = x.options.context;
  const createAt = backend.createModelAt?.bind(backend);
  const conditional = pre.kind !== 'none';
  try {
    if (pre.kind === 'absent') {
      if (createAt === undefined) return cannotCreateAt(x, id);
      answerWrite(x, 201, await createAt(id, type, body, upload));
      return;
    }
    const options =
      pre.kind === 'revision' ? { expectedRevision: pre.revision, ...upload } : upload;
    if (pre.kind !== 'none') {
      answerWrite(x, 200, await backend.updateModel(id, type, body, options));
      return;
    }
    // Create-or-update: whichever applies; a create that loses a race to another create updates.
    for (let attempt = 0; ; attempt++) {
      try {
        answerWrite(x, 200, await backend.updateModel(id, type, body, upload));
        return;
      } catch (err) {
        if (!(err instanceof BackendError && err.code === 'not_found')) throw err;
        if (createAt === undefined) return cannotCreateAt(x, id);
      }
      try {
        answerWrite(x, 201, await createAt(id, type, body, upload));
        return;
      } catch (err) {
        const lostRace =
          err instanceof BackendError &&
          err.code === 'revision_conflict' &&
          attempt === 0 &&
          (await backend.getModel(id)) !== null;
        if (!lostRace) throw err;
      }
    }
  } catch (err) {
    if (conditional && err instanceof BackendError && isPreconditionFailure(err)) {
      await preconditionFailed(x, id, err.message);
      return;
    }
    sendBackendError(x.options.context, x.req, x.res, err);
  }
}

export async function deleteModel(x: Exchange): Promise<void> {
  if (!ready(x)) return;
  const id = instanceIdOf(x);
  if (id === null) return;
  const pre = preconditionOf(x, false);
  if (pre === null) return;
  if (pre.kind === 'never') {
    await preconditionFailed(x, id, neverMatches(pre.tag));
    return;
  }
  const { context } = x.options;
  try {
    const options = pre.kind === 'revision' ? { expectedRevision: pre.revision } : {};
    const d = await context.backend.deleteModel(id, options);
    sendJson(
      x.res,
      x.req,
      200,
      {
        instance_id: d.instanceId,
        model_type: d.modelType,
        revision: d.revision,
        deleted: true,
        ...(d.revisionProvisional === true ? { revision_provisional: true } : {}),
      },
      { 'X-Model-Ack': d.ack },
    );
  } catch (err) {
    if (pre.kind !== 'none' && err instanceof BackendError && isPreconditionFailure(err)) {
      await preconditionFailed(x, id, err.message);
      return;
    }
    sendBackendError(context, x.req, x.res, err);
  }
}

// ---------------------------------------------------------------------------------------------

/** The upload limit: the smaller of the control's `max_model_size` and the backend's own. */
export function uploadLimit(x: Exchange): number {
  const limits = [
    x.options.maxModelBytes,
    x.options.context.backend.maxInstanceBytes,
    constants.MAX_LENGTH,
  ];
  return Math.min(...limits.filter((n): n is number => n !== undefined));
}

/**
 * Checks the framing, waits for room in the upload budget (body unread), reads the body, runs
 * `write` with it and gives the room back once `write` is done (the body's memory is in use until
 * then). Answers itself when there is no body to give (refused, timed out, or the client gone).
 */
async function withUpload(x: Exchange, write: (body: Body) => Promise<void>): Promise<void> {
  const maxBytes = uploadLimit(x);
  let length: number | null;
  try {
    length = declaredLength(x.req, maxBytes);
  } catch (err) {
    answerBodyError(x, err);
    return;
  }
  const release = await reserve(x, length);
  if (release === null) return;
  try {
    let body: Body;
    try {
      body = await readBody(x.req, x.res, length, {
        maxBytes,
        idleTimeoutMs: x.options.bodyTimeoutMs,
      });
    } catch (err) {
      answerBodyError(x, err);
      return;
    }
    await write(body);
  } finally {
    release();
  }
}

/** Room for the body in the upload budget; null when answered (503) or the client is gone. */
async function reserve(x: Exchange, length: number | null): Promise<Release | null> {
  // The usual case: room now, no waiting, nothing to cancel.
  const now = x.options.uploads.tryReserve(length);
  if (now !== null) return now;
  const gone = new AbortController();
  const onClose = () => gone.abort();
  x.req.once('close', onClose);
  if (x.req.destroyed) gone.abort();
  try {
    return await x.options.uploads.reserve(length, x.options.bodyTimeoutMs, gone.signal);
  } catch (err) {
    if (err instanceof BudgetTimeoutError) {
      sendError(x.res, x.req, 503, err.message, {
        code: 'unavailable',
        headers: { 'Retry-After': '1' },
      });
    } else x.res.destroy();
    return null;
  } finally {
    x.req.off('close', onClose);
  }
}

/** Answers a {@link BodyError} (rethrows anything else). */
function answerBodyError(x: Exchange, err: unknown): void {
  if (!(err instanceof BodyError)) throw err;
  if (err.status === 0) {
    x.options.logger.info({ err: err.message, url: x.req.url }, 'upload cut off; nothing stored');
    x.res.destroy();
  } else {
    const code = err.status === 413 ? 'too_large' : err.status === 408 ? 'timeout' : 'invalid';
    sendError(x.res, x.req, err.status, err.message, { code });
  }
}

export function preconditionOf(x: Exchange, allowAbsent: boolean): WritePrecondition | null {
  try {
    return writePrecondition(
      header(x.req, 'if-match'),
      header(x.req, 'if-none-match'),
      allowAbsent,
    );
  } catch (err) {
    if (!(err instanceof PreconditionSyntaxError)) throw err;
    sendError(x.res, x.req, 400, err.message, { code: 'invalid' });
    return null;
  }
}

/** Why an `If-Match` that cannot be ours fails. */
export function neverMatches(tag: string): string {
  return isProvisionalEtag(tag)
    ? `If-Match ${tag} is a weak ETag: that revision was provisional (the backend was still counting the model's history from Hat), so it cannot be compared; read the model again once its revision is exact`
    : `If-Match ${tag} is not an ETag this server gives`;
}

function isPreconditionFailure(err: BackendError): boolean {
  return err.code === 'revision_conflict' || err.code === 'not_found';
}

/** 412 with what the model is now (its ETag and metadata, or null when there is none). */
export async function preconditionFailed(x: Exchange, id: number, message: string): Promise<void> {
  let current: ModelMeta | null = null;
  try {
    current = await x.options.context.backend.getModel(id);
  } catch {
    // the 412 stands without the current state
  }
  sendError(x.res, x.req, 412, message, {
    code: 'revision_conflict',
    headers: current === null ? {} : { ETag: etagOf(current) },
    extra: {
      current: current === null ? null : { ...modelJson(current), etag: etagOf(current) },
    },
  });
}

function cannotCreateAt(x: Exchange, id: number): void {
  sendError(
    x.res,
    x.req,
    409,
    `model ${id} does not exist and this backend cannot create a model at a chosen id; POST /models allocates one`,
    { code: 'not_found' },
  );
}

export function answerWrite(x: Exchange, status: 200 | 201, result: WriteResult): void {
  const { meta } = result;
  const headers = { ...modelHeaders(meta), 'X-Model-Ack': result.ack };
  if (status === 201) Object.assign(headers, { Location: `/models/${meta.instanceId}` });
  sendJson(x.res, x.req, status, modelJson(meta), headers);
}
