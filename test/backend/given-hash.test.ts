/**
 * `CreateOptions.sha256`: the HTTP control hashes a large or chunked upload while it arrives and
 * hands the hash on; the sqlite backend then stores it instead of hashing the bytes again (a
 * malformed value is ignored and the bytes hashed).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { create, type SqliteBackend } from '../../src/backends/sqlite.js';
import { type Body, declaredLength, readBody } from '../../src/controls/http/body.js';
import { openBackend, peerContext, startPeer } from '../event-backend/support.js';
import { tempDir, testContext } from './support/context.js';

const hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('a hash given with the bytes', () => {
  it('the sqlite backend stores a well-formed given hash and hashes the bytes otherwise', async () => {
    const { dir, remove } = tempDir();
    let backend: SqliteBackend | null = null;
    try {
      backend = await create(
        { module: 'aimm-store/backends/sqlite', path: join(dir, 'm.db') },
        testContext(),
      );
      const bytes = randomBytes(5000);
      // A different (but well-formed) hash shows that the backend did not hash again.
      const other = hex(Buffer.from('not these bytes'));
      const a = await backend.createModel('t', bytes, { sha256: other });
      assert.equal(a.meta.sha256, other);
      assert.equal((await backend.getModel(a.meta.instanceId))?.sha256, other);
      const b = await backend.updateModel(a.meta.instanceId, 't', bytes, { sha256: hex(bytes) });
      assert.equal(b.meta.sha256, hex(bytes));
      for (const malformed of ['', 'XYZ', other.toUpperCase(), `${other}0`]) {
        const c = await backend.createModel('t', bytes, { sha256: malformed });
        assert.equal(c.meta.sha256, hex(bytes), `given ${JSON.stringify(malformed)}`);
      }
      const d = await backend.createModelAt?.(1000, 't', bytes, { sha256: other });
      assert.equal(d?.meta.sha256, other);
    } finally {
      await backend?.close();
      remove();
    }
  });

  it('the event backend uses a well-formed given hash and hashes the bytes otherwise', async () => {
    const peer = await startPeer();
    const backend = await openBackend(peerContext(peer));
    try {
      const bytes = randomBytes(3000);
      const other = hex(Buffer.from('not these bytes'));
      const a = await backend.createModel('t', bytes, { sha256: other });
      assert.equal(a.meta.sha256, other);
      const b = await backend.updateModel(a.meta.instanceId, 't', bytes, { sha256: 'XYZ' });
      assert.equal(b.meta.sha256, hex(bytes));
      const c = await backend.createModel('t', bytes, { sha256: hex(bytes) });
      assert.equal(c.meta.sha256, hex(bytes));
    } finally {
      await backend.close();
      await peer.close();
    }
  });

  it('readBody hashes large and chunked bodies as they arrive, not small ones', async () => {
    const bodies: Body[] = [];
    const server = createServer((req, res) => {
      const length = declaredLength(req, 1 << 30);
      readBody(req, res, length, { maxBytes: 1 << 30, idleTimeoutMs: 5000 }).then(
        (body) => {
          bodies.push(body);
          res.end('ok');
        },
        (err: Error) => {
          res.statusCode = 500;
          res.end(err.message);
        },
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const send = (parts: Buffer[], chunked: boolean) =>
      new Promise<void>((resolve, reject) => {
        const total = parts.reduce((n, p) => n + p.length, 0);
        const req = request(
          {
            host: '127.0.0.1',
            port,
            method: 'PUT',
            path: '/',
            headers: chunked ? { 'Transfer-Encoding': 'chunked' } : { 'Content-Length': total },
          },
          (res) => {
            res.resume();
            res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error('500'))));
          },
        );
        req.on('error', reject);
        // Several writes, some in separate turns, so the body arrives in several chunks.
        (async () => {
          for (const p of parts) {
            req.write(p);
            await new Promise((r) => setTimeout(r, 5));
          }
          req.end();
        })();
      });
    try {
      const small = randomBytes(1000);
      const large = [randomBytes(100_000), randomBytes(70_000), randomBytes(123_457)];
      const chunked = [randomBytes(10), randomBytes(20_000)];
      await send([small], false);
      await send(large, false);
      await send(chunked, true);
      assert.equal(bodies.length, 3);
      const [s, l, c] = bodies as [Body, Body, Body];
      assert.deepEqual(s.bytes, small);
      assert.equal(s.sha256, undefined);
      const all = Buffer.concat(large);
      assert.deepEqual(l.bytes, all);
      assert.equal(l.sha256, hex(all));
      assert.deepEqual(c.bytes, Buffer.concat(chunked));
      assert.equal(c.sha256, hex(Buffer.concat(chunked)));
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
