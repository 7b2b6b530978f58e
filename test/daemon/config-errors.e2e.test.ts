/**
 * What a new user trips over in `serve` and `check-config` (issue 16), as child processes: config
 * errors that say how to fix them, usage errors that guess the option, and `check-config` failing
 * on what `serve` fails on (an unreadable token file), so that a config that passes does not exit 2
 * under systemd.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { runCli, tempDir } from './harness.js';

const { dir, cleanup } = tempDir('aimm-config-errors-');
after(cleanup);

const T = { timeout: 30_000 };

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const TYPOS = `backend:
  module: aimm-store/backends/event
  model_prefix: [aimm, model]
  ack: regstered
hat:
  eventer_server: 127.0.0.1:23012
control:
  - module: aimm-store/controls/juggler
    server: { host: 127.0.0.1, port: 0 }
    users:
      - username: admin
        password: admin
log:
  level: verbose
`;

describe('serve and check-config say how to fix a config', () => {
  for (const command of ['check-config', 'serve']) {
    test(`${command}: enums, an address as a string, a clear-text password`, T, async () => {
      const conf = file(`typos-${command}.yaml`, TYPOS);
      const res = await runCli([command, '--conf', conf], { cwd: dir });
      assert.equal(res.code, 2, res.stderr);
      assert.deepEqual(res.stderr.trim().split('\n').sort(), [
        `${conf}: $.backend.ack: must be one of 'registered', 'persisted', not 'regstered'; did you mean 'registered'? (rule: enum)`,
        `${conf}: $.control[0].users[0].password: must be the SHA-256 of the password in hex (64 hex digits), not the password itself: printf %s 'the password' | sha256sum (rule: pattern)`,
        `${conf}: $.hat.eventer_server: an address is {host, port} (or a list of them, in fail-over order), not a string: write {host: 127.0.0.1, port: 23012} (rule: type)`,
        `${conf}: $.log.level: must be one of 'trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent', not 'verbose' (rule: enum)`,
      ]);
    });
  }

  test('a mistyped option gets the nearest one', T, async () => {
    const typo = await runCli(['serve', '--cnof', 'x.yaml'], { cwd: dir });
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /^aimm-store serve: unknown option --cnof; did you mean --conf\?\n/);
    const other = await runCli(['check-config', '--verbose'], { cwd: dir });
    assert.equal(other.code, 2);
    assert.match(other.stderr, /unknown option --verbose \(options: --conf FILE, --help\)/);
    const bare = await runCli(['serve', 'my.yaml'], { cwd: dir });
    assert.equal(bare.code, 2);
    assert.match(
      bare.stderr,
      /unexpected argument 'my\.yaml' \(give the config file as --conf my\.yaml\)/,
    );
  });
});

describe('check-config fails on what serve fails on', () => {
  test('an unreadable hat.client_token_file: exit 2 from both, the same line', T, async () => {
    const conf = file(
      'token.yaml',
      `backend:
  module: aimm-store/backends/event
  model_prefix: [aimm, model]
hat:
  eventer_server: {host: 127.0.0.1, port: 23012}
  client_token_file: ${join(dir, 'no-such-token')}
control: []
`,
    );
    const expected = `${conf}: $.hat.client_token_file: cannot read (ENOENT) (rule: file)\n`;
    const check = await runCli(['check-config', '--conf', conf], { cwd: dir });
    assert.deepEqual([check.code, check.stdout, check.stderr], [2, '', expected]);
    const serve = await runCli(['serve', '--conf', conf], { cwd: dir });
    assert.deepEqual([serve.code, serve.stderr], [2, expected]);
    // With the file in place, both accept it (check-config says so, serve would connect).
    writeFileSync(join(dir, 'no-such-token'), 'secret\n');
    const ok = await runCli(['check-config', '--conf', conf], { cwd: dir });
    assert.equal(ok.code, 0, ok.stderr);
  });
});
