/**
 * Config errors that say how to fix them (issue 16): enums list their values (and the nearest one
 * for a typo), unknown keys name the nearest known one, an address written as `host:port` gets one
 * line saying what an address is instead of one per oneOf alternative, a clear-text password says
 * how to make its SHA-256 hex (without echoing it).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ConfigIssue } from '../../src/common/schema.js';
import { closest } from '../../src/common/suggest.js';
import { checkConfig } from '../../src/daemon/config.js';

const sqlite = { module: 'aimm-store/backends/sqlite', path: '/nonexistent/m.db' };
const event = { module: 'aimm-store/backends/event', model_prefix: ['aimm', 'model'] };
const juggler = { module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 0 } };

async function lines(conf: unknown): Promise<string[]> {
  const issues: ConfigIssue[] = (await checkConfig(conf, { baseDir: '/' })).issues;
  return issues.map((i) => `${i.path}: ${i.message} (rule: ${i.rule})`);
}

describe('config error messages', () => {
  test('enums list the allowed values; a typo gets the nearest', async () => {
    const got = await lines({
      backend: { ...event, ack: 'regstered' },
      hat: { eventer_server: { host: '127.0.0.1', port: 23012 } },
      control: [{ ...juggler, framing: 0.7 }],
      log: { level: 'verbose' },
    });
    assert.deepEqual(got.sort(), [
      "$.backend.ack: must be one of 'registered', 'persisted', not 'regstered'; did you mean 'registered'? (rule: enum)",
      "$.control[0].framing: must be one of 'auto', '0.6', '0.7', not 0.7; quote it: \"0.7\" (rule: enum)",
      "$.log.level: must be one of 'trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent', not 'verbose' (rule: enum)",
    ]);
  });

  test('a value that does not convert to a string still gets a message (found by the fuzz)', async () => {
    const got = await lines({
      backend: event,
      hat: { eventer_server: { host: '127.0.0.1', port: 23012 } },
      control: [{ ...juggler, framing: { toString: {} } }],
      log: { level: Object.create(null) },
    });
    assert.deepEqual(got.sort(), [
      "$.control[0].framing: must be one of 'auto', '0.6', '0.7', not {\"toString\":{}} (rule: enum)",
      "$.log.level: must be one of 'trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent', not {} (rule: enum)",
    ]);
  });

  test("eventer_server: '127.0.0.1:23012' is one line: an address is {host, port}", async () => {
    const one = await lines({
      backend: event,
      hat: { eventer_server: '127.0.0.1:23012' },
      control: [],
    });
    assert.deepEqual(one, [
      '$.hat.eventer_server: an address is {host, port} (or a list of them, in fail-over order), not a string: write {host: 127.0.0.1, port: 23012} (rule: type)',
    ]);
    const list = await lines({
      backend: event,
      hat: { eventer_server: ['10.0.0.11:23012', { host: 'b', port: 'x' }], ping_timout: 3 },
      control: [],
    });
    assert.deepEqual(list.sort(), [
      '$.hat.eventer_server[0]: an address is {host, port}, not a string: write {host: 10.0.0.11, port: 23012} (rule: type)',
      '$.hat.eventer_server[1].port: must be an integer, not a string (rule: type)',
      "$.hat.ping_timout: is not an allowed property; did you mean 'ping_timeout'? (rule: additionalProperties)",
    ]);
    const number = await lines({ backend: event, hat: { eventer_server: 23012 }, control: [] });
    assert.deepEqual(number, [
      '$.hat.eventer_server: an address is {host, port} (or a list of them, in fail-over order), not number 23012 (rule: type)',
    ]);
  });

  test('a clear-text password hints at its SHA-256 hex and how to make it, without echoing it', async () => {
    const got = await lines({
      backend: sqlite,
      control: [{ ...juggler, users: [{ username: 'admin', password: 'hunter2' }] }],
    });
    assert.deepEqual(got, [
      "$.control[0].users[0].password: must be the SHA-256 of the password in hex (64 hex digits), not the password itself: printf %s 'the password' | sha256sum (rule: pattern)",
    ]);
    assert.ok(!got[0]?.includes('hunter2'));
  });

  test('did you mean: typos and swaps, nothing for short or distant words', () => {
    assert.equal(closest('regstered', ['registered', 'persisted']), 'registered');
    assert.equal(closest('ping_timout', ['ping_delay', 'ping_timeout']), 'ping_timeout');
    assert.equal(closest('tpye', ['type', 'id']), 'type');
    assert.equal(closest('verbose', ['trace', 'debug', 'info']), null);
    assert.equal(closest('0.8', ['0.6', '0.7']), null);
  });
});
