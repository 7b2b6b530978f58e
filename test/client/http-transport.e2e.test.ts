/**
 * `put` and `get` over the HTTP control (an http:// address), the daemon and every CLI a child
 * process: a multi-MiB file streamed up and down byte-exact (to a file and to stdout), an earlier
 * revision, compare-and-set, Basic and bearer credentials with roles, and the commands that stay
 * on Juggler refused with a usage error. Plus the client library's HttpModelClient in process.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HttpModelClient, RequestFailedError } from '../../src/client/index.js';
import { hashPassword } from '../../src/controls/juggler/auth.js';
import { DaemonProcess, runCli, tempDir, writeJson } from '../daemon/harness.js';

const { dir, cleanup } = tempDir('aimm-http-transport-');
const T = { timeout: 60_000 };
const tokensFile = join(dir, 'tokens');
let daemon: DaemonProcess;
let base: string;
let readToken = '';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

before(async () => {
  writeFileSync(tokensFile, '');
  const r = await runCli([
    'token',
    'create',
    '--role',
    'read',
    '--name',
    'r',
    '--file',
    tokensFile,
  ]);
  readToken = r.stdout.trim();
  const conf = writeJson(join(dir, 'config.json'), {
    backend: { module: 'aimm-store/backends/sqlite', path: join(dir, 'models.db') },
    control: [
      {
        module: 'aimm-store/controls/http',
        server: { host: '127.0.0.1', port: 0 },
        users: [{ username: 'w', password: hashPassword('pw') }],
        tokens_file: tokensFile,
      },
    ],
  });
  daemon = new DaemonProcess(['serve', '--conf', conf]);
  base = `http://127.0.0.1:${await daemon.port('http')}/`;
  await daemon.waitForMsg('ready');
});

after(async () => {
  await daemon?.stop();
  cleanup();
});

const writer = { AIMM_STORE_PASSWORD: 'pw' };

function cli(args: string[], env: NodeJS.ProcessEnv = writer) {
  const [command, ...rest] = args;
  const user = env === writer ? ['--user', 'w'] : [];
  return runCli([command as string, '--address', base, ...user, ...rest], { cwd: dir, env });
}

describe('put and get over HTTP', () => {
  test('a 5 MiB model streamed up and down byte-exact; an earlier revision; CAS', T, async () => {
    const big = randomBytes(5 * 1024 * 1024 + 17);
    const file = join(dir, 'big.bin');
    writeFileSync(file, big);
    const put = await cli(['put', '--type', 'big.Model', file]);
    assert.equal(put.code, 0, put.stderr);
    const meta = JSON.parse(put.stdout) as Record<string, unknown>;
    assert.deepEqual([meta.size, meta.sha256, meta.revision], [big.length, sha(big), 1]);
    const id = String(meta.instance_id);

    const out = join(dir, 'out.bin');
    const get = await cli(['get', id, '-o', out]);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(sha(readFileSync(out)), sha(big));
    assert.equal(existsSync(`${out}.partial`), false);

    // An update with the right revision, then one with a stale revision: refused, nothing written.
    writeFileSync(file, 'second');
    const ok = await cli([
      'put',
      '--type',
      'big.Model',
      '--id',
      id,
      '--expect-revision',
      '1',
      file,
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const stale = await cli([
      'put',
      '--type',
      'big.Model',
      '--id',
      id,
      '--expect-revision',
      '1',
      file,
    ]);
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /at revision 2, expected 1/);
    const now = await cli(['get', id]);
    assert.equal(now.stdout, 'second');
    const first = await cli(['get', id, '--revision', '1', '-o', out]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(sha(readFileSync(out)), sha(big));
    const m = await cli(['get', id, '--meta']);
    assert.equal((JSON.parse(m.stdout) as { revision: number }).revision, 2);
  });

  test('credentials: a read token reads but may not write; no credentials: 401', T, async () => {
    const file = join(dir, 'small.bin');
    writeFileSync(file, 'x');
    const asReader = { AIMM_STORE_TOKEN: readToken };
    const put = await cli(['put', '--type', 't', file], asReader);
    assert.equal(put.code, 1);
    assert.match(put.stderr, /forbidden|role write/);
    const ls = await runCli(['ls', '--address', base]);
    assert.equal(ls.code, 2);
    assert.match(ls.stderr, /ls talks Juggler/);
    const anonymous = await cli(['get', '1', '--meta'], {});
    assert.equal(anonymous.code, 1);
    assert.match(anonymous.stderr, /requires a login/);
  });

  test('the client library: HttpModelClient put and download, errors with codes', T, async () => {
    const client = new HttpModelClient(base, { username: 'w', password: 'pw' });
    const bytes = randomBytes(300_000);
    const info = await client.put('lib.Model', bytes);
    assert.equal(info.sha256, sha(bytes));
    const chunks: Buffer[] = [];
    const { Writable } = await import('node:stream');
    const got = await client.download(
      info.instanceId,
      new Writable({
        write(chunk: Buffer, _e, next) {
          chunks.push(chunk);
          next();
        },
      }),
    );
    assert.equal(sha(Buffer.concat(chunks)), sha(bytes));
    assert.equal(got.revision, 1);
    await assert.rejects(client.getMeta(999_999), (err: unknown) => {
      assert.ok(err instanceof RequestFailedError);
      assert.equal(err.code, 'not_found');
      return true;
    });
    await client.remove(info.instanceId, { expectedRevision: 1 });
    await assert.rejects(client.getMeta(info.instanceId), RequestFailedError);
  });
});
