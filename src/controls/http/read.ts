/**
 * `GET/HEAD /models` (every model's metadata) and `GET/HEAD /models/{id}` (the raw bytes, the
 * metadata in headers): 304 for a matching `If-None-Match`, 206 for one `Range` (`If-Range` with
 * the current ETag), 416 for a range that selects nothing.
 */
import type { IncomingMessage } from 'node:http';
import { DEFAULT_CONTENT_TYPE } from '../../backend/content-type.js';
import type { Model, ModelMeta } from '../../backend/types.js';
import { modelJson } from '../model-json.js';
import { etagOf, ifNoneMatchHits, ifRangeHolds } from './conditional.js';
import { guard } from './errors.js';
import type { Exchange } from './exchange.js';
import { modelHeaders } from './model-headers.js';
import { instanceIdOf, ready } from './model-request.js';
import { type RangeAnswer, rangeOf } from './range.js';
import { header, send, sendError, sendJson } from './send.js';

export async function listModels(x: Exchange): Promise<void> {
  if (!ready(x)) return;
  const { context } = x.options;
  const models = await guard(context, x.req, x.res, () => context.backend.getModels());
  if (models !== undefined)
    sendJson(
      x.res,
      x.req,
      200,
      models.map((m) => modelJson(m)),
    );
}

export async function getModel(x: Exchange): Promise<void> {
  if (!ready(x)) return;
  const instanceId = instanceIdOf(x);
  if (instanceId === null) return;
  const { req, res } = x;
  const { context } = x.options;
  const { backend } = context;
  if (header(req, 'range') !== undefined && backend.getModelRange !== undefined) {
    // Read just the range (the metadata decides which, from the same revision).
    let answer: ReadAnswer = { kind: 'full' };
    const r = await guard(context, req, res, () =>
      (backend.getModelRange as NonNullable<typeof backend.getModelRange>)(instanceId, (meta) => {
        answer = readAnswer(req, meta);
        return answer.kind === 'partial' ? { start: answer.start, end: answer.end + 1 } : null;
      }),
    );
    if (r === undefined) return;
    if (r === null) {
      sendError(res, req, 404, `model ${instanceId} not found`, { code: 'not_found' });
      return;
    }
    // A full answer (the range was ignored) reads the whole model below.
    if (answer.kind !== 'full') {
      sendAnswer(
        x,
        r.meta,
        answer,
        Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.length),
      );
      return;
    }
  }
  const model = await guard(context, req, res, () => backend.getModel(instanceId));
  if (model === undefined) return;
  if (model === null) {
    sendError(res, req, 404, `model ${instanceId} not found`, { code: 'not_found' });
    return;
  }
  sendModel(x, model);
}

/** What a read of a model answers, decided from its metadata and the request's headers. */
type ReadAnswer = RangeAnswer | { kind: 'not-modified' };

function readAnswer(req: IncomingMessage, meta: ModelMeta): ReadAnswer {
  const etag = etagOf(meta);
  if (ifNoneMatchHits(header(req, 'if-none-match'), etag)) return { kind: 'not-modified' };
  return ifRangeHolds(header(req, 'if-range'), etag)
    ? rangeOf(header(req, 'range'), meta.size)
    : { kind: 'full' };
}

/**
 * The bytes of one model (or one revision of it) with its headers: 304 for a matching
 * `If-None-Match`, 206 for one `Range` (`If-Range` with the current ETag), 416 for a range that
 * selects nothing, else 200.
 */
export function sendModel(x: Exchange, model: Model): void {
  const body = Buffer.from(model.instance.buffer, model.instance.byteOffset, model.instance.length);
  const answer = readAnswer(x.req, model);
  sendAnswer(
    x,
    model,
    answer,
    answer.kind === 'partial' ? body.subarray(answer.start, answer.end + 1) : body,
  );
}

/** Sends `answer`; `bytes` are the whole model (full) or the range's bytes (partial). */
function sendAnswer(
  { req, res }: Exchange,
  meta: ModelMeta,
  answer: ReadAnswer,
  bytes: Buffer,
): void {
  const headers = { ...modelHeaders(meta), 'Accept-Ranges': 'bytes' };
  if (answer.kind === 'not-modified') {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  if (answer.kind === 'unsatisfiable') {
    sendError(res, req, 416, `range not satisfiable: the model has ${meta.size} bytes`, {
      headers: { ...headers, 'Content-Range': `bytes */${meta.size}` },
    });
    return;
  }
  if (answer.kind === 'partial') {
    send(res, req, 206, bytes, {
      ...headers,
      ...bodyHeaders(meta),
      'Content-Range': `bytes ${answer.start}-${answer.end}/${meta.size}`,
    });
    return;
  }
  send(res, req, 200, bytes, { ...headers, ...bodyHeaders(meta) });
}

/**
 * The model's own media type (the one it was written with, else `application/octet-stream`).
 * A stored type can be anything an uploader chose (`text/html` too), and the bytes are served
 * from the console's origin: `Content-Security-Policy: sandbox` makes a browser treat them as
 * an opaque origin with scripts off.
 */
function bodyHeaders(meta: ModelMeta): Record<string, string> {
  return {
    'Content-Type': meta.contentType ?? DEFAULT_CONTENT_TYPE,
    'Content-Security-Policy': 'sandbox',
  };
}
