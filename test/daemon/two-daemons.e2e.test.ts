/**
 * Two daemons (child processes) with the event backend on one model prefix of one Hat (the test
 * peer): each sees the other's writes, as `remote` changes on `watch`, with ids allocated past
 * everything either has written, and compare-and-set across them.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type HatPeer, startHatPeer } from '../peer/hat-peer.js';
import { DaemonProcess, MAIN, ROOT, runCli, tempDir, until, writeJson } from './harness.js';

const T = { timeout: 60_000 };
const { dir, cleanup } = tempDir('aimm-two-');

let peer: HatPeer;
let watch: ChildProcess | undefined;
before(async () => {
  peer = await startHatPeer({ flushDelayMs: 10 });
});
after(async () => {
  watch?.kill('SIGKILL');
  await peer.close();
  cleanup();
});

function config(name: string, snapshot: boolean): string {
  return writeJson(join(dir, `${name}.json`), {
    name,
    backend: {
      module: 'aimm-store/backends/event',
      model_prefix: ['shared', 'models'],
      ...(snapshot ? { snapshot: { path: join(dir, `${name}-snapshot.db`) } } : {}),
      reconnect: { min_delay_ms: 20, max_delay_ms: 100 },
    },
    hat: { eventer_server: { host: peer.host, port: peer.port } },
    control: [{ module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 0 } }],
    log: { level: 'info' },
  });
}

interface Meta {
  instance_id: number;
  model_type: string;
  revision: number;
}

async function cli(address: string, args: string[], input?: string): Promise<string> {
  const r = await runCli([...args, '--address', address], { input });
  assert.equal(r.code, 0, `aimm-store ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function ls(address: string): Promise<Meta[]> {
  return (await cli(address, ['ls']))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Meta);
}

describe('two daemons on one prefix', () => {
  test('each sees the other’s writes as remote changes; ids never collide', T, async () => {
    const a = new DaemonProcess(['serve', '--conf', config('a', true)]);
    const b = new DaemonProcess(['serve', '--conf', config('b', false)]);
    try {
      const addrA = `ws://127.0.0.1:${await a.port('juggler')}/`;
      const addrB = `ws://127.0.0.1:${await b.port('juggler')}/`;
      await Promise.all([a.waitForMsg('ready'), b.waitForMsg('ready')]);

      // watch on B, in its own process
      let watched = '';
      watch = spawn(process.execPath, [MAIN, 'watch', '--address', addrB], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let watchErr = '';
      watch.stdout?.on('data', (d: Buffer) => {
        watched += d.toString();
      });
      watch.stderr?.on('data', (d: Buffer) => {
        watchErr += d.toString();
      });
      await until('watch to connect', async () => watchErr.includes('watching'));

      // A creates; B sees it.
      const m1 = JSON.parse(await cli(addrA, ['put', '--type', 't.A'], 'from a')) as Meta;
      assert.equal(m1.instance_id, 1);
      await until('B to see model 1', async () =>
        (await ls(addrB)).some((m) => m.instance_id === 1),
      );
      assert.equal(await cli(addrB, ['get', '1']), 'from a');

      // B creates: its id comes after A's.
      const m2 = JSON.parse(await cli(addrB, ['put', '--type', 't.B'], 'from b')) as Meta;
      assert.equal(m2.instance_id, 2, 'max(known)+1 across writers');
      await until('A to see model 2', async () =>
        (await ls(addrA)).some((m) => m.instance_id === 2),
      );

      // A updates B's model with compare-and-set; B sees revision 2.
      const up = JSON.parse(
        await cli(addrA, ['put', '--type', 't.B', '--id', '2', '--expect-revision', '1'], 'again'),
      ) as Meta;
      assert.equal(up.revision, 2);
      await until('B to see revision 2', async () =>
        (await ls(addrB)).some((m) => m.instance_id === 2 && m.revision === 2),
      );
      // A stale compare-and-set on B fails cleanly and writes nothing.
      const stale = await runCli(
        ['put', '--type', 't.B', '--id', '2', '--expect-revision', '1', '--address', addrB],
        { input: 'stale' },
      );
      assert.equal(stale.code, 1, stale.stderr);
      assert.match(stale.stderr, /revision 2, expected 1/);
      assert.equal(await cli(addrA, ['get', '2']), 'again');

      // A deletes model 1; B sees it gone.
      await cli(addrA, ['rm', '1']);
      await until('B to see model 1 deleted', async () =>
        (await ls(addrB)).every((m) => m.instance_id !== 1),
      );

      // B's watch: A's changes arrive as remote, B's own as local, in order.
      const expected = [
        { change: 'created', instance_id: 1, revision: 1, origin: 'remote' },
        { change: 'created', instance_id: 2, revision: 1, origin: 'local' },
        { change: 'updated', instance_id: 2, revision: 2, origin: 'remote' },
        { change: 'deleted', instance_id: 1, revision: 2, origin: 'remote' },
      ];
      await until(
        'watch to print every change',
        async () => watched.split('\n').filter((l) => l !== '').length >= expected.length,
      );
      const got = watched
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .map(({ change, instance_id, revision, origin }) => ({
          change,
          instance_id,
          revision,
          origin,
        }));
      assert.deepEqual(got, expected);
    } finally {
      watch?.kill('SIGTERM');
      await Promise.all([a.stop(), b.stop()]);
    }
    assert.equal((await a.exited).code, 0, a.stderr);
    assert.equal((await b.exited).code, 0, b.stderr);
  });
});
