/**
 * The HTTP transport of `aimm-store/client`, for what Juggler does badly: large models. Bytes go
 * raw (no base64, no JSON), uploads stream from a file with `Content-Length` (the daemon refuses an
 * oversized one before reading it), downloads stream to a file, both with progress callbacks.
 * Authentication: HTTP Basic (`username`/`password`, the clear password) or a bearer `token`;
 * `https://` with the same {@link TlsOptions} as the Juggler client.
 *
 * Compare-and-set: the HTTP API's `If-Match` takes the model's ETag (`"<revision>-<sha256>"`), so
 * `expectedRevision` is turned into the current ETag by a `HEAD` first (failing at once if the
 * model is at another revision); the server's `If-Match` check then makes the write exact.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ModelInfo } from './client.js';
import { RequestFailedError, type TlsOptions } from './connection.js';

export interface HttpClientOptions {
  username?: string;
  password?: string;
  token?: string;
  tls?: TlsOptions;
}

/** Bytes done so far and the total (null when the server did not say). */
export type ProgressCallback = (done: number, total: number | null) => void;

export interface HttpPutOptions {
  /** Replace (or create, where the store allows a chosen id) model N instead of a new one. */
  instanceId?: number;
  expectedRevision?: number;
  onProgress?: ProgressCallback;
}

export class HttpModelClient {
  private readonly base: URL;

  constructor(
    baseUrl: string,
    private readonly options: HttpClientOptions = {},
  ) {
    this.base = new URL(baseUrl);
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') {
      throw new TypeError(`not an http:// or https:// address: '${baseUrl}'`);
    }
  }

  /** Stores a file (streamed) or bytes as a new model, or as model N with `instanceId`. */
  async put(
    modelType: string,
    source: { file: string } | Uint8Array,
    options: HttpPutOptions = {},
  ): Promise<ModelInfo> {
    const headers: OutgoingHttpHeaders = { 'Content-Type': 'application/octet-stream' };
    if (options.expectedRevision !== undefined) {
      if (options.instanceId === undefined)
        throw new TypeError('expectedRevision needs instanceId (a new model has no revision)');
      headers['If-Match'] = await this.etagAt(options.instanceId, options.expectedRevision);
    }
    const size = source instanceof Uint8Array ? source.length : (await stat(source.file)).size;
    headers['Content-Length'] = String(size);
    const path =
      options.instanceId === undefined
        ? `models?type=${encodeURIComponent(modelType)}`
        : `models/${options.instanceId}?type=${encodeURIComponent(modelType)}`;
    const body =
      source instanceof Uint8Array
        ? Readable.from([Buffer.from(source)])
        : createReadStream(source.file);
    const res = await this.send(options.instanceId === undefined ? 'POST' : 'PUT', path, headers, {
      body,
      size,
      onProgress: options.onProgress,
    });
    return infoOf(await this.json(res, 'put'));
  }

  /** Streams model N's bytes (or an earlier revision's) into `out`; resolves with its metadata. */
  async download(
    instanceId: number,
    out: Writable,
    options: { revision?: number; onProgress?: ProgressCallback } = {},
  ): Promise<ModelInfo> {
    const path =
      options.revision === undefined
        ? `models/${instanceId}`
        : `models/${instanceId}/revisions/${options.revision}`;
    const res = await this.send('GET', path, {});
    if (res.statusCode !== 200) await this.fail(res, 'get');
    const total = Number(res.headers['content-length'] ?? Number.NaN);
    let done = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, next) {
        done += chunk.length;
        options.onProgress?.(done, Number.isNaN(total) ? null : total);
        next(null, chunk);
      },
    });
    await pipeline(res, count, out);
    return infoOfHeaders(res);
  }

  /** Model N's bytes into `file` (written whole, then renamed into place by the caller if needed). */
  async downloadToFile(
    instanceId: number,
    file: string,
    options: { revision?: number; onProgress?: ProgressCallback } = {},
  ): Promise<ModelInfo> {
    return this.download(instanceId, createWriteStream(file), options);
  }

  /** Model N's metadata from a HEAD request. */
  async getMeta(instanceId: number): Promise<ModelInfo> {
    const res = await this.send('HEAD', `models/${instanceId}`, {});
    res.resume();
    if (res.statusCode !== 200) await this.fail(res, 'get');
    return infoOfHeaders(res);
  }

  async remove(instanceId: number, options: { expectedRevision?: number } = {}): Promise<void> {
    const headers: OutgoingHttpHeaders = {};
    if (options.expectedRevision !== undefined)
      headers['If-Match'] = await this.etagAt(instanceId, options.expectedRevision);
    const res = await this.send('DELETE', `models/${instanceId}`, headers);
    await this.json(res, 'remove');
  }

  /** The ETag of model N if it is at `revision`; else a `revision_conflict` failure. */
  private async etagAt(instanceId: number, revision: number): Promise<string> {
    const res = await this.send('HEAD', `models/${instanceId}`, {});
    res.resume();
    if (res.statusCode !== 200) await this.fail(res, 'put');
    const current = Number(res.headers['x-model-revision']);
    if (current !== revision) {
      throw new RequestFailedError(
        'put',
        `model ${instanceId} is at revision ${current}, expected ${revision}`,
        'revision_conflict',
      );
    }
    return String(res.headers.etag);
  }

  private send(
    method: string,
    path: string,
    headers: OutgoingHttpHeaders,
    upload?: { body: Readable; size: number; onProgress?: ProgressCallback | undefined },
  ): Promise<IncomingMessage> {
    const url = new URL(path, this.base.href.endsWith('/') ? this.base : `${this.base.href}/`);
    const auth = this.authorization();
    if (auth !== undefined) headers.Authorization = auth;
    const tls = this.options.tls ?? {};
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
      method,
      headers,
      ...(url.protocol === 'https:' ? tls : {}),
    });
    return new Promise<IncomingMessage>((resolve, reject) => {
      req.on('response', resolve);
      req.on('error', reject);
      if (upload === undefined) {
        req.end();
        return;
      }
      let done = 0;
      upload.body.on('data', (chunk: Buffer) => {
        done += chunk.length;
        upload.onProgress?.(done, upload.size);
      });
      // A refusal before the body is read (413, 401) ends the request early: not an error here.
      pipeline(upload.body, req).catch(() => {});
    });
  }

  private authorization(): string | undefined {
    const { token, username, password } = this.options;
    if (token !== undefined) return `Bearer ${token}`;
    if (username !== undefined)
      return `Basic ${Buffer.from(`${username}:${password ?? ''}`, 'utf8').toString('base64')}`;
    return undefined;
  }

  private async json(res: IncomingMessage, what: string): Promise<unknown> {
    if (res.statusCode === undefined || res.statusCode >= 300) await this.fail(res, what);
    return JSON.parse((await readAll(res)).toString('utf8'));
  }

  /** Throws the server's JSON error as a {@link RequestFailedError} (with its `code`). */
  private async fail(res: IncomingMessage, what: string): Promise<never> {
    const text = (await readAll(res)).toString('utf8');
    let body: { error?: unknown; code?: unknown } = {};
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      // not JSON: the status says it
    }
    const message =
      typeof body.error === 'string'
        ? body.error
        : `HTTP ${res.statusCode} ${res.statusMessage ?? ''}`;
    throw new RequestFailedError(what, message, body.code ?? codeOfStatus(res.statusCode));
  }
}

function codeOfStatus(status: number | undefined): string | undefined {
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status === 412) return 'revision_conflict';
  if (status === 413) return 'too_large';
  return undefined;
}

async function readAll(res: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function infoOf(data: unknown): ModelInfo {
  const d = (data ?? {}) as Record<string, unknown>;
  return {
    instanceId: Number(d.instance_id),
    modelType: String(d.model_type),
    revision: Number(d.revision),
    size: Number(d.size),
    sha256: String(d.sha256),
    updated: String(d.updated),
    ...(typeof d.ack === 'string' ? { ack: d.ack } : {}),
    ...(d.revision_provisional === true ? { revisionProvisional: true as const } : {}),
  };
}

function infoOfHeaders(res: IncomingMessage): ModelInfo {
  const h = res.headers;
  const updated = Date.parse(String(h['last-modified'] ?? ''));
  return {
    instanceId: Number(h['x-model-id']),
    modelType: decodeURIComponent(String(h['x-model-type'] ?? '')),
    revision: Number(h['x-model-revision']),
    size: Number(h['content-length']),
    sha256: String(h['x-model-sha256'] ?? ''),
    updated: Number.isNaN(updated) ? '' : new Date(updated).toISOString(),
    ...(h['x-model-revision-provisional'] === 'true' ? { revisionProvisional: true as const } : {}),
  };
}
