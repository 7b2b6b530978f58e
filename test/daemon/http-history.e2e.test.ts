/**
 * Model history over HTTP end to end: the daemon as a child process on the sqlite backend with a
 * `write` and a `read` user. Listing, old revisions byte for byte with their ETag, rollback with a
 * stale `If-Match` (412) and a current one (a new revision), the read user's view (history yes,
 * rollback 403), and /openapi.json without credentials.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hashPassword } from '../../src/controls/juggler/auth.js';
import { DaemonProcess, tempDir, writeJson } from './harness.js';

const T = { timeout: 60_000 };
const { dir, cleanup } = tempDir('aimm-http-history-');
after(cleanup);

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
const WRITER = basic('writer', 'w-pass');
const READER = basic('reader', 'r-pass');
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('HTTP history and rollback (daemon, sqlite)', () => {
  let daemon: DaemonProcess;
  let base: string;
  // Three revisions of different sizes, binary (every byte value).
  const revisions = [randomBytes(1000), Buffer.from([0, 255, 10, 13, 0]), randomBytes(70_000)];
  let id = 0;

  before(async () => {
    const conf = writeJson(join(dir, 'conf.json'), {
      name: 'http-history',
      backend: {
        module: 'aimm-store/backends/sqlite',
        path: join(dir, 'models.db'),
        history: { keep: 10 },
      },
      control: [
        {
          module: 'aimm-store/controls/http',
          server: { host: '127.0.0.1', port: 0 },
          users: [
            { username: 'writer', password: hashPassword('w-pass') },
            { username: 'reader', password: hashPassword('r-pass'), role: 'read' },
          ],
        },
      ],
    });
    daemon = new DaemonProcess(['serve', '--conf', conf]);
    await daemon.waitForMsg('ready');
    base = `http://127.0.0.1:${await daemon.port('http')}`;
    const created = await fetch(`${base}/models?type=a.Model`, {
      method: 'POST',
      headers: { Authorization: WRITER },
      body: revisions[0],
    });
    assert.equal(created.status, 201);
    id = ((await created.json()) as { instance_id: number }).instance_id;
    for (const bytes of revisions.slice(1)) {
      const r = await fetch(`${base}/models/${id}?type=a.Model`, {
        method: 'PUT',
        headers: { Authorization: WRITER },
        body: bytes,
      });
      assert.equal(r.status, 200);
    }
  });
  after(async () => {
    await daemon?.stop();
  });

  test('the revisions are listed oldest first, paged with after and limit', T, async () => {
    const r = await fetch(`${base}/models/${id}/revisions`, { headers: { Authorization: READER } });
    assert.equal(r.status, 200);
    const list = (await r.json()) as Record<string, unknown>[];
    assert.deepEqual(
      list.map((e) => [e.revision, e.size, e.sha256, e.current, e.available, e.deleted, e.origin]),
      revisions.map((b, i) => [i + 1, b.length, sha(b), i === 2, true, false, 'local']),
    );
    const page = await fetch(`${base}/models/${id}/revisions?after=1&limit=1`, {
      headers: { Authorization: READER },
    });
    assert.deepEqual(
      ((await page.json()) as { revision: number }[]).map((e) => e.revision),
      [2],
    );
    const never = await fetch(`${base}/models/${id + 100}/revisions`, {
      headers: { Authorization: READER },
    });
    assert.equal(never.status, 404);
    assert.match(((await never.json()) as { error: string }).error, /never existed/);
  });

  test('an old revision: its exact bytes with the headers of GET /models/{id}', T, async () => {
    for (const [i, bytes] of revisions.entries()) {
      const r = await fetch(`${base}/models/${id}/revisions/${i + 1}`, {
        headers: { Authorization: READER },
      });
      assert.equal(r.status, 200);
      assert.ok(Buffer.from(await r.arrayBuffer()).equals(bytes), `revision ${i + 1}`);
      assert.equal(r.headers.get('etag'), `"${i + 1}-${sha(bytes)}"`);
      assert.equal(r.headers.get('x-model-revision'), String(i + 1));
      assert.equal(r.headers.get('x-model-sha256'), sha(bytes));
      assert.equal(r.headers.get('x-model-type'), 'a.Model');
      assert.equal(r.headers.get('content-type'), 'application/octet-stream');
    }
    const gone = await fetch(`${base}/models/${id}/revisions/9`, {
      headers: { Authorization: READER },
    });
    assert.equal(gone.status, 404);
  });

  test(
    'rollback: 403 for the read user, 412 for a stale If-Match, then a new revision',
    T,
    async () => {
      const current = await fetch(`${base}/models/${id}`, { headers: { Authorization: READER } });
      const etag = current.headers.get('etag') ?? '';
      assert.equal(etag, `"3-${sha(revisions[2] as Buffer)}"`);
      await current.arrayBuffer();

      const forbidden = await fetch(`${base}/models/${id}/rollback?to=1`, {
        method: 'POST',
        headers: { Authorization: READER, 'If-Match': etag },
      });
      assert.equal(forbidden.status, 403);
      assert.match(((await forbidden.json()) as { error: string }).error, /needs the role write/);

      const stale = await fetch(`${base}/models/${id}/rollback?to=1`, {
        method: 'POST',
        headers: { Authorization: WRITER, 'If-Match': `"2-${sha(revisions[1] as Buffer)}"` },
      });
      assert.equal(stale.status, 412);
      const body = (await stale.json()) as { code: string; current: { revision: number } };
      assert.equal(body.code, 'revision_conflict');
      assert.equal(body.current.revision, 3, 'the 412 tells the current revision');
      assert.equal(stale.headers.get('etag'), etag);

      const ok = await fetch(`${base}/models/${id}/rollback?to=1`, {
        method: 'POST',
        headers: { Authorization: WRITER, 'If-Match': etag },
      });
      assert.equal(ok.status, 200);
      const meta = (await ok.json()) as { revision: number; sha256: string; model_type: string };
      assert.deepEqual(
        [meta.revision, meta.sha256, meta.model_type],
        [4, sha(revisions[0] as Buffer), 'a.Model'],
      );
      assert.equal(ok.headers.get('etag'), `"4-${sha(revisions[0] as Buffer)}"`);
      assert.ok(ok.headers.get('x-model-ack'));

      const now = await fetch(`${base}/models/${id}`, { headers: { Authorization: READER } });
      assert.ok(Buffer.from(await now.arrayBuffer()).equals(revisions[0] as Buffer));
      const history = await fetch(`${base}/models/${id}/revisions`, {
        headers: { Authorization: READER },
      });
      assert.deepEqual(
        ((await history.json()) as { revision: number }[]).map((e) => e.revision),
        [1, 2, 3, 4],
      );
      const same = await fetch(`${base}/models/${id}/rollback?to=4`, {
        method: 'POST',
        headers: { Authorization: WRITER },
      });
      assert.equal(same.status, 400, 'rolling back to the current revision is refused');
    },
  );

  test('without credentials: history is 401, /openapi.json is public', T, async () => {
    const r = await fetch(`${base}/models/${id}/revisions`);
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Basic/);
    const doc = await fetch(`${base}/openapi.json`);
    assert.equal(doc.status, 200);
    const parsed = (await doc.json()) as { openapi: string; paths: Record<string, unknown> };
    assert.match(parsed.openapi, /^3\.1\./);
    assert.ok(parsed.paths['/models/{id}/revisions/{n}'] !== undefined);
  });
});
