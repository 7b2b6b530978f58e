/**
 * Model history end to end (sqlite backend, the daemon and every CLI a child process): `history`,
 * `get --revision`, `rollback --to` with its compare-and-set, and the Juggler requests under them.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, runCli, tempDir, writeJson } from './harness.js';

const { dir, cleanup } = tempDir('aimm-history-');
const T = { timeout: 60_000 };

let daemon: DaemonProcess;
let address: string;

before(async () => {
  const conf = writeJson(join(dir, 'config.json'), {
    name: 'history',
    backend: {
      module: 'aimm-store/backends/sqlite',
      path: join(dir, 'data', 'models.db'),
      history: { keep: 3 },
    },
    control: [{ module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 0 } }],
  });
  daemon = new DaemonProcess(['serve', '--conf', conf]);
  address = `ws://127.0.0.1:${await daemon.port('juggler')}/`;
  await daemon.waitForMsg('ready');
});

after(async () => {
  await daemon?.stop();
  cleanup();
});

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

describe('history, get --revision and rollback through the CLI', () => {
  test(
    'every kept revision is listed and readable; rollback writes the old bytes as a new revision',
    T,
    async () => {
      const file = join(dir, 'm.bin');
      writeFileSync(file, 'first');
      const put = await cli(['put', '--type', 'a.Model', file]);
      assert.equal(put.code, 0, put.stderr);
      const id = String(jsonLines(put.stdout)[0]?.instance_id);
      for (const [text, type] of [
        ['second', 'a.Model'],
        ['third', 'b.Model'],
      ]) {
        writeFileSync(file, text as string);
        const r = await cli(['put', '--type', type as string, '--id', id, file]);
        assert.equal(r.code, 0, r.stderr);
      }
      const h = await cli(['history', id]);
      assert.equal(h.code, 0, h.stderr);
      assert.deepEqual(
        jsonLines(h.stdout).map((r) => [r.revision, r.model_type, r.origin, r.current]),
        [
          [1, 'a.Model', 'local', false],
          [2, 'a.Model', 'local', false],
          [3, 'b.Model', 'local', true],
        ],
      );
      const paged = await cli(['history', id, '--after', '1', '--limit', '1']);
      assert.deepEqual(
        jsonLines(paged.stdout).map((r) => r.revision),
        [2],
      );
      const old = await cli(['get', id, '--revision', '1']);
      assert.equal(old.code, 0, old.stderr);
      assert.equal(old.stdout, 'first');
      const meta = await cli(['get', id, '--revision', '2', '--meta']);
      assert.equal(jsonLines(meta.stdout)[0]?.revision, 2);

      // A stale --expect-revision: refused, nothing written.
      const stale = await cli(['rollback', id, '--to', '1', '--expect-revision', '2']);
      assert.equal(stale.code, 1);
      assert.match(stale.stderr, /revision/);
      const rb = await cli(['rollback', id, '--to', '1']);
      assert.equal(rb.code, 0, rb.stderr);
      assert.deepEqual(
        [jsonLines(rb.stdout)[0]?.revision, jsonLines(rb.stdout)[0]?.model_type],
        [4, 'a.Model'],
      );
      const now = await cli(['get', id]);
      assert.equal(now.stdout, 'first');

      // keep: 3 earlier revisions: revision 1 is gone after the fifth write.
      writeFileSync(file, 'fifth');
      await cli(['put', '--type', 'a.Model', '--id', id, file]);
      const kept = await cli(['history', id]);
      assert.deepEqual(
        jsonLines(kept.stdout).map((r) => r.revision),
        [2, 3, 4, 5],
      );
      const gone = await cli(['get', id, '--revision', '1']);
      assert.equal(gone.code, 1);
      assert.match(gone.stderr, /revision 1 of model \d+ is not kept/);
      const none = await cli(['history', '999']);
      assert.equal(none.code, 1);
      assert.match(none.stderr, /not found/);
    },
  );
});
