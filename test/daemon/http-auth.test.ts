/**
 * The HTTP control's authentication pieces, unit by unit: the Authorization header parser (Basic
 * and Bearer, malformed forms, colons and UTF-8), what each path and method needs, the tokens
 * file (format, bad lines named by file and line, re-reading on change), and the config rules.
 */
import assert from 'node:assert/strict';
import { unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parseAuthorization, requirementOf } from '../../src/controls/http/auth.js';
import { checkAuthConf } from '../../src/controls/http/auth-conf.js';
import { checkConf } from '../../src/controls/http.js';
import { constantTimeEqual, hashPassword, Users } from '../../src/controls/juggler/auth.js';
import {
  generateToken,
  hashToken,
  parseTokens,
  readTokensFile,
  TokenFile,
  TokensFileError,
} from '../../src/controls/tokens.js';
import { tempDir } from './harness.js';

const { dir, cleanup } = tempDir('aimm-http-auth-');
after(cleanup);

const basic = (userPass: string | Buffer) =>
  `Basic ${(typeof userPass === 'string' ? Buffer.from(userPass, 'utf8') : userPass).toString('base64')}`;

describe('Authorization header', () => {
  test('Basic: user, password with colons, UTF-8, scheme in any case', () => {
    assert.deepEqual(parseAuthorization(basic('alice:secret')), {
      kind: 'basic',
      username: 'alice',
      password: 'secret',
    });
    assert.deepEqual(parseAuthorization(basic('bob:a:b::c')), {
      kind: 'basic',
      username: 'bob',
      password: 'a:b::c',
    });
    assert.deepEqual(parseAuthorization(basic('jürgen:pässwörd ✓')), {
      kind: 'basic',
      username: 'jürgen',
      password: 'pässwörd ✓',
    });
    assert.deepEqual(parseAuthorization(`bAsIc ${Buffer.from(':').toString('base64')}`), {
      kind: 'basic',
      username: '',
      password: '',
    });
  });

  test('Basic: malformed forms are named, never thrown', () => {
    const cases: [string, RegExp][] = [
      ['Basic', /base64/],
      ['Basic ', /base64/],
      ['Basic !!!!', /base64/],
      ['Basic YWxpY2U6c2VjcmV0', /./], // well-formed: checked below
      ['Basic YWxpY2U', /base64/], // unpadded
      [basic('no colon here'), /no colon/],
      [basic(Buffer.from([0x61, 0x3a, 0xff, 0xfe])), /UTF-8/],
      [`Basic ${Buffer.from('a:b').toString('base64')} extra`, /base64/],
      ['(Basic) xyz', /scheme/],
    ];
    for (const [header, why] of cases) {
      const c = parseAuthorization(header);
      if (header === 'Basic YWxpY2U6c2VjcmV0') {
        assert.equal(c.kind, 'basic');
        continue;
      }
      assert.equal(c.kind, 'malformed', header);
      assert.match((c as { why: string }).why, why, header);
    }
  });

  test('Bearer, missing and other schemes', () => {
    const token = generateToken();
    assert.deepEqual(parseAuthorization(`Bearer ${token}`), { kind: 'bearer', token });
    assert.deepEqual(parseAuthorization(`bearer   ${token}  `), { kind: 'bearer', token });
    assert.equal(parseAuthorization('Bearer').kind, 'malformed');
    assert.equal(parseAuthorization('Bearer a b').kind, 'malformed');
    assert.equal(parseAuthorization('Bearer ä').kind, 'malformed');
    assert.deepEqual(parseAuthorization(undefined), { kind: 'none' });
    assert.deepEqual(parseAuthorization('  '), { kind: 'none' });
    assert.deepEqual(parseAuthorization('Digest username="x"'), {
      kind: 'unsupported',
      scheme: 'digest',
    });
  });
});

describe('users and roles', () => {
  test('authenticate gives the role, the same with precomputed digests or a given comparison', () => {
    const conf = [
      { username: 'w', password: hashPassword('pw-w') },
      { username: 'r', password: hashPassword('pw-r').toUpperCase(), role: 'read' as const },
    ];
    for (const users of [new Users(conf), new Users(conf, (a, b) => constantTimeEqual(a, b))]) {
      assert.equal(users.authenticate('w', hashPassword('pw-w')), 'write');
      assert.equal(users.authenticate('r', hashPassword('pw-r')), 'read');
      assert.equal(users.authenticate('r', hashPassword('pw-w')), null);
      assert.equal(users.authenticate('x', hashPassword('pw-w')), null);
      assert.equal(users.authenticate('', ''), null);
      assert.ok(users.check('w', hashPassword('pw-w').toUpperCase()));
    }
  });
});

describe('what a request needs', () => {
  test('probes public, /metrics as configured, /models by method, anything else read', () => {
    const cases: [string, string, boolean, string][] = [
      ['/healthz', 'GET', true, 'public'],
      ['/readyz?x=1', 'HEAD', true, 'public'],
      ['/readyz', 'POST', true, 'public'],
      ['/metrics', 'GET', true, 'read'],
      ['/metrics', 'GET', false, 'public'],
      ['/models', 'GET', true, 'read'],
      ['/models', 'HEAD', true, 'read'],
      ['/models', 'OPTIONS', true, 'read'],
      ['/models', 'POST', true, 'write'],
      ['/models/7', 'PUT', true, 'write'],
      ['/models/7', 'DELETE', true, 'write'],
      ['/models/7?x', 'PATCH', true, 'write'],
      ['/models/7', 'GET', true, 'read'],
      ['/modelsx', 'POST', true, 'read'],
      ['/nothing', 'DELETE', true, 'read'],
      ['/', 'GET', true, 'public'],
      ['/console', 'GET', true, 'public'],
      ['/console/main.js?v=1', 'GET', true, 'public'],
      ['/consolex', 'GET', true, 'read'],
      ['/whoami', 'GET', true, 'read'],
    ];
    for (const [url, method, authMetrics, needed] of cases)
      assert.equal(requirementOf(url, method, authMetrics), needed, `${method} ${url}`);
  });
});

describe('tokens file', () => {
  const h1 = hashToken('t1');
  const h2 = hashToken('t2');

  test('comments, blank lines, CRLF and hex case are fine', () => {
    const entries = parseTokens(
      `# tokens\r\n\r\n${h1.toUpperCase()} read ci-reader\r\n  ${h2}\twrite  deploy@host  \n`,
      'f',
    );
    assert.deepEqual(entries, [
      { hash: h1, role: 'read', name: 'ci-reader' },
      { hash: h2, role: 'write', name: 'deploy@host' },
    ]);
  });

  test('each bad line is an error naming the file and the line', () => {
    const token = generateToken();
    const cases: [string, RegExp][] = [
      [`${h1} read`, /expected 3 fields/],
      [`${h1} read a b`, /expected 3 fields/],
      [`${h1.slice(1)} read a`, /SHA-256 hex of the token/],
      [`${token} read a`, /is a token itself/],
      [`${h1} admin a`, /role must be read or write, not 'admin'/],
      [`${h1} read bad/name`, /name must be/],
      [`${h1} read a\n${h1} write b`, /same token hash as line 2/],
      [`${h1} read a\n${h2} write a`, /name 'a' is already used on line 2/],
    ];
    for (const [body, why] of cases) {
      const text = `# header\n${body}\n`;
      assert.throws(
        () => parseTokens(text, '/etc/t'),
        (err: unknown) => {
          assert.ok(err instanceof TokensFileError);
          const line = body.includes('\n') ? 3 : 2;
          assert.equal(err.line, line, body);
          assert.ok(err.message.startsWith(`/etc/t:${line}: `), err.message);
          assert.match(err.message, why);
          assert.ok(!err.message.includes(token), 'the token is not echoed');
          return true;
        },
      );
    }
    assert.throws(() => readTokensFile(join(dir, 'missing')), /missing: cannot read \(ENOENT\)/);
  });

  test('a TokenFile follows its file; a bad change keeps the previous tokens', () => {
    const file = join(dir, 'tokens');
    const [a, b] = [generateToken(), generateToken()];
    writeFileSync(file, `${hashToken(a)} read a\n`);
    const tokens = new TokenFile(file);
    assert.deepEqual(tokens.lookup(a), { hash: hashToken(a), role: 'read', name: 'a' });
    assert.equal(tokens.lookup(b), null);
    assert.deepEqual(tokens.refresh(), { reloaded: false });

    writeFileSync(file, `${hashToken(b)} write b-longer-name\n`);
    assert.deepEqual(tokens.refresh(), { reloaded: true });
    assert.equal(tokens.lookup(a), null);
    assert.equal(tokens.lookup(b)?.role, 'write');

    writeFileSync(file, 'garbage\n');
    const bad = tokens.refresh();
    assert.equal(bad.reloaded, false);
    assert.match(bad.error?.message ?? '', /tokens:1: expected 3 fields/);
    assert.equal(tokens.lookup(b)?.role, 'write', 'the previous tokens stay');
    assert.deepEqual(tokens.refresh(), { reloaded: false }, 'reported once per change');
    assert.match(tokens.refresh(true).error?.message ?? '', /expected 3 fields/);

    unlinkSync(file);
    assert.match(tokens.refresh().error?.message ?? '', /cannot read \(ENOENT\)/);
    assert.equal(tokens.lookup(b)?.role, 'write');
    writeFileSync(file, '');
    assert.deepEqual(tokens.refresh(), { reloaded: true });
    assert.equal(tokens.size, 0, 'an empty file revokes every token');
  });
});

describe('HTTP control config rules', () => {
  const users = [{ username: 'u', password: hashPassword('p') }];
  const conf = (host: string, extra: Record<string, unknown> = {}) => ({
    module: 'aimm-store/controls/http',
    server: { host, port: 0 },
    ...extra,
  });
  const rules = (c: Record<string, unknown>) =>
    checkConf(c as never, '$.control[1]').map((i) => `${i.path} ${i.rule}`);

  test('loopback needs nothing; elsewhere authentication, then TLS or allow_plaintext', () => {
    const tokensFile = join(dir, 'ok-tokens');
    writeFileSync(tokensFile, '');
    assert.deepEqual(rules(conf('127.0.0.1')), []);
    assert.deepEqual(rules(conf('::1', { users })), []);
    assert.deepEqual(rules(conf('0.0.0.0')), ['$.control[1].server.host loopback']);
    assert.deepEqual(rules(conf('0.0.0.0', { allow_non_loopback: true })), [
      '$.control[1].server.host loopback',
    ]);
    assert.match(
      checkConf(conf('10.0.0.1', { allow_non_loopback: true }) as never)[0]?.message ?? '',
      /no authentication.*allow_non_loopback: true no longer exposes/,
    );
    assert.deepEqual(rules(conf('10.0.0.1', { users })), [
      '$.control[1].server.pem_file plaintext',
    ]);
    assert.deepEqual(rules(conf('10.0.0.1', { users: [] })), [
      '$.control[1].server.pem_file plaintext',
    ]);
    assert.deepEqual(rules(conf('10.0.0.1', { tokens_file: tokensFile })), [
      '$.control[1].server.pem_file plaintext',
    ]);
    assert.deepEqual(rules(conf('10.0.0.1', { users, allow_plaintext: true })), []);
    // The auth rules alone: the TLS rules would also read the (here missing) file.
    const withTls = conf('10.0.0.1', {
      users,
      server: { host: '10.0.0.1', port: 0, pem_file: '/etc/x.pem' },
    });
    assert.deepEqual(checkAuthConf(withTls as never), []);
    assert.deepEqual(rules(conf('10.0.0.1', { users, allow_non_loopback: true })), [
      '$.control[1].server.pem_file plaintext',
    ]);
  });

  test('a tokens file that cannot be used is a config error naming file and line', () => {
    const file = join(dir, 'bad-tokens');
    writeFileSync(file, `${hashToken('x')} read ok\nnot a token line at all\n`);
    const issues = checkConf(conf('127.0.0.1', { tokens_file: file }) as never, '$.control[0]');
    assert.equal(issues.length, 1);
    assert.equal(issues[0]?.path, '$.control[0].tokens_file');
    assert.equal(issues[0]?.rule, 'tokens_file');
    assert.match(issues[0]?.message ?? '', new RegExp(`^${file}:2: expected 3 fields`));
  });
});
