import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer as createNetServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { BackendError, type BackendStatus } from '../../src/backend/types.js';
import { MetricsRegistry } from '../../src/common/metrics.js';
import { checkConf, create } from '../../src/controls/http.js';
import { isLoopbackHost } from '../../src/controls/loopback.js';
import type { Control, ControlContext } from '../../src/controls/types.js';
import { MemoryBackend } from '../support/memory-backend.js';
import { httpRequest } from './harness.js';

const logger = pino({ level: 'silent' });

function contextWith(backend: MemoryBackend, status: () => BackendStatus, ready: () => boolean) {
  const metrics = new MetricsRegistry();
  const context: ControlContext = {
    name: 'test',
    logger,
    metrics,
    backend,
    status: () => ({ ready: ready(), backend: status() }),
  };
  return context;
}

describe('HTTP control', () => {
  const backend = new MemoryBackend();
  let ready = false;
  let backendStatus: BackendStatus = { ready: false, detail: 'recovering 5/10', connected: false };
  const context = contextWith(
    backend,
    () => backendStatus,
    () => ready,
  );
  let control: Control;
  let port: number;
  const bytes = randomBytes(300_000);

  before(async () => {
    control = await create(
      { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } },
      context,
    );
    port = control.address.port;
    await backend.createModel('plugins.sklearn.SVC', bytes);
    await backend.createModel('type with spaces/ünïcode', new Uint8Array(0));
  });
  after(() => control.close());

  test('listens on the real port of a port-0 config', () => {
    assert.equal(control.address.host, '127.0.0.1');
    assert.ok(port > 0);
  });

  test('/healthz answers while /readyz says not ready, then ready', async () => {
    const health = await httpRequest(port, '/healthz');
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.body.toString()), { status: 'alive' });

    const notReady = await httpRequest(port, '/readyz');
    assert.equal(notReady.status, 503);
    assert.deepEqual(JSON.parse(notReady.body.toString()), {
      ready: false,
      connected: false,
      detail: 'recovering 5/10',
    });
    const notYet = await httpRequest(port, '/models/1');
    assert.equal(notYet.status, 503);
    assert.equal(notYet.headers['retry-after'], '1');

    ready = true;
    backendStatus = { ready: true, connected: true };
    const isReady = await httpRequest(port, '/readyz');
    assert.equal(isReady.status, 200);
    assert.deepEqual(JSON.parse(isReady.body.toString()), { ready: true, connected: true });
  });

  test('GET /models/{id}: the exact bytes with type, revision and sha256 headers', async () => {
    ready = true;
    const res = await httpRequest(port, '/models/1');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/octet-stream');
    assert.equal(res.headers['content-length'], String(bytes.length));
    assert.ok(res.body.equals(bytes));
    const sha = createHash('sha256').update(bytes).digest('hex');
    assert.equal(res.headers['x-model-sha256'], sha);
    assert.equal(res.headers['x-model-type'], 'plugins.sklearn.SVC');
    assert.equal(res.headers['x-model-revision'], '1');
    assert.equal(res.headers['x-model-id'], '1');
    assert.equal(res.headers.etag, `"1-${sha}"`, 'the ETag names the revision and the bytes');
    assert.equal(res.headers['accept-ranges'], 'bytes');
    assert.equal(
      res.headers['repr-digest'],
      `sha-256=:${createHash('sha256').update(bytes).digest('base64')}:`,
    );
    assert.ok(typeof res.headers['last-modified'] === 'string');

    const empty = await httpRequest(port, '/models/2');
    assert.equal(empty.status, 200);
    assert.equal(empty.body.length, 0);
    assert.equal(
      decodeURIComponent(String(empty.headers['x-model-type'])),
      'type with spaces/ünïcode',
    );
  });

  test('HEAD /models/{id}: the same headers, no body', async () => {
    const res = await httpRequest(port, '/models/1', { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], String(bytes.length));
    assert.equal(res.body.length, 0);
    assert.equal(res.headers['x-model-revision'], '1');
  });

  test('revisions follow updates; a matching If-None-Match gets 304', async () => {
    await backend.updateModel(1, 'plugins.sklearn.SVC', bytes.subarray(0, 10));
    const res = await httpRequest(port, '/models/1');
    assert.equal(res.headers['x-model-revision'], '2');
    assert.equal(res.body.length, 10);
    const etag = String(res.headers.etag);
    const cached = await httpRequest(port, '/models/1', { headers: { 'If-None-Match': etag } });
    assert.equal(cached.status, 304);
    assert.equal(cached.body.length, 0);
    const stale = await httpRequest(port, '/models/1', { headers: { 'If-None-Match': '"abc"' } });
    assert.equal(stale.status, 200);
  });

  test('/models lists metadata', async () => {
    const res = await httpRequest(port, '/models');
    assert.equal(res.status, 200);
    const list = JSON.parse(res.body.toString()) as { instance_id: number; revision: number }[];
    assert.deepEqual(
      list.map((m) => m.instance_id),
      [1, 2],
    );
  });

  test('bad ids, missing models, unknown paths and methods get clear errors', async () => {
    for (const path of [
      '/models/0',
      '/models/-1',
      '/models/abc',
      '/models/1.5',
      '/models/99999999999999999',
    ]) {
      const res = await httpRequest(port, path);
      assert.equal(res.status, 400, path);
      assert.match(JSON.parse(res.body.toString()).error, /invalid model id/);
    }
    const missing = await httpRequest(port, '/models/42');
    assert.equal(missing.status, 404);
    assert.match(missing.body.toString(), /model 42 not found/);
    assert.equal((await httpRequest(port, '/nothing')).status, 404);
    const post = await httpRequest(port, '/models/1', { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD, PUT, DELETE');
    const patch = await httpRequest(port, '/models', { method: 'PATCH' });
    assert.equal(patch.status, 405);
    assert.equal(patch.headers.allow, 'GET, HEAD, POST');
    const health = await httpRequest(port, '/healthz', { method: 'DELETE' });
    assert.equal(health.headers.allow, 'GET, HEAD');
  });

  test('/metrics renders Prometheus text including request counts', async () => {
    const res = await httpRequest(port, '/metrics');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const text = res.body.toString();
    assert.match(text, /^# TYPE aimm_store_http_requests_total counter$/m);
    assert.match(text, /^aimm_store_http_requests_total\{code="200",route="model"\} \d+$/m);
    assert.match(text, /^aimm_store_http_requests_total\{code="400",route="model"\} 5$/m);
  });

  test('a backend failure maps to its status code', async () => {
    const failing = new MemoryBackend();
    failing.getModel = async () => {
      throw new BackendError('unavailable', 'hat unreachable');
    };
    const c = await create(
      { module: 'http', server: { host: '127.0.0.1', port: 0 } },
      contextWith(
        failing,
        () => ({ ready: true }),
        () => true,
      ),
    );
    try {
      const res = await httpRequest(c.address.port, '/models/1');
      assert.equal(res.status, 503);
      assert.deepEqual(JSON.parse(res.body.toString()), {
        error: 'hat unreachable',
        code: 'unavailable',
      });
      failing.getModel = async () => {
        throw new TypeError('bug');
      };
      assert.equal((await httpRequest(c.address.port, '/models/1')).status, 500);
      assert.equal((await httpRequest(c.address.port, '/healthz')).status, 200);
    } finally {
      await c.close();
    }
  });

  test('writes: on by default, off when asked', async () => {
    const off = await create(
      { module: 'http', server: { host: '127.0.0.1', port: 0 }, writes: false },
      context,
    );
    try {
      for (const c of [off]) {
        const res = await httpRequest(c.address.port, '/models?type=t', { method: 'POST' });
        assert.equal(res.status, 405);
        assert.equal(res.headers.allow, 'GET, HEAD');
        assert.equal((await httpRequest(c.address.port, '/models/1')).status, 200);
      }
      const on = await httpRequest(port, '/models?type=t', {
        method: 'POST',
        headers: { 'Content-Length': '0' },
      });
      assert.equal(on.status, 201, 'an explicitly empty model is stored');
    } finally {
      await off.close();
    }
  });

  test('a backend without createModelAt: PUT of a new id is 409, POST allocates', async () => {
    const plain = new MemoryBackend();
    Object.defineProperty(plain, 'createModelAt', { value: undefined });
    const c = await create(
      { module: 'http', server: { host: '127.0.0.1', port: 0 } },
      contextWith(
        plain,
        () => ({ ready: true }),
        () => true,
      ),
    );
    try {
      const res = await httpRequest(c.address.port, '/models/5?type=t', {
        method: 'PUT',
        headers: { 'Content-Length': '0' },
      });
      assert.equal(res.status, 409);
      assert.match(res.body.toString(), /cannot create a model at a chosen id/);
    } finally {
      await c.close();
    }
  });

  test('a standby refuses writes with 503 naming the active instance', async () => {
    const standby = new MemoryBackend();
    standby.createModel = async () => {
      throw new BackendError('not_active', 'this daemon is a standby; writes go to node-a');
    };
    const c = await create(
      { module: 'http', server: { host: '127.0.0.1', port: 0 } },
      {
        ...contextWith(
          standby,
          () => ({ ready: true }),
          () => true,
        ),
        status: () => ({
          ready: true,
          backend: { ready: true },
          redundancy: {
            role: 'standby',
            group: 'g',
            monitor: { address: 'm', connected: true, cid: 2 },
            active: { name: 'node-a', self: false, juggler: null, http: 'http://10.0.0.1:9951' },
            eventServer: null,
          },
        }),
      },
    );
    try {
      const res = await httpRequest(c.address.port, '/models?type=t', {
        method: 'POST',
        headers: { 'Content-Length': '0' },
      });
      assert.equal(res.status, 503);
      assert.deepEqual(JSON.parse(res.body.toString()), {
        error: 'this daemon is a standby; writes go to node-a',
        code: 'not_active',
        active: 'node-a',
        active_http: 'http://10.0.0.1:9951',
      });
    } finally {
      await c.close();
    }
  });

  test('models: false turns /models off', async () => {
    const c = await create(
      { module: 'http', server: { host: '127.0.0.1', port: 0 }, models: false },
      context,
    );
    try {
      assert.equal((await httpRequest(c.address.port, '/models/1')).status, 404);
      assert.equal((await httpRequest(c.address.port, '/readyz')).status, 200);
    } finally {
      await c.close();
    }
  });

  test('close() releases the port and is idempotent', async () => {
    const c = await create({ module: 'http', server: { host: '127.0.0.1', port: 0 } }, context);
    await Promise.all([c.close(), c.close()]);
    await assert.rejects(httpRequest(c.address.port, '/healthz'), /ECONNREFUSED/);
  });
});

describe('HTTP control listen address', () => {
  test('loopback addresses', () => {
    for (const h of [
      '127.0.0.1',
      '127.1.2.3',
      'localhost',
      'LOCALHOST',
      '::1',
      '[::1]',
      '::ffff:127.0.0.1',
    ]) {
      assert.ok(isLoopbackHost(h), h);
    }
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'example.com', '::2', '']) {
      assert.ok(!isLoopbackHost(h), h);
    }
  });

  test('a non-loopback address is refused without authentication, even if allowed', async () => {
    const conf = { module: 'http', server: { host: '0.0.0.0', port: 0 } };
    const issues = checkConf(conf, '$.control[1]');
    assert.equal(issues[0]?.path, '$.control[1].server.host');
    assert.equal(issues[0]?.rule, 'loopback');
    const context = contextWith(
      new MemoryBackend(),
      () => ({ ready: true }),
      () => true,
    );
    await assert.rejects(create(conf, context), /not a loopback address.*no authentication/);
    assert.equal(checkConf({ ...conf, allow_non_loopback: true })[0]?.rule, 'loopback');
    const users = [{ username: 'u', password: createHash('sha256').update('p').digest('hex') }];
    assert.deepEqual(checkConf({ ...conf, users, allow_plaintext: true }), []);
  });

  test('a port in use is a clear error', async () => {
    const context = contextWith(
      new MemoryBackend(),
      () => ({ ready: true }),
      () => true,
    );
    const first = await create({ module: 'http', server: { host: '127.0.0.1', port: 0 } }, context);
    try {
      await assert.rejects(
        create(
          { module: 'http', server: { host: '127.0.0.1', port: first.address.port } },
          context,
        ),
        /http control cannot listen on 127\.0\.0\.1:\d+: the address is already in use \(EADDRINUSE\): another aimm-store daemon is running there \(its HTTP control answered \/healthz\); stop it, or give this control another port$/,
      );
    } finally {
      await first.close();
    }
  });

  test('a port held by another program, and an address not of this machine, say so', async () => {
    const context = contextWith(
      new MemoryBackend(),
      () => ({ ready: true }),
      () => true,
    );
    const other = createNetServer((s) => s.destroy());
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const port = (other.address() as { port: number }).port;
    try {
      await assert.rejects(
        create({ module: 'http', server: { host: '127.0.0.1', port } }, context),
        /in use \(EADDRINUSE\): another aimm-store daemon may be running \(or another program holds the port\); stop it, or give this control another port$/,
      );
    } finally {
      await new Promise<void>((r) => other.close(() => r()));
    }
    await assert.rejects(
      create(
        {
          module: 'http',
          server: { host: '192.0.2.1', port: 0 },
          users: [],
          allow_plaintext: true,
        },
        context,
      ),
      /http control cannot listen on 192\.0\.2\.1:0: '192\.0\.2\.1' is not an address of this machine \(EADDRNOTAVAIL\)/,
    );
  });
});
