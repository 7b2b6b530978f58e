/**
 * End to end: the `aimm-store` client commands as child processes (`node dist/src/cli/main.js`)
 * against the Juggler control hosted in this process. Round trips of put/get/ls/rm, compare-and-set,
 * watch seeing another CLI's changes (and another writer's), usage errors (exit 2) and failures
 * (exit 1).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ADMIN, type Harness, startJuggler, until } from '../juggler/support/harness.js';
import { RemoteCapableBackend } from '../juggler/support/test-backends.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Result {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

function cli(
  args: string[],
  options: { input?: Buffer; env?: Record<string, string> } = {},
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...options.env };
    if (options.env?.AIMM_STORE_PASSWORD === undefined) delete env.AIMM_STORE_PASSWORD;
    const child = spawn(process.execPath, [MAIN, ...args], { env, stdio: 'pipe' });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }),
    );
    child.stdin.end(options.input ?? Buffer.alloc(0));
  });
}

function lines(r: Result): Record<string, unknown>[] {
  return r.stdout
    .toString()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
}

/** A running `watch`, with its output lines as they come. */
class Watch {
  readonly lines: Record<string, unknown>[] = [];
  stderr = '';
  code: number | null | undefined = undefined;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  constructor(args: string[], env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, [MAIN, 'watch', ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buf = '';
    this.child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      for (const p of parts) if (p !== '') this.lines.push(JSON.parse(p));
    });
    this.child.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.exited = new Promise((resolve) =>
      this.child.on('close', (code) => {
        this.code = code;
        resolve();
      }),
    );
  }
  ready(): Promise<void> {
    return until(
      () => this.stderr.includes('watching') || this.code !== undefined,
      'watch to start',
      10_000,
    );
  }
}

describe('aimm-store client commands', () => {
  let h: Harness;
  let dir: string;
  let addr: string[];
  const backend = new RemoteCapableBackend();
  const env = { AIMM_STORE_PASSWORD: 'admin' };
  before(async () => {
    h = await startJuggler({ users: [ADMIN] }, backend);
    dir = mkdtempSync(join(tmpdir(), 'aimm-cli-'));
    addr = ['--address', h.url, '--user', 'admin'];
  });
  after(async () => {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('put (file, stdin), get (stdout, -o), get --meta, ls, rm', async () => {
    const file = join(dir, 'model.bin');
    const bytes = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
    writeFileSync(file, bytes);
    const put = await cli(['put', '--type', 'plugins.sklearn.SVC', ...addr, file], { env });
    assert.equal(put.code, 0, put.stderr);
    const [meta] = lines(put);
    assert.deepEqual(Object.keys(meta ?? {}), [
      'instance_id',
      'model_type',
      'revision',
      'size',
      'sha256',
    ]);
    assert.deepEqual(meta, {
      instance_id: meta?.instance_id,
      model_type: 'plugins.sklearn.SVC',
      revision: 1,
      size: 5000,
      sha256: sha(bytes),
    });
    const id = String(meta?.instance_id);

    const fromStdin = await cli(['put', '--type', 't', ...addr, '-'], {
      env,
      input: Buffer.from('stdin!'),
    });
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    assert.equal(lines(fromStdin)[0]?.size, 6);
    const implicitStdin = await cli(['put', '--type', 't', ...addr], {
      env,
      input: Buffer.from('x'),
    });
    assert.equal(lines(implicitStdin)[0]?.size, 1);

    const got = await cli(['get', id, ...addr], { env });
    assert.equal(got.code, 0, got.stderr);
    assert.ok(got.stdout.equals(bytes));
    const out = join(dir, 'out.bin');
    assert.equal((await cli(['get', id, '-o', out, ...addr], { env })).code, 0);
    assert.ok(readFileSync(out).equals(bytes));
    const m = await cli(['get', id, '--meta', ...addr], { env });
    assert.deepEqual({ ...lines(m)[0], updated: undefined }, { ...meta, updated: undefined });
    assert.match(String(lines(m)[0]?.updated), /^\d{4}-/);

    const ls = await cli(['ls', ...addr], { env });
    assert.equal(ls.code, 0);
    const listed = lines(ls);
    assert.deepEqual(
      listed.map((l) => l.instance_id),
      [...listed.map((l) => l.instance_id as number)].sort((a, b) => a - b),
    );
    assert.ok(listed.some((l) => String(l.instance_id) === id && l.sha256 === sha(bytes)));

    const rm = await cli(['rm', id, ...addr], { env });
    assert.equal(rm.code, 0, rm.stderr);
    assert.deepEqual(lines(rm), [
      { instance_id: Number(id), model_type: 'plugins.sklearn.SVC', revision: 2 },
    ]);
    const gone = await cli(['get', id, ...addr], { env });
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /not found/);
  });

  test('put --id with --expect-revision: compare-and-set', async () => {
    const first = lines(
      await cli(['put', '--type', 'cas', ...addr], { env, input: Buffer.from('1') }),
    )[0];
    const id = String(first?.instance_id);
    const ok = await cli(['put', '--type', 'cas', '--id', id, '--expect-revision', '1', ...addr], {
      env,
      input: Buffer.from('2'),
    });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(lines(ok)[0]?.revision, 2);
    const stale = await cli(
      ['put', '--type', 'cas', '--id', id, '--expect-revision', '1', ...addr],
      {
        env,
        input: Buffer.from('3'),
      },
    );
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /revision 2, expected 1/);
    const got = await cli(['get', id, ...addr], { env });
    assert.equal(got.stdout.toString(), '2', 'the refused write changed nothing');
    const rmStale = await cli(['rm', id, '--expect-revision', '1', ...addr], { env });
    assert.equal(rmStale.code, 1);
  });

  test('watch prints the changes of another CLI and of another writer, until SIGINT', async () => {
    const w = new Watch(addr, env);
    await w.ready();
    const put = lines(
      await cli(['put', '--type', 'watched', ...addr], { env, input: Buffer.from('a') }),
    )[0];
    const id = put?.instance_id as number;
    await backend.remote(() => backend.updateModel(id, 'watched', Buffer.from('b')));
    await cli(['rm', String(id), ...addr], { env });
    await until(() => w.lines.length >= 3, 'three changes');
    assert.deepEqual(w.lines, [
      { change: 'created', instance_id: id, model_type: 'watched', revision: 1, origin: 'local' },
      { change: 'updated', instance_id: id, model_type: 'watched', revision: 2, origin: 'remote' },
      { change: 'deleted', instance_id: id, model_type: 'watched', revision: 3, origin: 'local' },
    ]);
    w.child.kill('SIGINT');
    await w.exited;
    assert.equal(w.code, 0);
  });

  test('watch over 0.6 framing; exit 1 when the server goes away', async () => {
    const h2 = await startJuggler({});
    const w = new Watch(['--address', h2.url, '--framing', '0.6', '--user', 'x'], {
      AIMM_STORE_PASSWORD: '',
    });
    await w.ready();
    const r = await cli(['put', '--type', 'six', '--address', h2.url, '--framing', '0.6'], {
      input: Buffer.from('6'),
    });
    assert.equal(r.code, 0, r.stderr);
    await until(() => w.lines.length === 1, 'change');
    assert.equal(w.lines[0]?.model_type, 'six');
    await h2.close();
    await w.exited;
    assert.equal(w.code, 1);
    assert.match(w.stderr, /connection closed \(1001/);
  });

  test('usage errors exit 2 with the usage', async () => {
    const cases: [string[], RegExp][] = [
      [['put', ...addr], /--type T is required/],
      [['put', '--type', 't', '--expect-revision', '1', ...addr], /--expect-revision needs --id/],
      [['put', '--type', 't', '--id', '0', ...addr], /--id must be a positive integer/],
      [
        ['put', '--type', 't', '--id', '1', '--expect-revision', '-1', ...addr],
        /--expect-revision/,
      ],
      [['get', ...addr], /ID is required/],
      [['get', 'abc', ...addr], /ID must be a positive integer/],
      [['get', '1', '--meta', '-o', 'x', ...addr], /cannot be combined/],
      [['rm', '1.5', ...addr], /positive integer/],
      [['ls', '--bogus', ...addr], /unknown option --bogus/],
      [['ls', 'extra', ...addr], /unexpected argument 'extra'/],
      [['ls', '--framing', '0.8'], /--framing must be 0.6 or 0.7/],
      [['ls', '--address', 'http://x/'], /ws:\/\/ or wss:\/\//],
      [['ls', '--user', 'admin'], /AIMM_STORE_PASSWORD/],
    ];
    for (const [args, re] of cases) {
      const r = await cli(args, { env: args.includes('--address') ? env : {} });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.match(r.stderr, /usage: aimm-store/);
    }
    const help = await cli(['put', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout.toString(), /usage: aimm-store put --type T/);
  });

  test('failures exit 1: wrong password, nothing listening, unauthorized', async () => {
    const wrong = await cli(['ls', ...addr], { env: { AIMM_STORE_PASSWORD: 'wrong' } });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /login as 'admin' failed/);
    const anon = await cli(['ls', '--address', h.url]);
    assert.equal(anon.code, 1);
    assert.match(anon.stderr, /requires a login: use --user/);
    const anonWatch = await cli(['watch', '--address', h.url]);
    assert.equal(anonWatch.code, 1);
    assert.match(anonWatch.stderr, /requires a login: use --user/);
    const h2 = await startJuggler({});
    const url = h2.url;
    await h2.close();
    const refused = await cli(['ls', '--address', url]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /cannot connect to ws:\/\/127\.0\.0\.1/);
    const missing = await cli(['put', '--type', 't', ...addr, join(dir, 'nope.bin')], { env });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /ENOENT/);
  });

  test('a model of 8 MB through put and get', async () => {
    const bytes = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < bytes.length; i += 4096) bytes[i] = i % 255;
    const file = join(dir, 'big.bin');
    writeFileSync(file, bytes);
    const put = await cli(['put', '--type', 'big', ...addr, file], { env });
    assert.equal(put.code, 0, put.stderr);
    const got = await cli(['get', String(lines(put)[0]?.instance_id), ...addr], { env });
    assert.equal(sha(got.stdout), sha(bytes));
  });
});
