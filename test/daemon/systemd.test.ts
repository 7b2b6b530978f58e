/**
 * The shipped unit file: `systemd-analyze verify` is clean (no warnings either), the hardening
 * score stays low, and the directives the daemon relies on are there.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ROOT, tempDir } from './harness.js';

const UNIT = join(ROOT, 'systemd', 'aimm-store.service');
const text = readFileSync(UNIT, 'utf8');
const analyze = spawnSync('systemd-analyze', ['--version']).status === 0;
const noAnalyze = analyze ? false : 'systemd-analyze is not installed on this machine';
const { dir, cleanup } = tempDir('aimm-systemd-');
after(cleanup);

/** `Key=value` lines of the [Service] section. */
function directives(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) section = line;
    if (section !== '[Service]' || line.startsWith('#') || !line.includes('=')) continue;
    const [key, ...rest] = line.split('=');
    out.set(key as string, [...(out.get(key as string) ?? []), rest.join('=')]);
  }
  return out;
}

describe('systemd unit', () => {
  test('declares notify, watchdog, a dedicated user, its folders and the hardening', () => {
    const d = directives();
    const one = (k: string) => d.get(k)?.at(-1);
    assert.equal(one('Type'), 'notify');
    assert.equal(one('NotifyAccess'), 'main');
    assert.match(one('WatchdogSec') ?? '', /^\d+s?$/);
    assert.equal(one('User'), 'aimm-store');
    assert.equal(one('StateDirectory'), 'aimm-store');
    assert.equal(one('ConfigurationDirectory'), 'aimm-store');
    assert.equal(one('ProtectSystem'), 'strict');
    for (const k of ['NoNewPrivileges', 'PrivateTmp', 'ProtectHome', 'PrivateDevices']) {
      assert.equal(one(k), 'yes', k);
    }
    assert.equal(one('CapabilityBoundingSet'), '');
    assert.match(one('ExecStart') ?? '', / serve --conf \/etc\/aimm-store\/config\.yaml$/);
    assert.notEqual(one('MemoryDenyWriteExecute'), 'yes', 'V8 needs W+X memory');
    assert.equal(one('RestartPreventExitStatus'), '2', 'config errors are not restarted');
    // The stop timeout leaves room for the daemon's own drain deadline (20 s by default).
    assert.ok(Number.parseInt(one('TimeoutStopSec') ?? '0', 10) > 20);
  });

  test('systemd-analyze verify reports nothing', { skip: noAnalyze }, () => {
    let unit = UNIT;
    if (!existsSync('/usr/bin/node')) {
      // verify checks that ExecStart's program exists: point it at this machine's node.
      unit = join(dir, 'aimm-store.service');
      writeFileSync(unit, text.replaceAll('/usr/bin/node', process.execPath));
    }
    const res = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    assert.equal(res.stderr.trim(), '', 'no warnings (an unknown key is only a warning)');
  });

  test('a broken unit is caught (the check can fail)', { skip: noAnalyze }, () => {
    const broken = join(dir, 'broken.service');
    writeFileSync(broken, text.replace('NoNewPrivileges=yes', 'NoNewPrivileges=yes\nBogusKey=1'));
    const res = spawnSync('systemd-analyze', ['verify', broken], { encoding: 'utf8' });
    assert.match(res.stderr, /Unknown key/);
  });

  const offline =
    analyze && spawnSync('systemd-analyze', ['security', '--offline=yes', UNIT]).status !== null;
  test('systemd-analyze security rates the exposure OK (< 2.0)', {
    skip: noAnalyze || (offline ? false : 'no offline security analysis'),
  }, (t) => {
    const res = spawnSync('systemd-analyze', ['security', '--offline=yes', UNIT], {
      encoding: 'utf8',
    });
    const m = /Overall exposure level for [^:]+: ([\d.]+)/.exec(res.stdout + res.stderr);
    if (m === null) {
      t.skip(`this systemd-analyze has no offline mode: ${res.stderr.trim()}`);
      return;
    }
    t.diagnostic(`exposure ${m[1]}`);
    assert.ok(Number(m[1]) < 2, `exposure ${m[1]}`);
  });
});
