/**
 * `GET/HEAD /models` (every model's metadata) and `GET/HEAD /models/{id}` (the raw bytes, the
 * metadata in headers): 304 for a matching `If-None-Match`, 206 for one `Range` (`If-Range` with
 * the current ETag), 416 for a range that selects nothing.
 */
import type { Model } from '../../backend/types.js';
import { modelJson } from '../model-json.js';
import { etagOf, ifNoneMatchHits, ifRangeHolds } from './conditional.js';
import { guard } from './errors.js';
import type { Exchange } from './exchange.js';
import { modelHeaders } from './model-headers.js';
import { instanceIdOf, ready } from './model-request.js';
import { rangeOf } from './range.js';
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
  const model = await guard(context, req, res, () => context.backend.getModel(instanceId));
  if (model === undefined) return;
  if (model === null) {
    sendError(res, req, 404, `model ${instanceId} not found`, { code: 'not_found' });
    return;
  }
  sendModel(x, model);
}

/**
 * The bytes of one model (or one revision of it) with its headers: 304 for a matching
 * `If-None-Match`, 206 for one `Range` (`If-Range` with the current ETag), 416 for a range that
 * selects nothing, else 200.
 */
export function sendModel({ req, res }: Exchange, model: Model): void {
  const headers = { ...modelHeaders(model), 'Accept-Ranges': 'bytes' };
  const etag = etagOf(model);
  if (ifNoneMatchHits(header(req, 'if-none-match'), etag)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const body = Buffer.from(model.instance.buffer, model.instance.byteOffset, model.instance.length);
  const range = ifRangeHolds(header(req, 'if-range'), etag)
    ? rangeOf(header(req, 'range'), body.length)
    : ({ kind: 'full' } as const);
  if (range.kind === 'unsatisfiable') {
    sendError(res, req, 416, `range not satisfiable: the model has ${body.length} bytes`, {
      headers: { ...headers, 'Content-Range': `bytes */${body.length}` },
    });
    return;
  }
  if (range.kind === 'partial') {
    send(res, req, 206, body.subarray(range.start, range.end + 1), {
      ...headers,
      'Content-Type': 'application/octet-stream',
      'Content-Range': `bytes ${range.start}-${range.end}/${body.length}`,
    });
    return;
  }
  send(res, req, 200, body, { ...headers, 'Content-Type': 'application/octet-stream' });
}
