/**
 * Request bodies of uploads. The framing is checked before anything is read: a `Content-Length`
 * above the limit is 413 and a body without `Content-Length` or chunked encoding is 411, answered
 * before `100 Continue` is sent (so a client that waits for it never sends the body). A body of
 * known length is read into ONE buffer allocated up front (no concatenation, no second copy);
 * a chunked body is collected up to the limit and joined once. A body with no byte for
 * `idleTimeoutMs` fails with 408; one cut off (client gone, connection reset, fewer bytes than
 * announced) fails as `aborted`: nothing of it is used.
 */
import { createHash, type Hash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { header } from './send.js';

export class BodyError extends Error {
  constructor(
    /** The answer (0 when there is nobody left to answer: the client is gone). */
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'BodyError';
  }
}

/**
 * The declared length of a request's body (null for chunked), checked against `maxBytes`
 * without reading anything.
 */
export function declaredLength(req: IncomingMessage, maxBytes: number): number | null {
  const cl = header(req, 'content-length');
  const chunked = /(^|,)\s*chunked\s*$/i.test(header(req, 'transfer-encoding') ?? '');
  if (cl === undefined) {
    if (chunked) return null;
    throw new BodyError(
      411,
      'the request needs a body: send Content-Length (curl -T FILE or --data-binary @FILE) or chunked encoding',
    );
  }
  // Node's parser has already refused a malformed or conflicting Content-Length.
  const length = Number(cl);
  if (!Number.isSafeInteger(length) || length < 0)
    throw new BodyError(400, `invalid Content-Length '${cl}'`);
  if (length > maxBytes)
    throw new BodyError(413, `the model of ${length} bytes exceeds the limit of ${maxBytes} bytes`);
  return length;
}

/** A received body; `sha256` (hex) when it was hashed chunk by chunk as it came in. */
export interface Body {
  bytes: Buffer;
  sha256?: string;
}

/**
 * Bodies above this are hashed while they arrive (the hash overlaps the transfer and the backend
 * need not hash them again); smaller ones come in a chunk or two, and one-shot hashing them later
 * is cheaper than a streaming hash object.
 */
const HASH_WHILE_RECEIVING = 64 * 1024;

/**
 * Reads the body (after `declaredLength`). Sends `100 Continue` first when the client asked for
 * it. Rejects with a {@link BodyError}; the caller answers it (with `Connection: close`, the rest
 * of the body is never read).
 */
export function readBody(
  req: IncomingMessage,
  res: ServerResponse,
  length: number | null,
  limits: { maxBytes: number; idleTimeoutMs: number },
): Promise<Body> {
  if (/^\s*100-continue\s*$/i.test(header(req, 'expect') ?? '')) res.writeContinue();
  return new Promise<Body>((resolve, reject) => {
    let buffer: Buffer | null = null;
    const hash: Hash | null =
      length === null || length > HASH_WHILE_RECEIVING ? createHash('sha256') : null;
    const chunks: Buffer[] = [];
    let received = 0;
    let done = false;
    try {
      if (length !== null) buffer = Buffer.allocUnsafe(length);
    } catch {
      reject(new BodyError(413, `cannot hold a model of ${length} bytes`));
      return;
    }
    const finish = (err: BodyError | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('error', onError);
      if (err === null) {
        const bytes =
          buffer ?? (chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, received));
        resolve(hash === null ? { bytes } : { bytes, sha256: hash.digest('hex') });
        return;
      }
      req.pause();
      reject(err);
    };
    const timer = setTimeout(
      () =>
        finish(new BodyError(408, `no body bytes for ${limits.idleTimeoutMs} ms: upload cut off`)),
      limits.idleTimeoutMs,
    );
    const onData = (chunk: Buffer) => {
      timer.refresh();
      if (buffer !== null) {
        if (received + chunk.length > buffer.length) {
          finish(new BodyError(400, 'more body bytes than Content-Length'));
          return;
        }
        chunk.copy(buffer, received);
      } else {
        if (received + chunk.length > limits.maxBytes) {
          finish(new BodyError(413, `the model exceeds the limit of ${limits.maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      }
      hash?.update(chunk);
      received += chunk.length;
    };
    const onEnd = () => {
      if (buffer !== null && received !== buffer.length)
        finish(new BodyError(0, `body cut off after ${received} of ${buffer.length} bytes`));
      else finish(null);
    };
    const onClose = () =>
      finish(new BodyError(0, `the client went away after ${received} body bytes`));
    const onError = (err: Error) =>
      finish(new BodyError(0, `upload failed after ${received} bytes: ${err.message}`));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
    req.on('error', onError);
  });
}
