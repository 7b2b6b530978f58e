import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkConfig } from '../../src/daemon/config.js';
import { slowBackend, tempDir } from '../daemon/harness.js';

test('the change stream keys: valid values pass, bad ones name the path and rule', async () => {
  const { dir, cleanup } = tempDir('aimm-changes-conf-');
  try {
    const http = (extra: Record<string, unknown>, port: number) => ({
      module: 'aimm-store/controls/http',
      server: { host: '127.0.0.1', port },
      ...extra,
    });
    const good = await checkConfig(
      {
        backend: slowBackend(),
        control: [
          http(
            {
              changes_buffer: 1,
              changes_heartbeat: 0.5,
              changes_retry: 0,
              changes_stall_timeout: 2.5,
            },
            1,
          ),
        ],
      },
      { baseDir: dir },
    );
    assert.deepEqual(good.issues, []);
    const bad = await checkConfig(
      {
        backend: slowBackend(),
        control: [
          http({ changes_buffer: 0, changes_heartbeat: 0 }, 1),
          http({ changes_buffer: 2.5, changes_retry: -1, changes_stall_timeout: '30s' }, 2),
        ],
      },
      { baseDir: dir },
    );
    assert.deepEqual(bad.issues.map((i) => `${i.path} ${i.rule}`).sort(), [
      '$.control[0].changes_buffer minimum',
      '$.control[0].changes_heartbeat exclusiveMinimum',
      '$.control[1].changes_buffer type',
      '$.control[1].changes_retry minimum',
      '$.control[1].changes_stall_timeout type',
    ]);
  } finally {
    cleanup();
  }
});
