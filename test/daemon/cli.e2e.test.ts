/**
 * The CLI client commands against a real `serve` (sqlite backend, Juggler, HTTP), every process a
 * child: put/get/ls/rm round trips, and `watch` seeing the changes other CLI processes make.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, httpRequest, MAIN, runCli, tempDir, writeJson } from './harness.js';

const { dir, cleanup } = tempDir('aimm-cli-');
const T = { timeout: 60_000 };

let daemon: DaemonProcess;
let address: string;
let http: number;

before(async () => {
  const conf = writeJson(join(dir, 'config.json'), {
    name: 'cli',
    backend: { module: 'aimm-store/backends/sqlite', path: join(dir, 'data', 'models.db') },
    control: [
      { module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 0 } },
      { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } },
    ],
  });
  daemon = new DaemonProcess(['serve', '--conf', conf]);
  address = `ws://127.0.0.1:${await daemon.port('juggler')}/`;
  http = await daemon.port('http');
  await daemon.waitForMsg('ready');
});

after(async () => {
  await daemon?.stop();
  cleanup();
});

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

async function cli(args: string[], input?: Buffer) {
  const [command, ...rest] = args;
  return runCli([command as string, '--address', address, ...rest], { cwd: dir, input });
}

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function jugglerConnections(): Promise<number> {
  const text = (await httpRequest(http, '/metrics')).body.toString();
  return Number(/^aimm_store_juggler_connections (\d+)$/m.exec(text)?.[1] ?? 0);
}

describe('CLI client commands against serve', () => {
  test('put/get/ls/rm round trips; watch sees the changes of other CLI processes', T, async () => {
    // watch, in its own process; it prints changes made after it says `watching` on stderr (once
    // it holds the daemon's state: a change before that is part of the state, not printed).
    const watch: ChildProcess = spawn(process.execPath, [MAIN, 'watch', '--address', address], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let watched = '';
    watch.stdout?.on('data', (b: Buffer) => {
      watched += b.toString();
    });
    let watchErr = '';
    watch.stderr?.on('data', (b: Buffer) => {
      watchErr += b.toString();
    });
    const watchExit = new Promise<number | null>((r) => watch.on('exit', (code) => r(code)));
    while (!watchErr.includes('aimm-store watch: watching')) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(await jugglerConnections(), 1);

    // put from a file, and from stdin
    const a = randomBytes(100_000);
    const fileA = join(dir, 'a.bin');
    writeFileSync(fileA, a);
    const putA = await cli(['put', '--type', 'plugins.sklearn.SVC', fileA]);
    assert.equal(putA.code, 0, putA.stderr);
    const metaA = jsonLines(putA.stdout);
    assert.equal(metaA.length, 1);
    const idA = metaA[0]?.instance_id as number;
    assert.deepEqual(metaA[0], {
      instance_id: idA,
      model_type: 'plugins.sklearn.SVC',
      revision: 1,
      size: a.length,
      sha256: sha256(a),
    });
    const b = Buffer.from('second model, from stdin');
    const putB = await cli(['put', '--type', 'text.Model', '-'], b);
    assert.equal(putB.code, 0, putB.stderr);
    const idB = jsonLines(putB.stdout)[0]?.instance_id as number;
    assert.ok(idB > idA);

    // get: to a file, to stdout, metadata; the HTTP control serves the same bytes
    const out = join(dir, 'out.bin');
    const getA = await cli(['get', String(idA), '-o', out]);
    assert.equal(getA.code, 0, getA.stderr);
    assert.ok(readFileSync(out).equals(a));
    const getB = await runCli(['get', '--address', address, String(idB)], { cwd: dir });
    assert.equal(getB.code, 0, getB.stderr);
    assert.equal(getB.stdout, b.toString());
    const metaB = await cli(['get', String(idB), '--meta']);
    assert.equal(metaB.code, 0, metaB.stderr);
    assert.equal(jsonLines(metaB.stdout)[0]?.revision, 1);
    assert.ok((await httpRequest(http, `/models/${idA}`)).body.equals(a));

    // update with and without compare-and-set
    const a2 = randomBytes(10);
    writeFileSync(fileA, a2);
    const update = await cli(['put', '--type', 'plugins.sklearn.SVC', '--id', String(idA), fileA]);
    assert.equal(update.code, 0, update.stderr);
    assert.equal(jsonLines(update.stdout)[0]?.revision, 2);
    const conflict = await cli([
      'put',
      '--type',
      'plugins.sklearn.SVC',
      '--id',
      String(idA),
      '--expect-revision',
      '1',
      fileA,
    ]);
    assert.equal(conflict.code, 1, 'a revision conflict fails');
    assert.notEqual(conflict.stderr, '');

    // ls, rm
    const ls = await cli(['ls']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(
      jsonLines(ls.stdout).map((m) => [m.instance_id, m.revision]),
      [
        [idA, 2],
        [idB, 1],
      ],
    );
    const rm = await cli(['rm', String(idA)]);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal((await cli(['get', String(idA), '--meta'])).code, 1, 'gone');
    assert.deepEqual(
      jsonLines((await cli(['ls'])).stdout).map((m) => m.instance_id),
      [idB],
    );

    // watch saw all four changes, in order, as they happened elsewhere
    const expected = [
      ['created', idA, 1],
      ['created', idB, 1],
      ['updated', idA, 2],
      ['deleted', idA, 3],
    ];
    while (jsonLines(watched).length < expected.length) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const changes = jsonLines(watched);
    assert.deepEqual(
      changes.map((c) => [c.change, c.instance_id, c.revision]),
      expected,
    );
    for (const c of changes) assert.equal(c.origin, 'local');
    watch.kill('SIGINT');
    assert.equal(await watchExit, 0);
  });

  test('usage errors exit 2; an unreachable daemon exits 1', T, async () => {
    assert.equal((await cli(['put', '--type'])).code, 2);
    assert.equal((await cli(['get'])).code, 2);
    const down = await runCli(['ls', '--address', 'ws://127.0.0.1:1/'], { cwd: dir });
    assert.equal(down.code, 1);
    assert.notEqual(down.stderr, '');
  });
});
