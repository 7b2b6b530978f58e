/**
 * Authentication and roles end to end, the daemon as a child process: the HTTP control's matrix
 * (no, wrong, malformed, read and write credentials, users and tokens, on every route and method),
 * its challenges and metrics, tokens made by `aimm-store token create` and followed as the file
 * changes and on SIGHUP, a read user on the Juggler control, and the config refusals of
 * `check-config`. No secret may reach the log.
 */
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { JugglerClient, RequestFailedError } from '../../src/client/index.js';
import { hashPassword } from '../../src/controls/juggler/auth.js';
import { makeTestPki, noOpenssl } from '../support/certs.js';
import {
  DaemonProcess,
  type HttpResult,
  httpRequest,
  runCli,
  tempDir,
  until,
  writeJson,
} from './harness.js';

const T = { timeout: 60_000 };
const { dir, cleanup } = tempDir('aimm-auth-e2e-');
after(cleanup);
const tokensFile = join(dir, 'tokens');
const PASSWORDS = { writer: 'wr1te:r pässword', reader: 'read-only' };

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;

/** A token from `aimm-store token create`, appended to the tokens file. */
async function createToken(role: string, name: string): Promise<string> {
  const r = await runCli(['token', 'create', '--role', role, '--name', name, '--file', tokensFile]);
  assert.equal(r.code, 0, r.stderr);
  const token = r.stdout.trim();
  assert.match(token, /^aimm_[A-Za-z0-9_-]{43}$/);
  assert.ok(!readFileSync(tokensFile, 'utf8').includes(token), 'only the hash is stored');
  return token;
}

describe('HTTP authentication and roles (daemon)', () => {
  let daemon: DaemonProcess;
  let http: number;
  let juggler: number;
  const tokens: Record<string, string> = {};

  before(async () => {
    tokens.read = await createToken('read', 'ci-reader');
    tokens.write = await createToken('write', 'deployer');
    const users = [
      { username: 'writer', password: hashPassword(PASSWORDS.writer) },
      { username: 'reader', password: hashPassword(PASSWORDS.reader), role: 'read' },
    ];
    const conf = writeJson(join(dir, 'conf.json'), {
      name: 'auth-test',
      backend: { module: 'aimm-store/backends/sqlite', path: join(dir, 'models.db') },
      control: [
        { module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 0 }, users },
        {
          module: 'aimm-store/controls/http',
          server: { host: '127.0.0.1', port: 0 },
          users,
          tokens_file: tokensFile,
        },
      ],
      log: { level: 'debug' },
    });
    daemon = new DaemonProcess(['serve', '--conf', conf]);
    await daemon.waitForMsg('ready');
    http = await daemon.port('http');
    juggler = await daemon.port('juggler');
    const client = await JugglerClient.connect(`ws://127.0.0.1:${juggler}/`, {
      username: 'writer',
      password: PASSWORDS.writer,
    });
    await client.put('text.Model', Buffer.from('hello'));
    await client.close();
  });
  after(async () => {
    await daemon?.stop();
  });

  const req = (path: string, method: string, authorization?: string): Promise<HttpResult> =>
    httpRequest(http, path, {
      method,
      headers: authorization === undefined ? {} : { Authorization: authorization },
    });

  type Who = 'none' | 'wrong' | 'malformed' | 'bad_token' | 'read' | 'write';
  const credentials = (): [string, Who, string | undefined][] => [
    ['no credentials', 'none', undefined],
    ['a wrong password', 'wrong', basic('writer', 'nope')],
    ['an unknown user', 'wrong', basic('nobody', PASSWORDS.writer)],
    ['a malformed header', 'malformed', 'Basic %%%'],
    ['an unknown token', 'bad_token', 'Bearer aimm_not-a-known-token'],
    ['the read user', 'read', basic('reader', PASSWORDS.reader)],
    ['the write user', 'write', basic('writer', PASSWORDS.writer)],
    ['the read token', 'read', `Bearer ${tokens.read}`],
    ['the write token', 'write', `Bearer ${tokens.write}`],
  ];

  /** What the control must answer, by who asks, the route's need and the status once through. */
  function expected(who: Who, need: 'public' | 'read' | 'write', through: number): number {
    if (need === 'public') return through;
    if (who === 'read' || who === 'write')
      return need === 'write' && who === 'read' ? 403 : through;
    return 401;
  }

  const routes: [
    method: string,
    path: string,
    need: 'public' | 'read' | 'write',
    through: number,
  ][] = [
    ['GET', '/healthz', 'public', 200],
    ['HEAD', '/healthz', 'public', 200],
    ['GET', '/readyz', 'public', 200],
    ['HEAD', '/readyz', 'public', 200],
    ['POST', '/healthz', 'public', 405],
    ['GET', '/metrics', 'read', 200],
    ['HEAD', '/metrics', 'read', 200],
    ['GET', '/models', 'read', 200],
    ['HEAD', '/models', 'read', 200],
    ['GET', '/models/1', 'read', 200],
    ['HEAD', '/models/1', 'read', 200],
    ['GET', '/models/2', 'read', 404],
    ['GET', '/models/x', 'read', 400],
    ['OPTIONS', '/models', 'read', 405],
    ['GET', '/nothing', 'read', 404],
    // Authorized writes reach the write API: no type → 400; an unknown model → 404 (model 1,
    // which later tests read, is never changed here).
    ['POST', '/models', 'write', 400],
    ['PUT', '/models/1', 'write', 400],
    ['DELETE', '/models/999', 'write', 404],
  ];

  test('every route and method, for every kind of credentials', T, async () => {
    const failures: string[] = [];
    for (const [label, who, authorization] of credentials()) {
      for (const [method, path, need, through] of routes) {
        const res = await req(path, method, authorization);
        const want = expected(who, need, through);
        if (res.status !== want)
          failures.push(`${method} ${path} with ${label}: ${res.status}, expected ${want}`);
        if (res.status === 401 || res.status === 403) {
          assert.match(String(res.headers['content-type']), /^application\/json/);
          if (method !== 'HEAD') {
            const body = JSON.parse(res.body.toString()) as { error: string; code: string };
            assert.equal(body.code, res.status === 401 ? 'unauthorized' : 'forbidden');
            assert.equal(typeof body.error, 'string');
          }
        }
      }
    }
    assert.deepEqual(failures, []);
  });

  test('a 401 challenges for Basic (UTF-8) and Bearer, and names what was wrong', T, async () => {
    const none = await req('/models', 'GET');
    assert.equal(none.status, 401);
    // Two header lines, which Node's client joins with ', '.
    assert.equal(
      none.headers['www-authenticate'],
      'Basic realm="aimm-store", charset="UTF-8", Bearer realm="aimm-store"',
    );
    assert.deepEqual(JSON.parse(none.body.toString()), {
      error: 'authentication required',
      code: 'unauthorized',
    });
    const badToken = await req('/models', 'GET', 'Bearer aimm_nope');
    assert.match(
      String(badToken.headers['www-authenticate']),
      /, Bearer realm="aimm-store", error="invalid_token"$/,
    );
    const digest = await req('/models', 'GET', 'Digest username="x"');
    assert.match(
      JSON.parse(digest.body.toString()).error,
      /unsupported .*'digest'.*Basic or Bearer/,
    );
    const forbidden = await req('/models/1', 'DELETE', `Bearer ${tokens.read}`);
    assert.deepEqual(JSON.parse(forbidden.body.toString()), {
      error: "forbidden: DELETE /models/1 needs the role write; token 'ci-reader' has read",
      code: 'forbidden',
    });
    const model = await req('/models/1', 'GET', basic('reader', PASSWORDS.reader));
    assert.equal(model.body.toString(), 'hello');
  });

  test('refusals are counted by reason in the metrics', T, async () => {
    const metrics = async () =>
      (await req('/metrics', 'GET', `Bearer ${tokens.read}`)).body.toString();
    const count = (text: string, reason: string) =>
      Number(
        new RegExp(`aimm_store_http_auth_failures_total\\{reason="${reason}"\\} (\\d+)`).exec(
          text,
        )?.[1] ?? 0,
      );
    const before = await metrics();
    await req('/models', 'GET');
    await req('/models', 'GET', basic('writer', 'x'));
    await req('/models', 'GET', basic('writer', 'y'));
    await req('/models', 'GET', 'Basic ???');
    await req('/models', 'GET', 'Bearer aimm_unknown');
    await req('/models', 'GET', 'Negotiate abc');
    await req('/models', 'POST', basic('reader', PASSWORDS.reader));
    const after = await metrics();
    const delta = (reason: string) => count(after, reason) - count(before, reason);
    assert.deepEqual(
      ['missing', 'bad_password', 'malformed', 'bad_token', 'unsupported_scheme', 'forbidden'].map(
        delta,
      ),
      [1, 2, 1, 1, 1, 1],
    );
  });

  test(
    'tokens follow the file: added, revoked, a bad edit keeps them, SIGHUP re-reads',
    T,
    async () => {
      const fresh = await createToken('read', 'fresh');
      assert.equal((await req('/models', 'GET', `Bearer ${fresh}`)).status, 200);
      await daemon.waitFor((l) => l.msg === 'tokens reloaded' && l.tokens === 3);

      // Revoke 'fresh' by removing its line.
      const lines = readFileSync(tokensFile, 'utf8').split('\n');
      writeFileSync(tokensFile, lines.filter((l) => !l.endsWith(' fresh')).join('\n'));
      assert.equal((await req('/models', 'GET', `Bearer ${fresh}`)).status, 401);

      // A broken line: the previous tokens stay, the error names the file and the line.
      appendFileSync(tokensFile, '\nnot a token line\n');
      assert.equal((await req('/models', 'GET', `Bearer ${tokens.read}`)).status, 200);
      const err = await daemon.waitFor(
        (l) => typeof l.msg === 'string' && l.msg.startsWith('tokens file not reloaded'),
      );
      assert.match(String(err.msg), new RegExp(`${tokensFile}:\\d+: expected 3 fields`));

      writeFileSync(tokensFile, lines.filter((l) => !l.endsWith(' fresh')).join('\n'));
      const reloads = daemon.lines.filter((l) => l.msg === 'tokens reloaded').length;
      daemon.kill('SIGHUP');
      await until(
        'the SIGHUP reload',
        async () => daemon.lines.filter((l) => l.msg === 'tokens reloaded').length > reloads,
      );
      assert.equal((await req('/models', 'GET', `Bearer ${tokens.write}`)).status, 200);
      assert.equal((await req('/healthz', 'GET')).status, 200, 'still running after SIGHUP');
    },
  );

  test('Juggler: a read user reads; its writes are refused with forbidden', T, async () => {
    const url = `ws://127.0.0.1:${juggler}/`;
    const reader = await JugglerClient.connect(url, {
      username: 'reader',
      password: PASSWORDS.reader,
    });
    try {
      assert.equal((await reader.list()).length, 1);
      assert.equal(Buffer.from((await reader.get(1)).instance).toString(), 'hello');
      for (const write of [
        () => reader.put('text.Model', Buffer.from('x')),
        () => reader.put('text.Model', Buffer.from('x'), { instanceId: 1 }),
        () => reader.remove(1),
      ]) {
        await assert.rejects(write, (err: unknown) => {
          assert.ok(err instanceof RequestFailedError);
          assert.equal(err.code, 'forbidden');
          return true;
        });
      }
      assert.equal((await reader.getMeta(1)).revision, 1);
    } finally {
      await reader.close();
    }
  });

  test('no password, hash or token in the log', T, () => {
    const log = daemon.stdout + daemon.stderr;
    for (const secret of [
      PASSWORDS.writer,
      PASSWORDS.reader,
      hashPassword(PASSWORDS.writer),
      hashPassword(PASSWORDS.reader),
      tokens.read as string,
      tokens.write as string,
      Buffer.from(`writer:${PASSWORDS.writer}`).toString('base64'),
    ])
      assert.ok(!log.includes(secret), `the log holds ${secret.slice(0, 12)}...`);
    assert.ok(
      daemon.lines.some((l) => l.msg === 'http request refused' && l.reason === 'bad_password'),
    );
  });
});

describe('check-config: where the HTTP control may listen, and its tokens file', () => {
  const sqlite = { module: 'aimm-store/backends/sqlite', path: join(dir, 'never', 'models.db') };
  const users = [{ username: 'u', password: hashPassword('p') }];
  const httpOn = (host: string, extra: Record<string, unknown> = {}) => ({
    module: 'aimm-store/controls/http',
    server: { host, port: 0 },
    ...extra,
  });
  let n = 0;
  const check = async (control: unknown[]) => {
    const file = writeJson(join(dir, `check-${++n}.json`), { backend: sqlite, control });
    return { file, ...(await runCli(['check-config', '--conf', file])) };
  };

  const refusals: [string, unknown, string, string][] = [
    ['no authentication off loopback', httpOn('0.0.0.0'), '$.control[0].server.host', 'loopback'],
    [
      'allow_non_loopback without authentication',
      httpOn('0.0.0.0', { allow_non_loopback: true }),
      '$.control[0].server.host',
      'loopback',
    ],
    [
      'authentication without TLS off loopback',
      httpOn('0.0.0.0', { users }),
      '$.control[0].server.pem_file',
      'plaintext',
    ],
    [
      'a role that does not exist',
      httpOn('127.0.0.1', { users: [{ ...users[0], role: 'admin' }] }),
      '$.control[0].users[0].role',
      'enum',
    ],
    [
      'a user name with a colon',
      httpOn('127.0.0.1', { users: [{ ...users[0], username: 'a:b' }] }),
      '$.control[0].users[0].username',
      'pattern',
    ],
  ];
  for (const [name, control, path, rule] of refusals) {
    test(`exit 2: ${name}`, T, async () => {
      const r = await check([control]);
      assert.equal(r.code, 2, r.stderr);
      assert.ok(
        r.stderr
          .split('\n')
          .some((l) => l.startsWith(`${r.file}: ${path}: `) && l.endsWith(`(rule: ${rule})`)),
        r.stderr,
      );
    });
  }

  test('exit 2: a tokens file with a bad line, named with its line', T, async () => {
    const bad = join(dir, 'bad-tokens');
    writeFileSync(bad, '# ok\nsomething else\n');
    const r = await check([httpOn('127.0.0.1', { tokens_file: bad })]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `\\$\\.control\\[0\\]\\.tokens_file: ${bad}:2: expected 3 fields .*\\(rule: tokens_file\\)`,
      ),
    );
  });

  test('accepted: off loopback with authentication and allow_plaintext, or a pem_file', {
    ...T,
    skip: noOpenssl(),
  }, async () => {
    const pki = makeTestPki(dir);
    for (const extra of [
      { allow_plaintext: true },
      { server: { host: '0.0.0.0', port: 0, pem_file: pki.server.pem } },
    ]) {
      const r = await check([httpOn('0.0.0.0', { users, ...extra })]);
      assert.equal(r.code, 0, r.stderr);
    }
  });
});

describe('token create and hash-password', () => {
  test('hash-password: from the environment or stdin, never an argument', T, async () => {
    const want = `${hashPassword('pä:ss')}\n`;
    const env = await runCli(['hash-password'], { env: { AIMM_STORE_PASSWORD: 'pä:ss' } });
    assert.deepEqual([env.code, env.stdout], [0, want]);
    const stdin = await runCli(['hash-password'], {
      env: { AIMM_STORE_PASSWORD: undefined },
      input: 'pä:ss\n',
    });
    assert.deepEqual([stdin.code, stdin.stdout], [0, want]);
    const arg = await runCli(['hash-password', 'secret']);
    assert.equal(arg.code, 2);
    assert.match(arg.stderr, /never an argument/);
  });

  test('token create: usage errors, and a file it will not append to', T, async () => {
    const file = join(dir, 'cli-tokens');
    const usage: [string[], RegExp][] = [
      [['token'], /a subcommand is required/],
      [['token', 'create', '--name', 'x'], /--role must be read or write/],
      [['token', 'create', '--role', 'admin', '--name', 'x'], /not 'admin'/],
      [['token', 'create', '--role', 'read'], /--name NAME is required/],
      [['token', 'create', '--role', 'read', '--name', 'a b'], /--name must be/],
      [['token', 'create', '--role', 'read', '--name', 'x', '--rol', 'y'], /unknown option/],
    ];
    for (const [args, why] of usage) {
      const r = await runCli(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, why);
      assert.equal(r.stdout, '', 'no token printed');
    }
    writeFileSync(file, `${hashPassword('x')} read taken`); // no final newline
    const taken = await runCli([
      'token',
      'create',
      '--role',
      'read',
      '--name',
      'taken',
      '--file',
      file,
    ]);
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /the name 'taken' is already used/);
    assert.equal(taken.stdout, '');
    const ok = await runCli([
      'token',
      'create',
      '--role',
      'write',
      '--name',
      'new',
      '--file',
      file,
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const lines = readFileSync(file, 'utf8').split('\n');
    assert.equal(lines.length, 3, 'appended on a line of its own');
    assert.match(lines[1] as string, /^[0-9a-f]{64} write new$/);
    writeFileSync(file, 'broken line\n');
    const broken = await runCli([
      'token',
      'create',
      '--role',
      'read',
      '--name',
      'n',
      '--file',
      file,
    ]);
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, new RegExp(`${file}:1: expected 3 fields`));
    const printOnly = await runCli(['token', 'create', '--role', 'read', '--name', 'n']);
    assert.equal(printOnly.code, 0);
    assert.match(printOnly.stderr, /add this line .*\n[0-9a-f]{64} read n\n$/);
  });
});
