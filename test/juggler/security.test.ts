/**
 * Configuration and security: the schema (paths and rules in issues), no `users` only on loopback
 * (refused at start with a clear message), constant-time login checks that look at every user, and
 * no password (nor its hash) in the logs.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { MetricsRegistry } from '../../src/common/metrics.js';
import { SchemaRegistry } from '../../src/common/schema.js';
import { constantTimeEqual, hashPassword, Users } from '../../src/controls/juggler/auth.js';
import { toSettings } from '../../src/controls/juggler/conf.js';
import {
  checkConf,
  confSchema,
  create,
  isLoopbackHost,
  validateConf,
} from '../../src/controls/juggler.js';
import { MemoryBackend } from '../support/memory-backend.js';
import { ADMIN, startJuggler } from './support/harness.js';
import { RawClient } from './support/raw-client.js';

const base = { module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 9950 } };

describe('configuration', () => {
  test('the schema is found by id in the shared registry and accepts the documented forms', () => {
    const reg = new SchemaRegistry();
    assert.equal(confSchema, 'aimm-store://controls/juggler.yaml#');
    assert.ok(reg.has(confSchema));
    const full = {
      ...base,
      server: { host: '127.0.0.1', port: 0, autoflush_delay: 0.2, shutdown_timeout: 1 },
      users: [{ username: 'admin', password: ADMIN.password }],
      state_instances: true,
      framing: '0.6',
      framing_wait: 0.5,
      max_message_size: 1 << 20,
      max_segment_size: 65536,
      max_pending_requests: 8,
      max_connections: 10,
      max_send_buffer: 1 << 22,
      ping_delay: 30,
      ping_timeout: 30,
    };
    assert.deepEqual(reg.validate(confSchema, full, '$.control[0]'), []);
    assert.deepEqual(validateConf(base), []);
    for (const framing of ['auto', '0.6', '0.7'])
      assert.deepEqual(validateConf({ ...base, framing }), []);
  });

  test('issues name the path and the rule', () => {
    const cases: [unknown, string, string][] = [
      [{ ...base, server: { host: '127.0.0.1' } }, '$.control[0].server.port', 'required'],
      [
        { ...base, server: { host: '127.0.0.1', port: '9950' } },
        '$.control[0].server.port',
        'type',
      ],
      [
        { ...base, server: { host: '127.0.0.1', port: 70000 } },
        '$.control[0].server.port',
        'maximum',
      ],
      [
        { ...base, users: [{ username: 'a', password: 'admin' }] },
        '$.control[0].users[0].password',
        'pattern',
      ],
      [{ ...base, framing: '0.8' }, '$.control[0].framing', 'enum'],
      [{ ...base, max_message_size: 10 }, '$.control[0].max_message_size', 'minimum'],
      [{ ...base, state_instance: true }, '$.control[0].state_instance', 'additionalProperties'],
    ];
    for (const [conf, path, rule] of cases) {
      const issues = validateConf(conf, '$.control[0]');
      assert.ok(
        issues.some((i) => i.path === path && i.rule === rule),
        `${path} ${rule}: ${JSON.stringify(issues)}`,
      );
    }
  });

  test('defaults', () => {
    const s = toSettings(base);
    assert.deepEqual(
      [
        s.users,
        s.stateInstances,
        s.framing,
        s.flushDelayMs,
        s.maxMessageSize,
        s.maxSegmentSize,
        s.pingDelayMs,
      ],
      [null, false, 'auto', 200, 64 * 1024 * 1024, 65536, 30000],
    );
  });
});

describe('no users only on loopback', () => {
  test('loopback hosts', () => {
    for (const host of [
      '127.0.0.1',
      '127.1.2.3',
      'localhost',
      '::1',
      '[::1]',
      '0:0:0:0:0:0:0:1',
      '::ffff:127.0.0.1',
    ])
      assert.ok(isLoopbackHost(host), host);
    for (const host of [
      '0.0.0.0',
      '::',
      '10.0.0.1',
      '192.168.1.2',
      'example.com',
      'models.localhost',
      '128.0.0.1',
      '::2',
    ])
      assert.ok(!isLoopbackHost(host), host);
  });

  test('checkConf: users required on other hosts, with the path the daemon gives', () => {
    const issues = checkConf({ ...base, server: { host: '0.0.0.0', port: 9950 } }, '$.control[1]');
    assert.equal(issues.length, 1);
    assert.equal(issues[0]?.path, '$.control[1].users');
    assert.match(issues[0]?.message ?? '', /non-loopback host \('0\.0\.0\.0'\)/);
    assert.deepEqual(
      checkConf({
        ...base,
        server: { host: '0.0.0.0', port: 1 },
        users: [ADMIN],
        allow_plaintext: true,
      }),
      [],
    );
    // Users on another host without TLS: their password hashes would cross the network in clear.
    const plain = checkConf(
      { ...base, server: { host: '10.0.0.1', port: 1 }, users: [ADMIN] },
      '$.control[0]',
    );
    assert.deepEqual(
      plain.map((i) => [i.path, i.rule]),
      [['$.control[0].server.pem_file', 'plaintext_login']],
    );
    assert.match(plain[0]?.message ?? '', /in clear; set server\.pem_file .*allow_plaintext: true/);
    assert.deepEqual(checkConf(base), []);
  });

  test('create refuses a non-loopback listener without users, before listening', async () => {
    const backend = new MemoryBackend();
    await assert.rejects(
      create(
        { ...base, server: { host: '0.0.0.0', port: 0 } },
        {
          name: 't',
          logger: pino({ level: 'silent' }),
          metrics: new MetricsRegistry(),
          backend,
          status: () => ({ ready: true, backend: backend.status() }),
        },
      ),
      /juggler control refused to start: \$\.users is required when listening on a non-loopback host/,
    );
  });

  test('a port in use is reported with host and port', async () => {
    const h = await startJuggler();
    try {
      await assert.rejects(startJuggler({ server: { port: h.port } }), (err: Error) => {
        assert.match(
          err.message,
          new RegExp(`cannot listen on 127\\.0\\.0\\.1:${h.port}: .*EADDRINUSE`),
        );
        // The address is asked who listens there: here another aimm-store's Juggler control.
        assert.match(
          err.message,
          /another aimm-store daemon is running there \(its Juggler control answered\); stop it, or give this control another port$/,
        );
        assert.equal(err.name, 'ListenError');
        return true;
      });
    } finally {
      await h.close();
    }
  });
});

describe('login checks', () => {
  test('constantTimeEqual is plain equality, whatever the lengths', () => {
    assert.ok(constantTimeEqual('abc', 'abc'));
    assert.ok(!constantTimeEqual('abc', 'abd'));
    assert.ok(!constantTimeEqual('abc', 'abcd'));
    assert.ok(!constantTimeEqual('', 'a'));
    assert.ok(constantTimeEqual('', ''));
  });

  test('every user is compared, with no early exit, whatever matches', () => {
    let calls = 0;
    const compare = (a: string, b: string) => {
      calls++;
      return constantTimeEqual(a, b);
    };
    const users = new Users(
      ['u1', 'u2', 'u3'].map((u) => ({ username: u, password: hashPassword(`${u}-pw`) })),
      compare,
    );
    const counts: number[] = [];
    for (const [u, p, ok] of [
      ['u1', 'u1-pw', true],
      ['u3', 'u3-pw', true],
      ['u2', 'wrong', false],
      ['nobody', 'u1-pw', false],
      ['u1', 'u2-pw', false],
    ] as const) {
      calls = 0;
      assert.equal(users.check(u, hashPassword(p)), ok, `${u}/${p}`);
      counts.push(calls);
    }
    assert.deepEqual(counts, [6, 6, 6, 6, 6]);
    // Hex case does not matter (SHA-256 hex from any client).
    assert.ok(users.check('u1', hashPassword('u1-pw').toUpperCase()));
  });

  test('no password or hash in the logs, successful or not', async () => {
    const h = await startJuggler({ users: [ADMIN] });
    try {
      const wrong = hashPassword('wrong');
      const a = await RawClient.open(h.url, '0.7');
      await a.request('login', { username: 'admin', password: ADMIN.password });
      await a.close();
      const b = await RawClient.open(h.url, '0.6');
      b.sendRequest('login', { username: 'admin', password: wrong });
      await b.waitClosed();
      const logs = h.logLines.join('\n');
      assert.ok(logs.includes('"msg":"login"') && logs.includes('"msg":"login failed"'));
      for (const secret of [ADMIN.password, wrong, 'admin"}'])
        assert.ok(!logs.includes(secret), secret);
      assert.match(h.metrics.render(), /aimm_store_juggler_logins_total\{result="failure"\} 1/);
    } finally {
      await h.close();
    }
  });
});
