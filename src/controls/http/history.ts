/**
 * A model's history over HTTP: `GET /models/{id}/revisions` (the kept revisions, oldest first, as
 * the Juggler `get_history` lists them; `?after=` and `?limit=` page), `GET
 * /models/{id}/revisions/{n}` (one revision's bytes, answered like `GET /models/{id}`) and `POST
 * /models/{id}/rollback?to=N` (a new revision with revision N's bytes; optional `If-Match` on the
 * current ETag). A backend that keeps no history: 501 (`no_history`).
 */
import { rollbackModel } from '../../backend/rollback.js';
import { BackendError } from '../../backend/types.js';
import { revisionJson } from '../model-json.js';
import { guard, sendBackendError } from './errors.js';
import type { Exchange } from './exchange.js';
import { instanceIdOf, ready } from './model-request.js';
import { sendModel } from './read.js';
import { sendError, sendJson } from './send.js';
import { answerWrite, neverMatches, preconditionFailed, preconditionOf } from './write.js';

const COUNT = /^(0|[1-9][0-9]{0,15})$/;

export async function listRevisions(x: Exchange): Promise<void> {
  if (!ready(x)) return;
  const id = instanceIdOf(x);
  if (id === null) return;
  const after = countParam(x, 'after', 0);
  if (after === null) return;
  const limit = countParam(x, 'limit', 0);
  if (limit === null) return;
  const { req, res } = x;
  const { context } = x.options;
  const { backend } = context;
  const getHistory = backend.getHistory?.bind(backend);
  if (getHistory === undefined) return noHistory(x);
  const options = {
    ...(after === undefined ? {} : { after }),
    ...(limit === undefined ? {} : { limit }),
  };
  const history = await guard(context, req, res, () => getHistory(id, options));
  if (history === undefined) return;
  if (history === null) {
    sendError(res, req, 404, `model ${id} not found (it never existed)`, { code: 'not_found' });
    return;
  }
  sendJson(res, req, 200, history.map(revisionJson), { 'Cache-Control': 'no-cache' });
}

export async function getRevision(x: Exchange): Promise<void> {
  if (!ready(x)) return;
  const id = instanceIdOf(x);
  if (id === null) return;
  const revision = revisionOf(x);
  if (revision === null) return;
  const { req, res } = x;
  const { context } = x.options;
  const { backend } = context;
  const read = backend.getRevision?.bind(backend);
  if (read === undefined) return noHistory(x);
  const model = await guard(context, req, res, () => read(id, revision));
  if (model === undefined) return;
  if (model === null) {
    sendError(res, req, 404, `revision ${revision} of model ${id} is not kept`, {
      code: 'not_found',
    });
    return;
  }
  sendModel(x, model);
}

export async function rollback(x: Exchange): Promise<void> {
  if (!ready(x)) return;
  const id = instanceIdOf(x);
  if (id === null) return;
  const to = countParam(x, 'to', 1);
  if (to === null) return;
  if (to === undefined) {
    sendError(x.res, x.req, 400, 'the revision to roll back to is required: ?to=N', {
      code: 'invalid',
    });
    return;
  }
  const pre = preconditionOf(x, false);
  if (pre === null) return;
  if (pre.kind === 'never') {
    await preconditionFailed(x, id, neverMatches(pre.tag));
    return;
  }
  const expected = pre.kind === 'revision' ? pre.revision : undefined;
  try {
    answerWrite(x, 200, await rollbackModel(x.options.context.backend, id, to, expected));
  } catch (err) {
    // With If-Match, a conflict is the precondition failing; a revision not kept stays a 404.
    if (pre.kind !== 'none' && err instanceof BackendError && err.code === 'revision_conflict') {
      await preconditionFailed(x, id, err.message);
      return;
    }
    sendBackendError(x.options.context, x.req, x.res, err);
  }
}

/**
 * A query parameter that is a count at least `min`, given at most once: undefined when absent,
 * null when answered (400).
 */
function countParam(x: Exchange, key: string, min: number): number | undefined | null {
  const values = x.query.getAll(key);
  if (values.length === 0) return undefined;
  const v = values[0] as string;
  const n = Number(v);
  if (values.length === 1 && COUNT.test(v) && Number.isSafeInteger(n) && n >= min) return n;
  const what = min === 0 ? 'a non-negative integer' : 'a positive integer';
  const message =
    values.length > 1
      ? `give the ${key} query parameter once`
      : `${key} must be ${what}, got '${v.slice(0, 40)}'`;
  sendError(x.res, x.req, 400, message, { code: 'invalid' });
  return null;
}

/** The `{n}` of `/models/{id}/revisions/{n}`, or null (answered 400). */
function revisionOf(x: Exchange): number | null {
  const n = Number(x.revision);
  if (/^[1-9][0-9]{0,15}$/.test(x.revision) && Number.isSafeInteger(n)) return n;
  sendError(x.res, x.req, 400, 'invalid revision: expected a positive integer', {
    code: 'invalid',
  });
  return null;
}

function noHistory({ req, res }: Exchange): void {
  sendError(res, req, 501, 'this backend keeps no model history', { code: 'no_history' });
}
