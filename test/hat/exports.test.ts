/** The package's `./hat` export (what `import ... from 'aimm-store/hat'` gives users). */
import assert from 'node:assert/strict';
import { test } from 'node:test';

test("'aimm-store/hat' exposes the documented API", async () => {
  const specifier: string = 'aimm-store/hat';
  const hat = (await import(specifier)) as Record<string, unknown>;
  for (const name of [
    'connect',
    'createHatConnector',
    'createMonitorHatConnector',
    'selectEventServer',
    'jsonPayload',
    'parseJsonPayload',
    'timeseriesQuery',
    'serverQuery',
    'matches',
    'EventerInitError',
    'ConnectError',
    'ConnectionClosedError',
    'ProtocolError',
    'FrameTooLargeError',
    'PingTimeoutError',
    'HatConnectionError',
  ]) {
    assert.equal(typeof hat[name], 'function', name);
  }
  const sbs = hat.sbs as Record<string, unknown>;
  for (const name of [
    'encode',
    'decode',
    'record',
    'choice',
    'array',
    'optional',
    'Repository',
    'SbsError',
  ]) {
    assert.equal(typeof sbs[name], 'function', `sbs.${name}`);
  }
  assert.equal(typeof (hat.chatter as Record<string, unknown>).Connection, 'function');
  assert.equal(typeof (hat.eventer as Record<string, unknown>).pythonJsonDumps, 'function');
  const monitor = hat.monitor as Record<string, unknown>;
  for (const name of ['MonitorComponent', 'connectMonitor', 'isActive', 'encodeClientMsg'])
    assert.equal(typeof monitor[name], 'function', `monitor.${name}`);
  const matches = hat.matches as (e: string[], q: string[]) => boolean;
  assert.equal(matches(['a', 'b'], ['a', '*']), true);
});
