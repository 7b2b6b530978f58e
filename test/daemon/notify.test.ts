import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { createNotifier, formatMessage, startWatchdog } from '../../src/daemon/notify.js';
import { NotifyReceiver, tempDir } from './harness.js';

const logger = pino({ level: 'silent' });
const { dir, cleanup } = tempDir('aimm-notify-');
after(cleanup);

describe('systemd notification', () => {
  test('without NOTIFY_SOCKET nothing is sent and nothing is needed', () => {
    const n = createNotifier(logger, { WATCHDOG_USEC: '1000000' });
    assert.equal(n.enabled, false);
    assert.equal(n.watchdogIntervalMs, null);
    n.send({ READY: 1 });
    const stop = startWatchdog(n, () => true);
    stop();
    n.close();
  });

  test('messages are KEY=VALUE lines; values stay on one line', () => {
    assert.equal(formatMessage({ READY: 1, STATUS: 'ready' }), 'READY=1\nSTATUS=ready');
    assert.equal(formatMessage({ STATUS: 'a\nb\r\nc' }), 'STATUS=a b c');
  });

  test('messages arrive on a real unix datagram socket, in order', {
    timeout: 20_000,
  }, async () => {
    const receiver = new NotifyReceiver(dir);
    try {
      const n = createNotifier(logger, { NOTIFY_SOCKET: receiver.path });
      assert.equal(n.enabled, true);
      n.send({ STATUS: 'starting' });
      n.send({ READY: 1, STATUS: 'ready' });
      n.send({ STOPPING: 1 });
      await receiver.waitFor((m) => m === 'STOPPING=1');
      assert.deepEqual(receiver.messages, [
        'STATUS=starting',
        'READY=1\nSTATUS=ready',
        'STOPPING=1',
      ]);
      n.close();
      n.send({ READY: 1 });
    } finally {
      receiver.close();
    }
  });

  test('WATCHDOG_USEC gives half the interval; WATCHDOG_PID must be ours', () => {
    const socket = { NOTIFY_SOCKET: '/nonexistent/sock' };
    const a = createNotifier(logger, { ...socket, WATCHDOG_USEC: '3000000' });
    assert.equal(a.watchdogIntervalMs, 1500);
    const b = createNotifier(logger, {
      ...socket,
      WATCHDOG_USEC: '3000000',
      WATCHDOG_PID: String(process.pid),
    });
    assert.equal(b.watchdogIntervalMs, 1500);
    const c = createNotifier(logger, { ...socket, WATCHDOG_USEC: '3000000', WATCHDOG_PID: '1' });
    assert.equal(c.watchdogIntervalMs, null);
    const d = createNotifier(logger, { ...socket, WATCHDOG_USEC: 'x' });
    assert.equal(d.watchdogIntervalMs, null);
    for (const n of [a, b, c, d]) n.close();
  });

  test('an unreachable socket is logged, never thrown', () => {
    const lines: string[] = [];
    const capture = pino({ level: 'info' }, { write: (s: string) => lines.push(s) });
    const n = createNotifier(capture, { NOTIFY_SOCKET: `${dir}/missing.sock` });
    n.send({ READY: 1 });
    n.send({ READY: 1 });
    n.close();
    assert.equal(lines.length, 1, 'one warning, not one per message');
    assert.match(lines[0] ?? '', /systemd notification failed/);
  });

  test('the watchdog sends WATCHDOG=1 while healthy only', { timeout: 20_000 }, async () => {
    const receiver = new NotifyReceiver(dir);
    try {
      const n = createNotifier(logger, { NOTIFY_SOCKET: receiver.path, WATCHDOG_USEC: '20000' });
      let healthy = false;
      let checks = 0;
      const stop = startWatchdog(n, () => {
        checks++;
        return healthy;
      });
      // Unhealthy ticks send nothing; the first healthy tick sends WATCHDOG=1.
      await new Promise<void>((resolve) => {
        const t = setInterval(() => {
          if (checks >= 3) {
            clearInterval(t);
            resolve();
          }
        }, 5);
      });
      assert.deepEqual(receiver.messages, []);
      healthy = true;
      await receiver.waitFor((m) => m === 'WATCHDOG=1');
      stop();
      n.close();
    } finally {
      receiver.close();
    }
  });

  const tools =
    spawnSync('systemd-notify', ['--version']).status === 0 &&
    spawnSync('python3', ['-c', 'import socket']).status === 0;
  test('an abstract socket (@name) is reached through systemd-notify', {
    skip: tools ? false : 'needs systemd-notify and python3 (an abstract-socket receiver)',
    timeout: 20_000,
  }, async () => {
    const name = `aimm-store-test-${process.pid}-${Date.now()}`;
    const { spawn } = await import('node:child_process');
    // python3 binds the abstract name exactly (unix-dgram cannot) and prints what it receives.
    const py = spawn('python3', [
      '-c',
      'import socket,sys\n' +
        's=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\n' +
        `s.bind("\\0${name}")\n` +
        'print("bound",flush=True)\n' +
        'while True:\n' +
        '  m=s.recv(65536)\n' +
        '  print(repr(m.decode()),flush=True)\n' +
        '  if m.startswith(b"STOPPING=1"): break\n',
    ]);
    let out = '';
    const seen = (s: string) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (out.includes(s)) {
            py.stdout.off('data', onData);
            resolve();
          }
        };
        const onData = (b: Buffer) => {
          out += b.toString();
          check();
        };
        py.stdout.on('data', onData);
        check();
      });
    await seen('bound');
    const lines: string[] = [];
    const capture = pino({ level: 'info' }, { write: (s: string) => lines.push(s) });
    const n = createNotifier(capture, { NOTIFY_SOCKET: `@${name}` });
    assert.match(lines.join(''), /abstract socket.*NotifyAccess=all/);
    n.send({ READY: 1, STATUS: 'ready' });
    n.send({ STOPPING: 1 });
    n.close();
    await seen("'STOPPING=1'");
    assert.ok(out.indexOf("'READY=1\\nSTATUS=ready'") < out.indexOf("'STOPPING=1'"), out);
    py.kill();
  });
});
