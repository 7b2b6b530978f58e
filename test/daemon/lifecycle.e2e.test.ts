/**
 * The daemon as a child process with a test backend whose recovery, writes and close are held back
 * (test/support/slow-backend.ts): readiness, systemd notifications, failures at start, the stop
 * deadline, secrets and logs.
 */
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  configWith,
  DaemonProcess,
  httpRequest,
  NotifyReceiver,
  SUPPORT,
  slowBackend,
  tempDir,
  writeJson,
} from './harness.js';

const { dir, cleanup } = tempDir('aimm-lifecycle-');
after(cleanup);

let configs = 0;
function configFile(conf: Record<string, unknown>): string {
  const file = join(dir, `config-${++configs}.json`);
  writeJson(file, conf);
  chmodSync(file, 0o600);
  return file;
}

const T = { timeout: 30_000 };

describe('daemon lifecycle', () => {
  test('/readyz is false until recovery is done; READY=1 only after it', T, async () => {
    const readyFile = join(dir, 'recovered');
    const receiver = new NotifyReceiver(dir);
    const daemon = new DaemonProcess(
      ['serve', '--conf', configFile(configWith(slowBackend({ ready_file: readyFile })))],
      { env: { NOTIFY_SOCKET: receiver.path } },
    );
    try {
      const port = await daemon.port('http');
      await daemon.waitForMsg('recovering');
      const health = await httpRequest(port, '/healthz');
      assert.equal(health.status, 200, 'alive during recovery');
      const notReady = await httpRequest(port, '/readyz');
      assert.equal(notReady.status, 503);
      assert.match(notReady.body.toString(), /waiting for/);
      assert.equal((await httpRequest(port, '/models/1')).status, 503);
      await receiver.waitFor((m) => m.includes('STATUS=recovering: waiting for'));
      assert.ok(!receiver.fields().includes('READY=1'), 'no READY=1 before recovery');
      const metricsBefore = (await httpRequest(port, '/metrics')).body.toString();
      assert.match(metricsBefore, /^aimm_store_ready 0$/m);

      writeFileSync(readyFile, '');
      await receiver.waitFor((m) => m.split('\n').includes('READY=1'));
      await daemon.waitForMsg('ready');
      const ready = await httpRequest(port, '/readyz');
      assert.equal(ready.status, 200);
      assert.deepEqual(JSON.parse(ready.body.toString()), { ready: true, detail: 'recovered' });
      const metrics = (await httpRequest(port, '/metrics')).body.toString();
      assert.match(metrics, /^aimm_store_ready 1$/m);
      assert.match(metrics, /^aimm_store_uptime_seconds [\d.]+$/m);
      assert.match(metrics, /^aimm_store_info\{name="test",node="v[\d.]+",version="[^"]+"\} 1$/m);
    } finally {
      receiver.close();
      await daemon.stop();
    }
    assert.equal((await daemon.exited).code, 0);
  });

  test('READY=1, WATCHDOG=1 and STOPPING=1 arrive on NOTIFY_SOCKET in that order', T, async () => {
    const receiver = new NotifyReceiver(dir);
    const daemon = new DaemonProcess(['serve', '--conf', configFile(configWith(slowBackend()))], {
      env: { NOTIFY_SOCKET: receiver.path, WATCHDOG_USEC: '100000' },
    });
    try {
      await receiver.waitFor((m) => m.split('\n').includes('READY=1'));
      // Two watchdog pings after READY=1 (sent every 50 ms while healthy).
      await receiver.waitFor(() => receiver.messages.filter((m) => m === 'WATCHDOG=1').length >= 2);
      daemon.kill('SIGTERM');
      const { code } = await daemon.exited;
      assert.equal(code, 0);
      const fields = receiver.fields();
      const ready = fields.indexOf('READY=1');
      const firstWatchdog = fields.indexOf('WATCHDOG=1');
      const stopping = fields.indexOf('STOPPING=1');
      assert.ok(ready >= 0 && firstWatchdog > ready && stopping > firstWatchdog, fields.join('|'));
      assert.equal(fields.lastIndexOf('WATCHDOG=1') < stopping, true, 'no watchdog after STOPPING');
      assert.equal(fields[0], 'STATUS=starting');
      assert.ok(fields.includes('STATUS=ready'));
      assert.ok(fields.includes('STATUS=stopping (SIGTERM)'));
      const msgs = daemon.lines.map((l) => l.msg);
      for (const m of ['started', 'listening', 'recovering', 'ready', 'stopping', 'stopped']) {
        assert.ok(msgs.includes(m), `log line '${m}' in ${msgs.join(', ')}`);
      }
    } finally {
      receiver.close();
      await daemon.stop();
    }
  });

  test('SIGINT stops it too', T, async () => {
    const daemon = new DaemonProcess([
      'serve',
      '--conf',
      configFile(configWith(slowBackend({ write_delay_ms: 50 }))),
    ]);
    await daemon.waitForMsg('ready');
    daemon.kill('SIGINT');
    const { code } = await daemon.exited;
    assert.equal(code, 0);
    const stopping = daemon.lines.find((l) => l.msg === 'stopping');
    assert.equal(stopping?.reason, 'SIGINT');
  });

  test('a stop during recovery aborts it cleanly', T, async () => {
    const daemon = new DaemonProcess([
      'serve',
      '--conf',
      configFile(configWith(slowBackend({ ready_file: join(dir, 'never') }))),
    ]);
    await daemon.waitForMsg('recovering');
    daemon.kill('SIGTERM');
    assert.equal((await daemon.exited).code, 0);
    assert.ok(!daemon.lines.some((l) => l.msg === 'ready'));
    assert.equal(daemon.lines.find((l) => l.msg === 'stopping')?.from, 'recovering');
  });

  test('a stop that cannot finish is cut off at shutdown_timeout (exit 1)', T, async () => {
    const daemon = new DaemonProcess([
      'serve',
      '--conf',
      configFile(configWith(slowBackend({ hang_close: true }), { shutdown_timeout: 0.3 })),
    ]);
    await daemon.waitForMsg('ready');
    daemon.kill('SIGTERM');
    assert.equal((await daemon.exited).code, 1);
    assert.ok(daemon.lines.some((l) => l.msg === 'shutdown timed out; exiting'));
  });

  test(
    'a failing recovery stops the daemon with a message naming the module (exit 1)',
    T,
    async () => {
      const daemon = new DaemonProcess([
        'serve',
        '--conf',
        configFile(configWith(slowBackend({ fail_recovery: 'snapshot is corrupt' }))),
      ]);
      assert.equal((await daemon.exited).code, 1);
      const error = daemon.lines.find((l) => l.level === 50);
      assert.match(String(error?.msg), /slow-backend\.js' failed to recover: snapshot is corrupt/);
      assert.ok(!daemon.lines.some((l) => l.msg === 'ready'));
    },
  );

  test('a backend whose create throws stops the daemon before any control starts', T, async () => {
    const daemon = new DaemonProcess([
      'serve',
      '--conf',
      configFile(
        configWith({ module: join(SUPPORT, 'memory-backend.js'), fail_create: 'disk on fire' }),
      ),
    ]);
    assert.equal((await daemon.exited).code, 1);
    const error = daemon.lines.find((l) => l.level === 50);
    assert.match(String(error?.msg), /memory-backend\.js'.*disk on fire/);
    assert.ok(!daemon.lines.some((l) => l.msg === 'listening'), 'no listener was opened');
  });

  test('a control whose create fails stops the daemon, naming the module', T, async () => {
    const blocker = new DaemonProcess(['serve', '--conf', configFile(configWith(slowBackend()))]);
    const port = await blocker.port('http');
    try {
      const conf = configWith(slowBackend());
      (conf.control as unknown[]).push({
        module: 'aimm-store/controls/http',
        server: { host: '127.0.0.1', port },
      });
      const daemon = new DaemonProcess(['serve', '--conf', configFile(conf)]);
      assert.equal((await daemon.exited).code, 1);
      const errors = daemon.lines.filter((l) => l.level === 50);
      assert.equal(errors.length, 1, 'one error line');
      const error = errors[0];
      // Which control, which address, and who is there (issue 16): said once, with no cause
      // chain repeating EADDRINUSE and no stack.
      assert.equal(
        error?.msg,
        `control module 'aimm-store/controls/http' ($.control[1]) failed to start: http control cannot listen on 127.0.0.1:${port}: the address is already in use (EADDRINUSE): another aimm-store daemon is running there (its HTTP control answered /healthz); stop it, or give this control another port`,
      );
      assert.deepEqual(
        [error?.control, error?.path, error?.host, error?.port, error?.code, error?.err],
        ['http', '$.control[1]', '127.0.0.1', port, 'EADDRINUSE', undefined],
      );
      assert.ok(
        daemon.lines.some((l) => l.msg === 'stopped'),
        'the first control was closed',
      );
    } finally {
      await blocker.stop();
    }
  });

  test(
    'no secret reaches the logs; a world-readable config with secrets is warned about',
    T,
    async () => {
      const token = 'hat-token-7f3a9c';
      const conf = configWith(slowBackend({ hat_required: true }), {
        hat: { eventer_server: { host: '127.0.0.1', port: 1 }, client_token: token },
        log: { level: 'trace' },
      });
      const file = configFile(conf);
      chmodSync(file, 0o644);
      const daemon = new DaemonProcess(['serve', '--conf', file]);
      await daemon.waitForMsg('ready');
      const ready = daemon.lines.find((l) => l.msg === 'ready');
      assert.match(JSON.stringify(ready), /hat=true/, 'the backend got a Hat connector');
      await daemon.stop();
      const warning = daemon.lines.find((l) => l.level === 40);
      assert.match(String(warning?.msg), /world-readable \(mode 644\).*\$\.hat\.client_token/);
      assert.ok(!daemon.stdout.includes(token), 'token in stdout');
      assert.ok(!daemon.stderr.includes(token), 'token in stderr');
    },
  );

  for (const crash of ['exception', 'rejection'] as const) {
    test(`an uncaught ${crash} (a bug) is logged and stops the daemon (exit 1)`, T, async () => {
      const daemon = new DaemonProcess([
        'serve',
        '--conf',
        configFile(configWith(slowBackend({ crash_after_ready: crash }))),
      ]);
      assert.equal((await daemon.exited).code, 1);
      const fatal = daemon.lines.find((l) => l.level === 60);
      const what = crash === 'exception' ? 'uncaught exception' : 'unhandled rejection';
      assert.equal(fatal?.msg, `${what}; stopping`);
      assert.ok(
        daemon.lines.some((l) => l.msg === 'stopped'),
        'stopped gracefully',
      );
    });
  }

  test('log.level from the config filters lines', T, async () => {
    const receiver = new NotifyReceiver(dir);
    const daemon = new DaemonProcess(
      ['serve', '--conf', configFile(configWith(slowBackend(), { log: { level: 'warn' } }))],
      { env: { NOTIFY_SOCKET: receiver.path } },
    );
    try {
      await receiver.waitFor((m) => m.split('\n').includes('READY=1'));
      daemon.kill('SIGTERM');
      assert.equal((await daemon.exited).code, 0);
      assert.deepEqual(
        daemon.lines.filter((l) => Number(l.level) < 40),
        [],
      );
    } finally {
      receiver.close();
      await daemon.stop();
    }
  });
});
