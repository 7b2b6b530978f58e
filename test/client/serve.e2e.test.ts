/**
 * The client commands against the real daemon: `aimm-store serve` (sqlite backend in a temp dir,
 * Juggler on port 0 with a user) as a child process, the CLI as other child processes, and AIMM's
 * exact 0.6 texts from a raw client. Models survive a restart of the daemon.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, runCli, tempDir, writeJson } from '../daemon/harness.js';
import { ADMIN, until } from '../juggler/support/harness.js';
import { RawClient } from '../juggler/support/raw-client.js';

const env = { AIMM_STORE_PASSWORD: 'admin' };

function lines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
}

describe('client commands against aimm-store serve', () => {
  const tmp = tempDir('aimm-juggler-serve-');
  let conf: string;
  let daemon: DaemonProcess;
  let url: string;

  async function start(): Promise<void> {
    daemon = new DaemonProcess(['serve', '--conf', conf]);
    url = `ws://127.0.0.1:${await daemon.port('juggler')}/`;
  }

  before(async () => {
    conf = writeJson(join(tmp.dir, 'conf.json'), {
      name: 'juggler-e2e',
      backend: { module: 'aimm-store/backends/sqlite', path: join(tmp.dir, 'models.db') },
      control: [
        {
          module: 'aimm-store/controls/juggler',
          server: { host: '127.0.0.1', port: 0, autoflush_delay: 0.05 },
          users: [ADMIN],
          state_instances: true,
        },
      ],
      log: { level: 'info' },
    });
    await start();
  });
  after(async () => {
    await daemon.stop();
    tmp.cleanup();
  });

  test('put, get, ls, rm and watch through the daemon; models survive a restart', async () => {
    const addr = ['--address', url, '--user', 'admin'];
    const watch = new DaemonProcess(['watch', ...addr], { env: { ...process.env, ...env } });
    await until(() => watch.stderr.includes('watching'), 'watch to start', 10_000);

    const put = await runCli(['put', '--type', 'e2e.Model', ...addr], { env, input: 'bytes' });
    assert.equal(put.code, 0, put.stderr);
    const meta = lines(put.stdout)[0] as Record<string, unknown>;
    assert.deepEqual([meta.model_type, meta.revision, meta.size], ['e2e.Model', 1, 5]);
    const id = String(meta.instance_id);
    const got = await runCli(['get', id, ...addr], { env });
    assert.equal(got.stdout, 'bytes');
    const second = await runCli(['put', '--type', 'e2e.Model', ...addr], { env, input: 'two' });
    const id2 = String(lines(second.stdout)[0]?.instance_id);
    assert.equal((await runCli(['rm', id2, ...addr], { env })).code, 0);

    // watch prints JSON lines on stdout: the harness sees them as parsed lines.
    const changes = () => watch.lines.filter((l) => typeof l.change === 'string');
    await until(() => changes().length === 3, 'three changes in watch', 10_000);
    assert.deepEqual(
      changes().map((l) => [l.change, String(l.instance_id), l.revision, l.origin]),
      [
        ['created', id, 1, 'local'],
        ['created', id2, 1, 'local'],
        ['deleted', id2, 2, 'local'],
      ],
    );

    await daemon.stop();
    const ended = await watch.exited;
    assert.equal(ended.code, 1, 'watch ends with a failure when the daemon goes away');
    await start();
    const ls = await runCli(['ls', '--address', url, '--user', 'admin'], { env });
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(
      lines(ls.stdout).map((l) => [String(l.instance_id), l.model_type, l.revision]),
      [[id, 'e2e.Model', 1]],
    );
  });

  test("AIMM's client texts (0.6) against the daemon", async () => {
    const c = await RawClient.open(url, '0.6');
    c.sendFrame(
      '{"type": "request", "id": 1, "name": "login", "data": {"username": "admin", "password": "8c6976e5b5410415bde908bd4dee15dfb167a9c873fc4bb8a81f6f2ab448a918"}}',
    );
    await c.response(1);
    c.sendFrame(
      '{"type": "request", "id": 2, "name": "add_instance", "data": {"model_type": "text.Model", "instance_b64": "aGVsbG8="}}',
    );
    await c.response(2);
    const texts = c.frames.filter((f) => f.startsWith('{"type": "response"'));
    assert.equal(
      texts[0],
      '{"type": "response", "id": 1, "data": {"success": true}, "success": true}',
    );
    assert.match(
      texts[1] ?? '',
      /^\{"type": "response", "id": 2, "data": \{"instance_id": \d+, "model_type": "text\.Model", "instance": "aGVsbG8="\}, "success": true\}$/,
    );
    await c.waitFor(
      (m) =>
        m.some(
          (x) => x.type === 'state' && JSON.stringify(x.diff).includes('"instance":"aGVsbG8="'),
        ),
      'the new model with its instance in the state',
    );
    await c.close();
  });
});
