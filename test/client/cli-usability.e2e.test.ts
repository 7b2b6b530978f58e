/**
 * End to end, as a new user meets the CLI (issue 16): `aimm-store` client commands as child
 * processes against a daemon child process (sqlite backend, Juggler and HTTP on port 0, login
 * required). A stdout closed by its reader ends the output normally; `put` neither waits on a
 * terminal nor stores an empty model unasked; versions; "did you mean"; the login hint on every
 * command; wrong addresses (the HTTP port, a Hat chatter port) said as such.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { JugglerClient } from '../../src/client/index.js';
import { blobIoExtension } from '../../src/common/sqlite-blob-io.js';
import { DaemonProcess, MAIN, ROOT, runCli, tempDir, writeJson } from '../daemon/harness.js';
import { startChatterServer } from './servers.js';

const require = createRequire(import.meta.url);
const PASSWORD = 'secret';
const sha = (text: string) => createHash('sha256').update(text).digest('hex');

interface Closed {
  code: number | null;
  received: number;
  stderr: string;
}

/**
 * Runs the CLI with stdout on a pipe that this side closes after the first chunk, as `| head -1`
 * or `| head -c 10` do; the command must have more to write than the pipe holds.
 */
function runClosingStdout(args: string[], env: NodeJS.ProcessEnv): Promise<Closed> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let received = 0;
    let stderr = '';
    child.stdout.once('data', (chunk: Buffer) => {
      received = chunk.length;
      child.stdout.destroy();
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, received, stderr }));
  });
}

/** Runs `argv` with stdin on a pseudo-terminal (python3's pty), writing `typed` to it. */
function runOnTerminal(
  argv: string[],
  typed: string,
  env: NodeJS.ProcessEnv,
): { code: number; stdout: string; stderr: string } {
  const script = `
import json, os, pty, subprocess, sys
master, slave = pty.openpty()
p = subprocess.Popen(sys.argv[2:], stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
os.close(slave)
if sys.argv[1]:
    os.write(master, sys.argv[1].encode())
try:
    out, err = p.communicate(timeout=60)
except subprocess.TimeoutExpired:
    p.kill()
    out, err = p.communicate()
    err += b'\\n(still waiting after 60 s: killed)'
print(json.dumps({"code": p.returncode, "stdout": out.decode(), "stderr": err.decode()}))
`;
  const r = spawnSync('python3', ['-c', script, typed, process.execPath, MAIN, ...argv], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`python3 pty helper failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { code: number; stdout: string; stderr: string };
}

const hasPython = spawnSync('python3', ['-c', 'import pty'], { encoding: 'utf8' }).status === 0;

describe('aimm-store CLI: what a new user trips over', () => {
  const tmp = tempDir('aimm-cli-usability-');
  let daemon: DaemonProcess;
  let address: string;
  let httpPort: number;
  let login: string[];
  const env = { AIMM_STORE_PASSWORD: PASSWORD };

  before(async () => {
    const conf = writeJson(join(tmp.dir, 'config.json'), {
      name: 'cli-usability',
      backend: { module: 'aimm-store/backends/sqlite', path: join(tmp.dir, 'models.db') },
      control: [
        {
          module: 'aimm-store/controls/juggler',
          server: { host: '127.0.0.1', port: 0 },
          users: [{ username: 'admin', password: sha(PASSWORD) }],
        },
        { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } },
      ],
      log: { level: 'info' },
    });
    daemon = new DaemonProcess(['serve', '--conf', conf]);
    address = `ws://127.0.0.1:${await daemon.port('juggler')}/`;
    httpPort = await daemon.port('http');
    login = ['--address', address, '--user', 'admin'];
  });
  after(async () => {
    await daemon?.stop();
    tmp.cleanup();
  });

  test('a stdout closed early (| head) ends ls and get normally: exit 0, no EPIPE', async () => {
    const client = await JugglerClient.connect(address, { username: 'admin', password: PASSWORD });
    let bigId: number;
    try {
      // ls prints ~170 bytes a model: 2000 models are far more than a pipe holds.
      // (in batches: the daemon allows 32 requests in flight per connection)
      for (let i = 0; i < 2000; i += 25)
        await Promise.all(
          Array.from({ length: 25 }, (_, j) => client.put('many', Buffer.from(`m${i + j}`))),
        );
      bigId = (await client.put('big', Buffer.alloc(2 * 1024 * 1024, 7))).instanceId;
    } finally {
      await client.close();
    }
    const ls = await runClosingStdout(['ls', ...login], env);
    assert.equal(ls.code, 0, ls.stderr);
    assert.ok(ls.received > 0);
    assert.equal(ls.stderr, '');
    const get = await runClosingStdout(['get', String(bigId), ...login], env);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stderr, '');
    const meta = await runClosingStdout(['get', String(bigId), '--meta', ...login], env);
    assert.equal(meta.code, 0, meta.stderr);
  });

  test('put refuses an empty model unless --allow-empty', async () => {
    const empty = join(tmp.dir, 'empty.bin');
    writeFileSync(empty, '');
    const fromStdin = await runCli(['put', '--type', 't', ...login], { env, input: '' });
    assert.equal(fromStdin.code, 2, fromStdin.stderr);
    assert.match(fromStdin.stderr, /the model is empty \(0 bytes from stdin\).*--allow-empty/);
    const fromFile = await runCli(['put', '--type', 't', ...login, empty], { env });
    assert.equal(fromFile.code, 2);
    assert.match(fromFile.stderr, /0 bytes from .*empty\.bin/);
    const allowed = await runCli(['put', '--type', 't', '--allow-empty', ...login, '-'], {
      env,
      input: '',
    });
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.equal(JSON.parse(allowed.stdout).size, 0);
  });

  test('put without FILE on a terminal: a usage error at once; with - it reads the terminal', {
    skip: hasPython ? false : 'python3 with pty is needed to give the CLI a terminal',
  }, () => {
    const waiting = runOnTerminal(['put', '--type', 't', ...login], '', env);
    assert.equal(waiting.code, 2, waiting.stderr);
    assert.match(waiting.stderr, /no FILE given and stdin is a terminal/);
    const typed = runOnTerminal(['put', '--type', 't', ...login, '-'], 'typed\n\x04', env);
    assert.equal(typed.code, 0, typed.stderr);
    assert.match(typed.stderr, /reading the model from the terminal; end with Ctrl-D/);
    assert.equal(JSON.parse(typed.stdout).size, 'typed\n'.length);
  });

  test('--version, -V and version: package, Node, better-sqlite3 and SQLite; --help shows it', async () => {
    const pkg = require(join(ROOT, 'package.json')) as { version: string };
    const bsPkg = require('better-sqlite3/package.json') as { version: string };
    const Database = require('better-sqlite3') as new (
      f: string,
    ) => { prepare(s: string): { get(): { v: string } }; close(): void };
    const db = new Database(':memory:');
    const sqlite = db.prepare('SELECT sqlite_version() AS v').get().v;
    db.close();
    const expected = [
      `aimm-store ${pkg.version}`,
      `node ${process.versions.node}`,
      `better-sqlite3 ${bsPkg.version}`,
      `sqlite ${sqlite}`,
      `sqlite-blob-io ${blobIoExtension() === undefined ? 'not built (npm install builds it; large models take more memory)' : 'built'}`,
      '',
    ].join('\n');
    for (const args of [['--version'], ['-V'], ['version']]) {
      const r = await runCli(args);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, expected, args[0]);
    }
    const help = await runCli(['--help']);
    assert.equal(help.code, 0);
    assert.ok(help.stdout.startsWith(`aimm-store ${pkg.version}`), help.stdout);
    assert.match(help.stdout, /rm ID \[--expect-revision R\]/);
    assert.match(help.stdout, /--allow-empty/);
  });

  test('a mistyped option or command: did you mean', async () => {
    const cases: [string[], RegExp][] = [
      [['put', '--tpye', 'x', ...login], /unknown option --tpye; did you mean --type\?/],
      [['rm', '1', '--expect-revison', '1', ...login], /did you mean --expect-revision\?/],
      [['get', '1', '--adress', address], /unknown option --adress; did you mean --address\?/],
      [['ls', '--bogus'], /unknown option --bogus \(options: --address, --user/],
      [['get', '1', '-o'], /option -o, --output needs a value|option --output needs a value/],
      [['lss'], /unknown command 'lss'; did you mean ls\?/],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(args, { env });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr, /To specify a positional argument/);
    }
  });

  test('every command against a daemon that requires a login says to use --user', async () => {
    const commands: [string[], string][] = [
      [['ls'], ''],
      [['get', '1'], ''],
      [['get', '1', '--meta'], ''],
      [['rm', '1'], ''],
      [['put', '--type', 't'], 'x'],
      [['put', '--type', 't', '--id', '1', '--expect-revision', '1'], 'x'],
      [['watch'], ''],
    ];
    for (const [args, input] of commands) {
      const r = await runCli([...args, '--address', address], { input });
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(
        r.stderr,
        /the server requires a login: use --user NAME, with the password in AIMM_STORE_PASSWORD/,
        args.join(' '),
      );
    }
    const wrong = await runCli(['ls', ...login], { env: { AIMM_STORE_PASSWORD: 'wrong' } });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /login as 'admin' failed: check the user and the password/);
  });

  test('--address of the HTTP control: said to be HTTP, with the Juggler port expected', async () => {
    const r = await runCli(['ls', '--address', `127.0.0.1:${httpPort}`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${httpPort} answered with HTTP (302|404)`));
    assert.match(r.stderr, /HTTP control/);
    assert.match(r.stderr, /expected aimm-store's Juggler control/);
  });

  test('--address of a Hat chatter port: said to be Hat, not a 10 s handshake timeout', async () => {
    const hat = await startChatterServer();
    try {
      const r = await runCli(['ls', '--address', `127.0.0.1:${hat.port}`]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /speaks Hat's chatter protocol, not WebSocket/);
      assert.match(r.stderr, /eventer port/);
      assert.match(r.stderr, /expected aimm-store's Juggler control/);
      assert.doesNotMatch(r.stderr, /Opening handshake has timed out/);
    } finally {
      await hat.close();
    }
  });
});
