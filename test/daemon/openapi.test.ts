/**
 * `schemas/openapi.yaml` against the HTTP control, both ways. The control runs in process over a
 * real sqlite backend behind the daemon's ServedBackend (with authentication: a `write` and a
 * `read` user), wrapped so a case can make one backend call fail or hide the history methods. Each
 * case below names the operation it exercises and the status it expects; the test checks that
 *
 * - the document's structure (the OpenAPI fields used here) is valid and every `$ref` resolves;
 * - the paths and methods of `routeTable` and the document are the same (GET also answers HEAD);
 * - every status a case receives is documented for its operation, and a JSON body matches the
 *   documented schema (ajv, JSON Schema 2020-12 as OpenAPI 3.1 uses);
 * - every status documented for an operation is received by at least one case.
 *
 * A new route, method or status in the server without its description (or the reverse) fails here,
 * as long as a case exercises it; the last check makes every documented status need a case.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { pino } from 'pino';
import { parse as parseYaml } from 'yaml';
import { BackendError } from '../../src/backend/types.js';
import { create as createSqlite, type SqliteBackend } from '../../src/backends/sqlite.js';
import { MetricsRegistry } from '../../src/common/metrics.js';
import { OPENAPI_FILE } from '../../src/controls/http/openapi.js';
import { ROUTE_PATHS, routeOf, routeTable } from '../../src/controls/http/router.js';
import { create } from '../../src/controls/http.js';
import { hashPassword } from '../../src/controls/juggler/auth.js';
import type { Control, ControlContext } from '../../src/controls/types.js';
import { ServedBackend } from '../../src/daemon/served-backend.js';
import { tempDir, testContext } from '../backend/support/context.js';

type Doc = {
  openapi: string;
  paths: Record<string, Record<string, unknown>>;
  components: Record<string, Record<string, unknown>>;
  [k: string]: unknown;
};
const doc = parseYaml(readFileSync(OPENAPI_FILE, 'utf8')) as Doc;
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

// --- the document's structure -----------------------------------------------------------------

/** The parts of an OpenAPI 3.1 document this one uses, with their required fields. */
const STRUCTURE = {
  type: 'object',
  required: ['openapi', 'info', 'paths', 'components'],
  properties: {
    openapi: { type: 'string', pattern: '^3\\.1\\.\\d+$' },
    info: {
      type: 'object',
      required: ['title', 'version'],
      properties: { title: { type: 'string' }, version: { type: 'string' } },
    },
    security: { type: 'array', items: { type: 'object' } },
    paths: {
      type: 'object',
      propertyNames: { pattern: '^/' },
      additionalProperties: {
        type: 'object',
        propertyNames: { enum: [...METHODS, 'parameters', 'summary', 'description'] },
        properties: Object.fromEntries(METHODS.map((m) => [m, { $ref: '#/$defs/operation' }])),
        additionalProperties: true,
      },
    },
    components: {
      type: 'object',
      required: ['securitySchemes'],
      properties: {
        securitySchemes: {
          type: 'object',
          required: ['basic', 'bearer'],
          additionalProperties: {
            type: 'object',
            required: ['type', 'scheme'],
            properties: { type: { const: 'http' }, scheme: { enum: ['basic', 'bearer'] } },
          },
        },
      },
    },
  },
  $defs: {
    operation: {
      type: 'object',
      required: ['operationId', 'responses'],
      properties: {
        operationId: { type: 'string' },
        parameters: { type: 'array', items: { $ref: '#/$defs/parameter' } },
        responses: {
          type: 'object',
          minProperties: 1,
          propertyNames: { pattern: '^[1-5][0-9][0-9]$' },
          additionalProperties: { $ref: '#/$defs/response' },
        },
      },
    },
    parameter: {
      oneOf: [
        { type: 'object', required: ['$ref'] },
        {
          type: 'object',
          required: ['name', 'in', 'schema'],
          properties: { in: { enum: ['path', 'query', 'header'] } },
        },
      ],
    },
    response: {
      oneOf: [
        { type: 'object', required: ['$ref'] },
        { type: 'object', required: ['description'] },
      ],
    },
  },
};

/** Follows a local `$ref` (`#/components/...`). */
function deref<T>(value: T): T {
  const ref = (value as { $ref?: unknown })?.$ref;
  if (typeof ref !== 'string') return value;
  assert.ok(ref.startsWith('#/'), `only local $refs: ${ref}`);
  let at: unknown = doc;
  for (const part of ref.slice(2).split('/')) {
    at = (at as Record<string, unknown> | undefined)?.[
      part.replace(/~1/g, '/').replace(/~0/g, '~')
    ];
  }
  assert.ok(at !== undefined, `$ref ${ref} resolves`);
  return deref(at as T);
}

function allRefs(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) allRefs(v, out);
  else if (typeof value === 'object' && value !== null)
    for (const [k, v] of Object.entries(value)) {
      if (k === '$ref' && typeof v === 'string') out.push(v);
      else allRefs(v, out);
    }
  return out;
}

/** Documented statuses by operation (`GET /models/{id}`). */
function documented(): Map<string, Set<number>> {
  const ops = new Map<string, Set<number>>();
  for (const [path, item] of Object.entries(doc.paths))
    for (const method of METHODS) {
      const op = item[method] as { responses: Record<string, unknown> } | undefined;
      if (op === undefined) continue;
      ops.set(`${method.toUpperCase()} ${path}`, new Set(Object.keys(op.responses).map(Number)));
    }
  return ops;
}

// --- the server ------------------------------------------------------------------------------

const PASSWORDS = { writer: 'w-secret', reader: 'r-secret' };
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
const WRITER = basic('writer', PASSWORDS.writer);
/** The console page's ETag, from its 200 case, for the 304 case after it. */
let consoleEtag = '';
const READER = basic('reader', PASSWORDS.reader);

/** What a case can do to the backend under the control. */
const tweak = {
  /** The next call of this method fails with this error (once). */
  faults: new Map<string, unknown>(),
  /** Hide getHistory/getRevision (a backend without history). */
  noHistory: false,
  ready: true,
};

function wrapped(inner: SqliteBackend): SqliteBackend {
  return new Proxy(inner, {
    get(target, key, receiver) {
      if (tweak.noHistory && (key === 'getHistory' || key === 'getRevision')) return undefined;
      const v = Reflect.get(target, key, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        const fault = tweak.faults.get(String(key));
        if (fault !== undefined) {
          tweak.faults.delete(String(key));
          return Promise.reject(fault);
        }
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

interface Raw {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * One request over a fresh connection, written byte for byte (so that a case can omit the
 * length or the body), read until the server closes it.
 */
function raw(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: Buffer | string,
): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (body !== undefined) socket.write(body);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      const head = all.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head[0] ?? '')?.[1]);
      const h: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).toLowerCase();
        const value = line.slice(colon + 1).trim();
        h[name] = h[name] === undefined ? value : `${h[name]}, ${value}`;
      }
      resolve({ status, headers: h, body: all.subarray(end + 4) });
    });
  });
}

// --- the cases -------------------------------------------------------------------------------

interface Case {
  /** The operation, as `METHOD /path/{template}`. */
  op: string;
  path: string;
  status: number;
  /** The method sent, when not the operation's (HEAD for GET). */
  method?: string;
  /** Default: the writer's credentials. */
  auth?: string | null;
  headers?: Record<string, string> | (() => Record<string, string>);
  body?: Buffer | string;
  /** Run before the request. */
  setup?: () => void | Promise<void>;
  check?: (r: Raw) => void;
}

const first = Buffer.from('first revision');
const second = Buffer.from('the second revision');
let etag2 = '';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const len = (b: Buffer | string) => ({ 'Content-Length': String(Buffer.byteLength(b)) });
const failOnce = (method: string, err: unknown) => () => {
  tweak.faults.set(method, err);
};
const notReady = () => {
  tweak.ready = false;
};
const noHistory = () => {
  tweak.noHistory = true;
};

// Model 1: revisions 1 (first) and 2 (second). Model 2 is created and deleted on the way.
const CASES: Case[] = [
  { op: 'GET /healthz', path: '/healthz', status: 200, auth: null },
  { op: 'GET /readyz', path: '/readyz', status: 200, auth: null },
  { op: 'GET /readyz', path: '/readyz', status: 503, auth: null, setup: notReady },
  { op: 'GET /metrics', path: '/metrics', status: 200 },
  { op: 'GET /metrics', path: '/metrics', status: 401, auth: null },
  { op: 'GET /openapi.json', path: '/openapi.json', status: 200, auth: null },
  {
    op: 'POST /models',
    method: 'POST',
    path: '/models?type=a.Model',
    headers: len(first),
    body: first,
    status: 201,
    check: (r) => assert.equal(r.headers.location, '/models/1'),
  },
  { op: 'POST /models', path: '/models', headers: len(first), body: first, status: 400 },
  {
    op: 'POST /models',
    path: '/models?type=a',
    headers: len('x'),
    body: 'x',
    status: 401,
    auth: null,
  },
  {
    op: 'POST /models',
    path: '/models?type=a',
    headers: len('x'),
    body: 'x',
    status: 403,
    auth: READER,
  },
  // Content-Length promises bytes that never come: cut off after body_timeout_ms.
  { op: 'POST /models', path: '/models?type=a', headers: { 'Content-Length': '10' }, status: 408 },
  { op: 'POST /models', path: '/models?type=a', status: 411 },
  {
    op: 'POST /models',
    path: '/models?type=a',
    headers: { 'Content-Length': '5000' },
    status: 413,
  },
  {
    op: 'POST /models',
    path: '/models?type=a',
    headers: len('x'),
    body: 'x',
    status: 500,
    setup: failOnce('createModel', new TypeError('a bug')),
  },
  {
    op: 'POST /models',
    path: '/models?type=a',
    headers: len('x'),
    body: 'x',
    status: 503,
    setup: notReady,
  },
  {
    op: 'PUT /models/{id}',
    path: '/models/1?type=a.Model',
    headers: len(second),
    body: second,
    status: 200,
    check: (r) => {
      etag2 = r.headers.etag ?? '';
      assert.equal(etag2, `"2-${sha(second)}"`);
    },
  },
  {
    op: 'PUT /models/{id}',
    path: '/models/2?type=b',
    headers: len('two'),
    body: 'two',
    status: 201,
  },
  { op: 'DELETE /models/{id}', path: '/models/2', status: 200 },
  // Model 2 was deleted: its id is never reused.
  {
    op: 'PUT /models/{id}',
    path: '/models/2?type=b',
    headers: len('two'),
    body: 'two',
    status: 409,
  },
  { op: 'PUT /models/{id}', path: '/models/x?type=b', headers: len('x'), body: 'x', status: 400 },
  {
    op: 'PUT /models/{id}',
    path: '/models/1?type=b',
    headers: len('x'),
    body: 'x',
    status: 401,
    auth: null,
  },
  {
    op: 'PUT /models/{id}',
    path: '/models/1?type=b',
    headers: len('x'),
    body: 'x',
    status: 403,
    auth: READER,
  },
  {
    op: 'PUT /models/{id}',
    path: '/models/1?type=b',
    headers: { 'Content-Length': '3' },
    status: 408,
  },
  { op: 'PUT /models/{id}', path: '/models/1?type=b', status: 411 },
  {
    op: 'PUT /models/{id}',
    path: '/models/1?type=b',
    headers: { ...len('x'), 'If-Match': `"1-${sha(first)}"` },
    body: 'x',
    status: 412,
  },
  {
    op: 'PUT /models/{id}',
    path: '/models/1?type=b',
    headers: { 'Content-Length': '5000' },
    status: 413,
  },
  {
    op: 'PUT /models/{id}',
    path: '/models/1?type=b',
    headers: len('x'),
    body: 'x',
    status: 500,
    setup: failOnce('updateModel', new TypeError('a bug')),
  },
  {
    op: 'PUT /models/{id}',
    path: '/models/1?type=b',
    headers: len('x'),
    body: 'x',
    status: 503,
    setup: notReady,
  },
  {
    op: 'GET /models/{id}',
    path: '/models/1',
    status: 200,
    check: (r) => assert.ok(r.body.equals(second)),
  },
  { op: 'GET /models/{id}', path: '/models/1', method: 'HEAD', status: 200 },
  { op: 'GET /models/{id}', path: '/models/1', headers: { Range: 'bytes=0-2' }, status: 206 },
  { op: 'GET /models/{id}', path: '/models/1', headers: { 'If-None-Match': '*' }, status: 304 },
  { op: 'GET /models/{id}', path: '/models/0', status: 400 },
  { op: 'GET /models/{id}', path: '/models/1', status: 401, auth: null },
  { op: 'GET /models/{id}', path: '/models/2', status: 404 },
  { op: 'GET /models/{id}', path: '/models/1', headers: { Range: 'bytes=999-' }, status: 416 },
  {
    op: 'GET /models/{id}',
    path: '/models/1',
    status: 500,
    setup: failOnce('getModel', new TypeError('bug')),
  },
  {
    op: 'GET /models/{id}',
    path: '/models/1',
    status: 503,
    setup: failOnce('getModel', new BackendError('unavailable', 'hat unreachable')),
  },
  { op: 'GET /models', path: '/models', status: 200 },
  { op: 'GET /models', path: '/models', status: 401, auth: null },
  {
    op: 'GET /models',
    path: '/models',
    status: 500,
    setup: failOnce('getModels', new TypeError('bug')),
  },
  { op: 'GET /models', path: '/models', status: 503, setup: notReady },
  { op: 'DELETE /models/{id}', path: '/models/x', status: 400 },
  { op: 'DELETE /models/{id}', path: '/models/1', status: 401, auth: null },
  { op: 'DELETE /models/{id}', path: '/models/1', status: 403, auth: READER },
  { op: 'DELETE /models/{id}', path: '/models/2', status: 404 },
  { op: 'DELETE /models/{id}', path: '/models/1', headers: { 'If-Match': '"1-x"' }, status: 412 },
  {
    op: 'DELETE /models/{id}',
    path: '/models/1',
    status: 500,
    setup: failOnce('deleteModel', new TypeError('bug')),
  },
  { op: 'DELETE /models/{id}', path: '/models/1', status: 503, setup: notReady },
  {
    op: 'GET /models/{id}/revisions',
    path: '/models/1/revisions',
    status: 200,
    check: (r) => {
      const list = JSON.parse(r.body.toString()) as { revision: number; current: boolean }[];
      assert.deepEqual(
        list.map((e) => [e.revision, e.current]),
        [
          [1, false],
          [2, true],
        ],
      );
    },
  },
  {
    op: 'GET /models/{id}/revisions',
    path: '/models/1/revisions?after=1&limit=5',
    status: 200,
    check: (r) => assert.equal((JSON.parse(r.body.toString()) as unknown[]).length, 1),
  },
  // A deleted model keeps its history.
  { op: 'GET /models/{id}/revisions', path: '/models/2/revisions', status: 200, auth: READER },
  { op: 'GET /models/{id}/revisions', path: '/models/1/revisions?limit=-1', status: 400 },
  { op: 'GET /models/{id}/revisions', path: '/models/1/revisions?after=1&after=2', status: 400 },
  { op: 'GET /models/{id}/revisions', path: '/models/1/revisions', status: 401, auth: null },
  { op: 'GET /models/{id}/revisions', path: '/models/99/revisions', status: 404 },
  {
    op: 'GET /models/{id}/revisions',
    path: '/models/1/revisions',
    status: 500,
    setup: failOnce('getHistory', new TypeError('bug')),
  },
  { op: 'GET /models/{id}/revisions', path: '/models/1/revisions', status: 501, setup: noHistory },
  { op: 'GET /models/{id}/revisions', path: '/models/1/revisions', status: 503, setup: notReady },
  {
    op: 'GET /models/{id}/revisions/{n}',
    path: '/models/1/revisions/1',
    status: 200,
    check: (r) => {
      assert.ok(r.body.equals(first));
      assert.equal(r.headers.etag, `"1-${sha(first)}"`);
      assert.equal(r.headers['x-model-revision'], '1');
    },
  },
  {
    op: 'GET /models/{id}/revisions/{n}',
    path: '/models/1/revisions/1',
    headers: { Range: 'bytes=-3' },
    status: 206,
    check: (r) => assert.equal(r.body.toString(), first.subarray(-3).toString()),
  },
  {
    op: 'GET /models/{id}/revisions/{n}',
    path: '/models/1/revisions/1',
    headers: { 'If-None-Match': `"1-${sha(first)}"` },
    status: 304,
  },
  { op: 'GET /models/{id}/revisions/{n}', path: '/models/1/revisions/0', status: 400 },
  { op: 'GET /models/{id}/revisions/{n}', path: '/models/1/revisions/1', status: 401, auth: null },
  { op: 'GET /models/{id}/revisions/{n}', path: '/models/1/revisions/7', status: 404 },
  {
    op: 'GET /models/{id}/revisions/{n}',
    path: '/models/1/revisions/1',
    headers: { Range: 'bytes=100-' },
    status: 416,
  },
  {
    op: 'GET /models/{id}/revisions/{n}',
    path: '/models/1/revisions/1',
    status: 500,
    setup: failOnce('getRevision', new TypeError('bug')),
  },
  {
    op: 'GET /models/{id}/revisions/{n}',
    path: '/models/1/revisions/1',
    status: 501,
    setup: noHistory,
  },
  {
    op: 'GET /models/{id}/revisions/{n}',
    path: '/models/1/revisions/1',
    status: 503,
    setup: notReady,
  },
  { op: 'POST /models/{id}/rollback', path: '/models/1/rollback', status: 400 },
  { op: 'POST /models/{id}/rollback', path: '/models/1/rollback?to=1', status: 401, auth: null },
  { op: 'POST /models/{id}/rollback', path: '/models/1/rollback?to=1', status: 403, auth: READER },
  { op: 'POST /models/{id}/rollback', path: '/models/1/rollback?to=9', status: 404 },
  {
    op: 'POST /models/{id}/rollback',
    path: '/models/1/rollback?to=1',
    status: 409,
    setup: failOnce('updateModel', new BackendError('revision_conflict', 'a concurrent write')),
  },
  {
    op: 'POST /models/{id}/rollback',
    path: '/models/1/rollback?to=1',
    headers: { 'If-Match': `"1-${sha(first)}"` },
    status: 412,
  },
  {
    op: 'POST /models/{id}/rollback',
    path: '/models/1/rollback?to=1',
    status: 500,
    setup: failOnce('getModel', new TypeError('bug')),
  },
  {
    op: 'POST /models/{id}/rollback',
    path: '/models/1/rollback?to=1',
    status: 501,
    setup: noHistory,
  },
  {
    op: 'POST /models/{id}/rollback',
    path: '/models/1/rollback?to=1',
    status: 503,
    setup: notReady,
  },
  {
    op: 'POST /models/{id}/rollback',
    path: '/models/1/rollback?to=1',
    headers: () => ({ 'If-Match': etag2 }),
    status: 200,
    check: (r) => {
      assert.equal(r.headers['x-model-revision'], '3');
      assert.equal((JSON.parse(r.body.toString()) as { sha256: string }).sha256, sha(first));
    },
  },
  { op: 'GET /changes', path: '/changes', method: 'HEAD', status: 200 },
  { op: 'GET /changes', path: '/changes?nope=1', status: 400 },
  { op: 'GET /changes', path: '/changes', status: 401, auth: null },
  { op: 'GET /changes', path: '/changes', status: 503, setup: notReady },
  { op: 'GET /whoami', path: '/whoami', status: 200, auth: READER },
  { op: 'GET /whoami', path: '/whoami', status: 401, auth: null },
  { op: 'GET /', path: '/', status: 302, auth: null },
  {
    op: 'GET /console/{path}',
    path: '/console/',
    status: 200,
    auth: null,
    check: (r) => {
      consoleEtag = String(r.headers.etag);
    },
  },
  { op: 'GET /console/{path}', path: '/console', status: 301, auth: null },
  { op: 'GET /console/{path}', path: '/console/nope.js', status: 404, auth: null },
  {
    op: 'GET /console/{path}',
    path: '/console/',
    status: 304,
    auth: null,
    headers: () => ({ 'If-None-Match': consoleEtag }),
  },
];

// --- the test --------------------------------------------------------------------------------

describe('OpenAPI description (schemas/openapi.yaml)', () => {
  const t = tempDir('aimm-openapi-');
  let inner: SqliteBackend;
  let control: Control;
  let port: number;

  before(async () => {
    inner = await createSqlite(
      { module: 'aimm-store/backends/sqlite', path: join(t.dir, 'm.db') },
      testContext(),
    );
    const metrics = new MetricsRegistry();
    const backend = new ServedBackend(wrapped(inner), metrics);
    const context: ControlContext = {
      name: 'openapi',
      logger: pino({ level: 'silent' }),
      metrics,
      backend,
      status: () => ({ ready: tweak.ready, backend: { ready: tweak.ready } }),
    };
    control = await create(
      {
        module: 'aimm-store/controls/http',
        server: { host: '127.0.0.1', port: 0 },
        users: [
          { username: 'writer', password: hashPassword(PASSWORDS.writer) },
          { username: 'reader', password: hashPassword(PASSWORDS.reader), role: 'read' },
        ],
        max_model_size: 1000,
        body_timeout_ms: 100,
      },
      context,
    );
    port = control.address.port;
  });

  after(async () => {
    await control?.close();
    await inner?.close();
    t.remove();
  });

  test('the document has the OpenAPI 3.1 structure it uses, and every $ref resolves', () => {
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    const valid = ajv.validate(STRUCTURE, doc);
    assert.ok(valid, ajv.errorsText(ajv.errors, { separator: '\n' }));
    for (const ref of allRefs(doc)) deref({ $ref: ref });
    const ids = [...documented().keys()].map((key) => {
      const [method, path] = key.split(' ') as [string, string];
      const op = doc.paths[path]?.[method.toLowerCase()] as { operationId: string } | undefined;
      return op?.operationId;
    });
    assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
  });

  test('the routes and methods of the server are those of the document', () => {
    const served = new Set<string>();
    const table = routeTable(true);
    for (const [route, methods] of Object.entries(table)) {
      const path = ROUTE_PATHS[route as keyof typeof ROUTE_PATHS];
      for (const m of Object.keys(methods ?? {})) served.add(`${m} ${path}`);
      // routeOf maps the documented path (with sample values) to that route.
      const sample = path.replace('{id}', '7').replace('{n}', '3').replace('{path}', 'x.js');
      assert.equal(routeOf(sample, true, true).route, route, sample);
    }
    assert.deepEqual([...documented().keys()].sort(), [...served].sort());
    // Without writes only the read operations remain (and rollback is an unknown path).
    const readOnly = routeTable(false);
    for (const [route, methods] of Object.entries(readOnly))
      for (const m of Object.keys(methods ?? {})) assert.equal(m, 'GET', `${route} without writes`);
  });

  test('every answer is documented with its body schema, and every documented status is answered', async () => {
    const ajv = new Ajv2020({ allErrors: true, strict: false, validateSchema: false });
    ajv.addSchema({ ...doc, $id: 'openapi' } as object);
    const ops = documented();
    const seen = new Map<string, Set<number>>();
    for (const c of CASES) {
      tweak.ready = true;
      tweak.noHistory = false;
      tweak.faults.clear();
      await c.setup?.();
      const [opMethod, template] = c.op.split(' ') as [string, string];
      const auth = c.auth === undefined ? WRITER : c.auth;
      const headers = {
        ...(auth === null ? {} : { Authorization: auth }),
        ...(typeof c.headers === 'function' ? c.headers() : c.headers),
      };
      const r = await raw(port, c.method ?? opMethod, c.path, headers, c.body);
      const what = `${c.method ?? opMethod} ${c.path} (${c.op})`;
      assert.equal(r.status, c.status, `${what}: ${r.body.toString().slice(0, 300)}`);
      assert.equal(routeOf(c.path, true, true).route !== 'other', true, what);
      const documentedStatuses = ops.get(c.op);
      assert.ok(documentedStatuses !== undefined, `${c.op} is documented`);
      assert.ok(documentedStatuses.has(r.status), `${what}: status ${r.status} is documented`);
      c.check?.(r);
      const s = seen.get(c.op) ?? new Set<number>();
      seen.set(c.op, s);
      s.add(r.status);
      // A JSON body matches the documented schema.
      const where = `${template} ${opMethod.toLowerCase()} responses ${r.status}`;
      const operation = doc.paths[template]?.[opMethod.toLowerCase()] as
        | { responses: Record<string, unknown> }
        | undefined;
      const response = deref(operation?.responses[String(r.status)]) as {
        content?: Record<string, { schema?: unknown }>;
      };
      const type = (r.headers['content-type'] ?? '').split(';')[0] as string;
      if (r.status === 304 || c.method === 'HEAD') continue;
      assert.ok(
        response.content?.[type] !== undefined,
        `${what}: ${type} is documented (${where})`,
      );
      if (type === 'application/json') {
        const schema = response.content[type]?.schema as object;
        const validate = ajv.compile(rebase(schema));
        assert.ok(
          validate(JSON.parse(r.body.toString())),
          `${what}: body ${r.body.toString().slice(0, 200)} ${ajv.errorsText(validate.errors)}`,
        );
      }
    }
    const missing: string[] = [];
    for (const [op, statuses] of ops)
      for (const status of statuses)
        if (!seen.get(op)?.has(status)) missing.push(`${op} ${status}`);
    assert.deepEqual(missing, [], 'documented statuses no case receives');
  });

  test('GET /openapi.json serves the document, without credentials', async () => {
    const r = await raw(port, 'GET', '/openapi.json', {});
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body.toString()), doc);
  });
});

/** A response schema whose local `$ref`s point into the document registered as `openapi`. */
function rebase(schema: object): object {
  return JSON.parse(JSON.stringify(schema).replace(/"\$ref":"#\//g, '"$ref":"openapi#/')) as object;
}
