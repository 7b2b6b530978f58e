/**
 * `aimm-store serve` with the real built-ins (sqlite backend, Juggler and HTTP controls) as a child
 * process: the embedded default, and SIGTERM during a write burst losing no acknowledged write.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DaemonProcess, httpRequest, tempDir, writeJson } from './harness.js';
import { Juggler06 } from './juggler06.js';

const { dir, cleanup } = tempDir('aimm-serve-');
after(cleanup);

const T = { timeout: 60_000 };

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: '127.0.0.1', port }, () => s.close(() => resolve(true)));
  });
}

function sqliteConfig(path: string, options: Record<string, unknown> = {}): string {
  return writeJson(join(dir, `sqlite-${Math.random().toString(36).slice(2)}.json`), {
    name: 'burst',
    backend: { module: 'aimm-store/backends/sqlite', path, ...options },
    control: [
      { module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 0 } },
      { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } },
    ],
    shutdown_timeout: 20,
  });
}

describe('serve', () => {
  test(
    'the embedded default: sqlite under ./data, Juggler on :9950, HTTP on :9951',
    T,
    async (t) => {
      for (const port of [9950, 9951]) {
        if (!(await portFree(port))) {
          t.skip(`127.0.0.1:${port} is taken by another process; the embedded default needs it`);
          return;
        }
      }
      const cwd = tempDir('aimm-default-');
      const daemon = new DaemonProcess(['serve'], { cwd: cwd.dir });
      try {
        await daemon.waitForMsg('ready');
        const listening = daemon.lines.filter((l) => l.msg === 'listening');
        assert.deepEqual(listening.map((l) => [l.control, l.host, l.port]).sort(), [
          ['http', '127.0.0.1', 9951],
          ['juggler', '127.0.0.1', 9950],
        ]);
        assert.equal(daemon.lines[0]?.config, '<embedded default>');
        assert.ok(existsSync(join(cwd.dir, 'data', 'aimm-store.db')), 'data/aimm-store.db created');
        assert.equal((await httpRequest(9951, '/readyz')).status, 200);

        const client = await Juggler06.connect(9950);
        const added = await client.request('add_instance', {
          model_type: 'text.Model',
          instance_b64: Buffer.from('hello').toString('base64'),
        });
        client.close();
        assert.equal(added.success, true, JSON.stringify(added));
        const id = (added.data as { instance_id: number }).instance_id;
        const model = await httpRequest(9951, `/models/${id}`);
        assert.equal(model.body.toString(), 'hello');
        assert.equal(model.headers['x-model-type'], 'text.Model');
      } finally {
        await daemon.stop();
        cwd.cleanup();
      }
      assert.equal((await daemon.exited).code, 0);
    },
  );

  test(
    'a second daemon on the same sqlite file is refused, naming the file (exit 1)',
    T,
    async () => {
      const path = join(dir, 'shared', 'models.db');
      const first = new DaemonProcess(['serve', '--conf', sqliteConfig(path)]);
      try {
        await first.waitForMsg('ready');
        const second = new DaemonProcess([
          'serve',
          '--conf',
          sqliteConfig(path, { busy_timeout_ms: 100 }),
        ]);
        assert.equal((await second.exited).code, 1);
        const error = second.lines.find((l) => l.level === 50);
        assert.ok(String(error?.msg).includes(path), String(error?.msg));
        assert.match(String(error?.msg), /aimm-store\/backends\/sqlite/);
        assert.ok(!second.lines.some((l) => l.msg === 'listening'), 'no listener opened');
        assert.equal((await httpRequest(await first.port('http'), '/readyz')).status, 200);
      } finally {
        await first.stop();
      }
    },
  );

  test('SIGTERM during a write burst loses no acknowledged write', T, async (t) => {
    const conf = sqliteConfig(join(dir, 'burst', 'models.db'));
    const daemon = new DaemonProcess(['serve', '--conf', conf]);
    const port = await daemon.port('juggler');
    await daemon.waitForMsg('ready');

    const acked = new Map<number, string>();
    let failed = 0;
    let signalled = false;
    const writers = await Promise.all(Array.from({ length: 8 }, () => Juggler06.connect(port)));
    const burst = writers.map(async (client) => {
      // Each writer keeps 4 writes in flight until its connection ends.
      const lane = async () => {
        for (;;) {
          const bytes = randomBytes(512 + Math.floor(Math.random() * 8192));
          let res: Awaited<ReturnType<Juggler06['request']>>;
          try {
            res = await client.request('add_instance', {
              model_type: 'burst.Model',
              instance_b64: bytes.toString('base64'),
            });
          } catch {
            return; // the connection ended: the daemon is stopping
          }
          if (res.success) {
            acked.set((res.data as { instance_id: number }).instance_id, sha256(bytes));
          } else {
            failed++;
          }
          if (acked.size >= 300 && !signalled) {
            signalled = true;
            daemon.kill('SIGTERM');
          }
        }
      };
      await Promise.all([lane(), lane(), lane(), lane()]);
    });
    await Promise.all(burst);
    const { code } = await daemon.exited;
    assert.equal(code, 0, daemon.stderr);
    assert.ok(acked.size >= 300, `acknowledged ${acked.size}`);
    assert.ok(daemon.lines.some((l) => l.msg === 'stopped'));

    // Every acknowledged write is there after a restart, byte for byte.
    const again = new DaemonProcess(['serve', '--conf', conf]);
    try {
      const http = await again.port('http');
      await again.waitForMsg('ready');
      const list = JSON.parse((await httpRequest(http, '/models')).body.toString()) as {
        instance_id: number;
        sha256: string;
      }[];
      const stored = new Map(list.map((m) => [m.instance_id, m.sha256]));
      for (const [id, sha] of acked) {
        assert.equal(stored.get(id), sha, `model ${id}`);
      }
      // Spot-check the bytes themselves, not only the stored hashes.
      for (const id of [...acked.keys()].slice(0, 20)) {
        const res = await httpRequest(http, `/models/${id}`);
        assert.equal(sha256(res.body), acked.get(id));
      }
    } finally {
      await again.stop();
    }
    assert.equal((await again.exited).code, 0);
    t.diagnostic(`acknowledged ${acked.size}, refused while stopping ${failed}`);
  });
});
