/**
 * The HTTP write API end to end: the daemon as a child process (sqlite backend, and the event
 * backend against the Hat test peer), real sockets. Round trips byte for byte (a multi-MiB body
 * included), compare-and-set races, creates at chosen ids, uploads cut off mid-body, oversize
 * bodies refused before a byte is read, `Expect: 100-continue`, stalled bodies, Range, bad input —
 * and a write through HTTP reaching a Juggler watcher and `aimm-store ls`.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { firstValueFrom, take, toArray } from 'rxjs';
import { JugglerClient } from '../../src/client/index.js';
import { type HatPeer, startHatPeer } from '../peer/hat-peer.js';
import { DaemonProcess, httpRequest, runCli, tempDir, writeJson } from './harness.js';

const T = { timeout: 60_000 };
const { dir, cleanup } = tempDir('aimm-http-write-');
after(cleanup);

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json: () => Record<string, unknown>;
}

/** One request with an optional body (sent with Content-Length unless `chunked`). */
function call(
  port: number,
  method: string,
  path: string,
  body?: Buffer,
  headers: Record<string, string> = {},
  chunked = false,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const h: Record<string, string> = { ...headers };
    if (body !== undefined && !chunked) h['Content-Length'] = String(body.length);
    const req = request({ host: '127.0.0.1', port, path, method, headers: h }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const b = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: b,
          json: () => JSON.parse(b.toString('utf8')) as Record<string, unknown>,
        });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined && chunked) {
      // Several chunks, so that the body really arrives chunked.
      const step = Math.max(1, Math.ceil(body.length / 4));
      for (let i = 0; i < body.length; i += step) req.write(body.subarray(i, i + step));
    } else if (body !== undefined) req.write(body);
    req.end();
  });
}

/** A raw connection: write, then read until `until` holds on what arrived (or the peer closes). */
class Raw {
  private readonly socket: Socket;
  private text = '';
  private waiters: (() => void)[] = [];
  closed = false;
  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (b: Buffer) => {
      this.text += b.toString('latin1');
      for (const w of this.waiters.splice(0)) w();
    });
    const end = () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    };
    this.socket.on('close', end);
    this.socket.on('error', end);
  }
  write(data: string | Buffer): void {
    this.socket.write(data);
  }
  destroy(): void {
    this.socket.destroy();
  }
  async until(pred: (text: string) => boolean): Promise<string> {
    while (!pred(this.text)) {
      if (this.closed) throw new Error(`connection closed; received: ${this.text}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
    return this.text;
  }
  /** Everything until the server closes the connection. */
  async all(): Promise<string> {
    while (!this.closed) await new Promise<void>((r) => this.waiters.push(r));
    return this.text;
  }
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function modelCount(port: number): Promise<number> {
  return (JSON.parse((await httpRequest(port, '/models')).body.toString()) as unknown[]).length;
}

function sqliteDaemon(name: string, http: Record<string, unknown> = {}): DaemonProcess {
  const conf = writeJson(join(dir, `${name}.json`), {
    name,
    backend: { module: 'aimm-store/backends/sqlite', path: join(dir, `${name}.db`) },
    control: [
      { module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 0 } },
      { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 }, ...http },
    ],
    log: { level: 'info' },
  });
  return new DaemonProcess(['serve', '--conf', conf]);
}

describe('HTTP writes on the sqlite backend', () => {
  let daemon: DaemonProcess;
  let port: number;
  let jugglerPort: number;
  before(async () => {
    daemon = sqliteDaemon('sqlite', { max_model_size: 8 * 1024 * 1024, body_timeout_ms: 300 });
    port = await daemon.port('http');
    jugglerPort = await daemon.port('juggler');
    await daemon.waitForMsg('ready');
  });
  after(() => daemon.stop());

  test(
    'Content-Type kept per revision: GET, HEAD, Range, list, revisions; unknown without one; bad ones 400',
    T,
    async () => {
      const bytes = randomBytes(1000);
      const created = await call(port, 'POST', '/models?type=ct.Model', bytes, {
        'Content-Type': 'Application/ONNX; version="1.2"',
      });
      assert.equal(created.status, 201, created.body.toString());
      const id = created.json().instance_id as number;
      assert.equal(created.json().content_type, 'application/onnx; version="1.2"');
      for (const method of ['GET', 'HEAD']) {
        const got = await call(port, method, `/models/${id}`);
        assert.equal(got.status, 200);
        assert.equal(got.headers['content-type'], 'application/onnx; version="1.2"');
        assert.equal(got.headers['content-security-policy'], 'sandbox');
        assert.equal(got.headers['x-content-type-options'], 'nosniff');
      }
      const part = await call(port, 'GET', `/models/${id}`, undefined, { Range: 'bytes=0-9' });
      assert.equal(part.status, 206);
      assert.equal(part.headers['content-type'], 'application/onnx; version="1.2"');
      const list = JSON.parse((await call(port, 'GET', '/models')).body.toString()) as Record<
        string,
        unknown
      >[];
      assert.equal(
        list.find((m) => m.instance_id === id)?.content_type,
        'application/onnx; version="1.2"',
      );

      // A PUT without a Content-Type: the new revision's type is unknown (the default is served).
      const plain = await call(port, 'PUT', `/models/${id}?type=ct.Model`, bytes);
      assert.equal(plain.status, 200, plain.body.toString());
      assert.equal(plain.json().content_type, undefined);
      const got2 = await call(port, 'GET', `/models/${id}`);
      assert.equal(got2.headers['content-type'], 'application/octet-stream');
      const typed = await call(port, 'PUT', `/models/${id}?type=ct.Model`, bytes, {
        'Content-Type': 'image/png',
      });
      assert.equal(typed.json().content_type, 'image/png');

      // Bad ones: 400 before the body is stored; the model stays at revision 3.
      for (const bad of ['onnx', 'text/html; charset', `a/${'b'.repeat(300)}`, 'a/b, c/d']) {
        const r = await call(port, 'PUT', `/models/${id}?type=ct.Model`, bytes, {
          'Content-Type': bad,
        });
        assert.equal(r.status, 400, `${bad}: ${r.body.toString()}`);
        assert.match(r.json().error as string, /Content-Type/);
      }
      assert.equal((await call(port, 'GET', `/models/${id}`)).headers['x-model-revision'], '3');

      // The history keeps each revision's type; an old revision is served with its own.
      const revs = JSON.parse(
        (await call(port, 'GET', `/models/${id}/revisions`)).body.toString(),
      ) as Record<string, unknown>[];
      assert.deepEqual(
        revs.map((r) => [r.revision, r.content_type]),
        [
          [1, 'application/onnx; version="1.2"'],
          [2, undefined],
          [3, 'image/png'],
        ],
      );
      const r1 = await call(port, 'GET', `/models/${id}/revisions/1`);
      assert.equal(r1.status, 200);
      assert.equal(r1.headers['content-type'], 'application/onnx; version="1.2"');
      assert.ok(r1.body.equals(bytes));
    },
  );

  test(
    'POST, GET, PUT with If-Match, DELETE: byte-exact, seen by a Juggler watcher and ls',
    T,
    async () => {
      const watcher = await JugglerClient.connect(`ws://127.0.0.1:${jugglerPort}/`);
      try {
        const seen = firstValueFrom(watcher.watch().pipe(take(3), toArray()));
        const big = randomBytes(5 * 1024 * 1024 + 17);
        const created = await call(port, 'POST', '/models?type=big.Model', big);
        assert.equal(created.status, 201, created.body.toString());
        const meta = created.json();
        const id = meta.instance_id as number;
        assert.equal(created.headers.location, `/models/${id}`);
        assert.equal(meta.model_type, 'big.Model');
        assert.equal(meta.size, big.length);
        assert.equal(meta.sha256, sha(big));
        assert.equal(created.headers.etag, `"1-${sha(big)}"`);

        const got = await call(port, 'GET', `/models/${id}`);
        assert.equal(got.status, 200);
        assert.ok(got.body.equals(big), 'the bytes come back exactly');
        const etag = String(got.headers.etag);

        // The same bytes again: a new revision, so a new ETag; the old one no longer matches.
        const again = await call(port, 'PUT', `/models/${id}?type=big.Model`, big, {
          'If-Match': etag,
        });
        assert.equal(again.status, 200, again.body.toString());
        assert.equal(again.json().revision, 2);
        assert.notEqual(again.headers.etag, etag);
        const stale = await call(port, 'PUT', `/models/${id}?type=big.Model`, Buffer.from('x'), {
          'If-Match': etag,
        });
        assert.equal(stale.status, 412);
        const conflict = stale.json();
        assert.equal(conflict.code, 'revision_conflict');
        assert.equal((conflict.current as Record<string, unknown>).revision, 2);
        assert.equal(stale.headers.etag, again.headers.etag, 'the 412 names the current ETag');

        const cli = await runCli(['ls', '--address', `ws://127.0.0.1:${jugglerPort}/`]);
        assert.equal(cli.code, 0, cli.stderr);
        assert.match(cli.stdout, new RegExp(`"instance_id":${id}\\b`));

        const del = await call(port, 'DELETE', `/models/${id}`, undefined, {
          'If-Match': String(again.headers.etag),
        });
        assert.equal(del.status, 200, del.body.toString());
        assert.deepEqual(del.json(), {
          instance_id: id,
          model_type: 'big.Model',
          revision: 3,
          deleted: true,
        });
        assert.equal((await call(port, 'GET', `/models/${id}`)).status, 404);
        const reuse = await call(port, 'PUT', `/models/${id}?type=t`, Buffer.from('x'));
        assert.equal(reuse.status, 409, 'a deleted id is never reused');
        assert.match(reuse.json().error as string, /deleted.*never reused/);

        const changes = await seen;
        assert.deepEqual(
          changes.map((c) => [c.change, c.instanceId, c.revision]),
          [
            ['created', id, 1],
            ['updated', id, 2],
            ['deleted', id, 3],
          ],
        );
      } finally {
        await watcher.close();
      }
    },
  );

  test(
    'compare-and-set race: of two writers with the same If-Match exactly one wins',
    T,
    async () => {
      const base = await call(port, 'POST', '/models?type=t', Buffer.from('base'));
      const id = base.json().instance_id as number;
      const etag = String(base.headers.etag);
      const results = await Promise.all(
        [0, 1, 2, 3].map((i) =>
          call(port, 'PUT', `/models/${id}?type=t`, randomBytes(64 * 1024 + i), {
            'If-Match': etag,
          }),
        ),
      );
      const statuses = results.map((r) => r.status).sort();
      assert.deepEqual(statuses, [200, 412, 412, 412]);
      const winner = results.find((r) => r.status === 200);
      const got = await call(port, 'GET', `/models/${id}`);
      assert.equal(got.headers.etag, winner?.headers.etag);
      assert.equal(got.headers['x-model-revision'], '2');
    },
  );

  test('PUT at a chosen id: create-or-update; If-None-Match: * creates only once', T, async () => {
    const id = 1000;
    const first = await call(port, 'PUT', `/models/${id}`, Buffer.from('one'), {
      'X-Model-Type': encodeURIComponent('päth/Type X'),
      'If-None-Match': '*',
    });
    assert.equal(first.status, 201, first.body.toString());
    assert.equal(first.headers.location, `/models/${id}`);
    assert.equal(first.json().model_type, 'päth/Type X');
    const second = await call(port, 'PUT', `/models/${id}?type=t`, Buffer.from('two'), {
      'If-None-Match': '*',
    });
    assert.equal(second.status, 412);
    const update = await call(port, 'PUT', `/models/${id}?type=t`, Buffer.from('two'));
    assert.equal(update.status, 200);
    assert.equal(update.json().revision, 2);
    const fresh = await call(port, 'PUT', `/models/${id + 1}?type=t`, Buffer.from('new'), {}, true);
    assert.equal(fresh.status, 201, 'an unconditional PUT of a new id creates (chunked body)');
    const next = await call(port, 'POST', '/models?type=t', Buffer.from('after'));
    assert.ok((next.json().instance_id as number) > id + 1, 'allocation continues past it');
    const missing = await call(port, 'PUT', '/models/5000?type=t', Buffer.from('x'), {
      'If-Match': '*',
    });
    assert.equal(missing.status, 412, 'If-Match on a missing model');
    assert.equal((await call(port, 'GET', '/models/5000')).status, 404);
  });

  test('an upload cut off mid-body stores nothing; the daemon keeps serving', T, async () => {
    const before = await modelCount(port);
    const raw = new Raw(port);
    // 100-continue tells when the server reads the body: cut it off in the middle of that.
    raw.write(
      'POST /models?type=cut HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1048576\r\n\r\n',
    );
    await raw.until((t) => t.includes('100 Continue'));
    raw.write('a'.repeat(100_000));
    raw.destroy();
    await daemon.waitFor((l) => l.msg === 'upload cut off; nothing stored');
    assert.equal(await modelCount(port), before);
    assert.equal((await httpRequest(port, '/healthz')).status, 200);
    const ok = await call(port, 'POST', '/models?type=t', Buffer.from('still works'));
    assert.equal(ok.status, 201);
  });

  test(
    'oversize: 413 before a byte of the body is read, with and without 100-continue',
    T,
    async () => {
      const before = await modelCount(port);
      // Headers only: if the server waited for the body, no answer would come.
      const raw = new Raw(port);
      raw.write('PUT /models/77?type=t HTTP/1.1\r\nHost: x\r\nContent-Length: 9000000\r\n\r\n');
      const text = await raw.all();
      assert.match(text, /^HTTP\/1\.1 413 /);
      assert.match(text, /\r\nConnection: close\r\n/i);
      assert.match(text, /exceeds the limit of 8388608 bytes/);

      const expect = new Raw(port);
      expect.write(
        'POST /models?type=t HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 9000000\r\n\r\n',
      );
      const refused = await expect.all();
      assert.match(refused, /^HTTP\/1\.1 413 /, 'no 100 Continue first');
      const chunked = await call(port, 'POST', '/models?type=t', randomBytes(9_000_000), {}, true);
      assert.equal(chunked.status, 413, 'a chunked body is cut at the limit');
      assert.equal(await modelCount(port), before);
    },
  );

  test('Expect: 100-continue: the body is sent after 100 and stored', T, async () => {
    const raw = new Raw(port);
    raw.write(
      'POST /models?type=cont HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n',
    );
    await raw.until((t) => t.includes('100 Continue\r\n\r\n'));
    raw.write('hello');
    const text = await raw.all();
    assert.match(text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 201 /);
    const id = /"instance_id":(\d+)/.exec(text)?.[1];
    assert.equal((await call(port, 'GET', `/models/${id}`)).body.toString(), 'hello');
  });

  test('a stalled body is cut off with 408 (body_timeout_ms); nothing stored', T, async () => {
    const before = await modelCount(port);
    const raw = new Raw(port);
    raw.write(
      'POST /models?type=slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789',
    );
    const text = await raw.all();
    assert.match(text, /^HTTP\/1\.1 408 /);
    assert.match(text, /no body bytes for 300 ms/);
    assert.equal(await modelCount(port), before);
  });

  test('Range: one range 206, unsatisfiable 416, several ranges 200, If-Range', T, async () => {
    const bytes = randomBytes(1000);
    const created = await call(port, 'POST', '/models?type=r', bytes);
    const id = created.json().instance_id as number;
    const etag = String(created.headers.etag);
    const part = await call(port, 'GET', `/models/${id}`, undefined, { Range: 'bytes=10-19' });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-range'], 'bytes 10-19/1000');
    assert.ok(part.body.equals(bytes.subarray(10, 20)));
    const tail = await call(port, 'GET', `/models/${id}`, undefined, { Range: 'bytes=-5' });
    assert.ok(tail.body.equals(bytes.subarray(995)));
    const open = await call(port, 'GET', `/models/${id}`, undefined, { Range: 'bytes=990-' });
    assert.equal(open.headers['content-range'], 'bytes 990-999/1000');
    const beyond = await call(port, 'GET', `/models/${id}`, undefined, { Range: 'bytes=1000-' });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers['content-range'], 'bytes */1000');
    const multi = await call(port, 'GET', `/models/${id}`, undefined, { Range: 'bytes=0-1,5-6' });
    assert.equal(multi.status, 200);
    assert.equal(multi.body.length, 1000);
    const matching = await call(port, 'GET', `/models/${id}`, undefined, {
      Range: 'bytes=0-0',
      'If-Range': etag,
    });
    assert.equal(matching.status, 206);
    const changed = await call(port, 'GET', `/models/${id}`, undefined, {
      Range: 'bytes=0-0',
      'If-Range': '"1-0000000000000000000000000000000000000000000000000000000000000000"',
    });
    assert.equal(changed.status, 200, 'If-Range with another ETag: the whole model');
    const head = await call(port, 'HEAD', `/models/${id}`, undefined, { Range: 'bytes=0-9' });
    assert.equal(head.status, 206);
    assert.equal(head.body.length, 0);
    const cached = await call(port, 'GET', `/models/${id}`, undefined, {
      Range: 'bytes=0-9',
      'If-None-Match': etag,
    });
    assert.equal(cached.status, 304, 'If-None-Match wins over Range');
    // Read from the file without the whole model (getModelRange): byte-exact at odd offsets.
    const big = randomBytes(3 * 1024 * 1024 + 17);
    const bigId = (await call(port, 'POST', '/models?type=r', big)).json().instance_id as number;
    for (const [a, b] of [
      [0, 0],
      [4095, 4096],
      [1_000_003, 2_500_000],
      [big.length - 1, big.length - 1],
    ] as const) {
      const r = await call(port, 'GET', `/models/${bigId}`, undefined, {
        Range: `bytes=${a}-${b}`,
      });
      assert.equal(r.status, 206);
      assert.equal(r.headers['content-range'], `bytes ${a}-${b}/${big.length}`);
      assert.ok(r.body.equals(big.subarray(a, b + 1)), `bytes ${a}-${b}`);
    }
  });

  test('bad input: a clear status and JSON body each, nothing stored', T, async () => {
    const before = await modelCount(port);
    const body = Buffer.from('x');
    const cases: [string, string, Record<string, string>, number, RegExp][] = [
      ['PUT', '/models/0?type=t', {}, 400, /invalid model id/],
      ['PUT', '/models/abc?type=t', {}, 400, /invalid model id/],
      ['PUT', '/models/1/../2?type=t', {}, 400, /invalid model id/],
      ['PUT', '/models/%2e%2e%2f1?type=t', {}, 400, /invalid model id/],
      ['DELETE', '/models/99999999999999999', {}, 400, /invalid model id/],
      ['POST', '/models', {}, 400, /model type is required/],
      ['POST', '/models?type=', {}, 400, /must not be empty/],
      ['POST', `/models?type=${'a'.repeat(1025)}`, {}, 400, /longer than 1024/],
      ['POST', '/models?type=a&type=b', {}, 400, /once/],
      ['POST', '/models?type=a', { 'X-Model-Type': 'b' }, 400, /differ/],
      ['POST', '/models', { 'X-Model-Type': '%E0%A4%A' }, 400, /percent-encoded/],
      ['PUT', '/models/3?type=t', { 'If-Match': '"1-a", "2-b"' }, 400, /exactly one ETag/],
      ['PUT', '/models/3?type=t', { 'If-None-Match': '"1-a"' }, 400, /supports only \*/],
      ['PUT', '/models/3?type=t', { 'If-Match': '*', 'If-None-Match': '*' }, 400, /not both/],
      ['PUT', '/models/3?type=t', { 'If-Match': 'W/"1-a"' }, 412, /not an ETag/],
      ['PATCH', '/models/3', {}, 405, /method not allowed/],
      ['POST', '/models/..%2f..%2fetc', {}, 405, /method not allowed/],
      ['PUT', '/models', {}, 405, /method not allowed/],
      ['PUT', '/model/3', {}, 404, /not found/],
    ];
    for (const [method, path, headers, status, error] of cases) {
      const res = await call(port, method, path, body, headers);
      assert.equal(res.status, status, `${method} ${path}: ${res.body.toString()}`);
      assert.match(res.json().error as string, error, `${method} ${path}`);
    }
    // Neither Content-Length nor chunked: 411 (an empty model needs Content-Length: 0).
    const noBody = new Raw(port);
    noBody.write('POST /models?type=t HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(await noBody.all(), /^HTTP\/1\.1 411 [\s\S]*Content-Length/);
    // A malformed request line or header: Node's parser answers 400 and closes.
    const raw = new Raw(port);
    raw.write('PUT /models/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n');
    assert.match(await raw.all(), /^HTTP\/1\.1 400 /);
    const lengths = new Raw(port);
    lengths.write(
      'PUT /models/1?type=t HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabc',
    );
    assert.match(await lengths.all(), /^HTTP\/1\.1 400 /);
    assert.equal(await modelCount(port), before);
    assert.equal((await httpRequest(port, '/healthz')).status, 200);
  });
});

describe('HTTP writes on the event backend', () => {
  let peer: HatPeer;
  let daemon: DaemonProcess;
  let port: number;
  before(async () => {
    peer = await startHatPeer({});
    const conf = writeJson(join(dir, 'event.json'), {
      name: 'evt',
      backend: {
        module: 'aimm-store/backends/event',
        model_prefix: ['aimm', 'model'],
        reconnect: { min_delay_ms: 20, max_delay_ms: 100 },
      },
      hat: { eventer_server: { host: peer.host, port: peer.port } },
      control: [{ module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } }],
      log: { level: 'info' },
    });
    daemon = new DaemonProcess(['serve', '--conf', conf]);
    port = await daemon.port('http');
    await daemon.waitForMsg('ready');
  });
  after(async () => {
    await daemon.stop();
    await peer.close();
  });

  test(
    "Content-Type is not kept (AIMM's event payload has no room): GET serves the default",
    T,
    async () => {
      const created = await call(port, 'POST', '/models?type=e.Typed', Buffer.from('t'), {
        'Content-Type': 'text/plain',
      });
      assert.equal(created.status, 201, created.body.toString());
      assert.equal(created.json().content_type, undefined);
      const id = created.json().instance_id as number;
      const got = await call(port, 'GET', `/models/${id}`);
      assert.equal(got.headers['content-type'], 'application/octet-stream');
      const bad = await call(port, 'POST', '/models?type=e.Typed', Buffer.from('t'), {
        'Content-Type': 'nonsense',
      });
      assert.equal(bad.status, 400, 'checked whatever the backend keeps');
    },
  );

  test(
    'POST, PUT at a chosen id above every id known, GET byte-exact; ids below refused 409',
    T,
    async () => {
      const bytes = randomBytes(2 * 1024 * 1024);
      const created = await call(port, 'POST', '/models?type=e.Model', bytes);
      assert.equal(created.status, 201, created.body.toString());
      const id = created.json().instance_id as number;
      assert.ok((await call(port, 'GET', `/models/${id}`)).body.equals(bytes));
      assert.ok(
        peer.events.some((e) => e.type.join('/') === `aimm/model/${id}`),
        'an AIMM event in Hat',
      );
      const at = await call(port, 'PUT', `/models/${id + 5}?type=e.Model`, Buffer.from('chosen'), {
        'If-None-Match': '*',
      });
      assert.equal(at.status, 201, at.body.toString());
      const next = await call(port, 'POST', '/models?type=e.Model', Buffer.from('n'));
      assert.equal(next.json().instance_id, id + 6, 'the allocator moved past the chosen id');
      const below = await call(port, 'PUT', `/models/${id + 2}?type=e.Model`, Buffer.from('x'));
      assert.equal(below.status, 409);
      assert.match(below.json().error as string, /cannot tell which of them were ever used/);
      const updated = await call(port, 'PUT', `/models/${id}?type=e.Model`, Buffer.from('u'), {
        'If-Match': String(created.headers.etag),
      });
      assert.equal(updated.status, 200);
      assert.equal(updated.json().revision, 2);
    },
  );
});
