/**
 * The daemon as a child process with TLS on both controls: our CLI over wss:// with --ca, without
 * it (a clear failure), with --insecure (works, warns); curl --cacert against https /readyz; raw
 * model bytes over https; SIGHUP with a renewed certificate (an open connection goes on, a new one
 * sees the new certificate; a broken file keeps the current one); mutual TLS refusing a client
 * without a certificate; check-config on an unusable PEM file and on users without TLS.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { JugglerClient } from '../../src/client/index.js';
import { endpointsOf } from '../../src/daemon/daemon.js';
import { fingerprintOf, makeCert, makeTestPki, noOpenssl, type TestPki } from '../support/certs.js';
import { DaemonProcess, runCli, tempDir, writeJson } from './harness.js';

const skip = noOpenssl();
const T = { timeout: 60_000 };
const noCurl = (() => {
  try {
    execFileSync('curl', ['--version'], { stdio: 'ignore' });
    return false;
  } catch {
    return 'no curl command on this machine';
  }
})();

function servedFingerprint(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.end();
    });
    s.on('error', reject);
  });
}

function httpsGet(url: string, ca: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    get(url, { ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}

function curl(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('curl', ['-sS', '--max-time', '10', ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Started {
  daemon: DaemonProcess;
  juggler: number;
  http: number;
}

async function startDaemon(
  dir: string,
  name: string,
  tls: Record<string, string>,
): Promise<Started> {
  const conf = writeJson(join(dir, `${name}.json`), {
    name,
    backend: { module: 'aimm-store/backends/sqlite', path: join(dir, `${name}.db`) },
    control: [
      { module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 0, ...tls } },
      { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0, ...tls } },
    ],
    log: { level: 'info' },
  });
  const daemon = new DaemonProcess(['serve', '--conf', conf]);
  await daemon.waitForMsg('ready');
  return { daemon, juggler: await daemon.port('juggler'), http: await daemon.port('http') };
}

describe('daemon with TLS on both controls', { skip }, () => {
  const { dir, cleanup } = tempDir('aimm-tls-e2e-');
  let pki: TestPki;
  let ca: Buffer;
  let live: string;
  let d: Started;
  let wss: string;
  before(async () => {
    pki = makeTestPki(dir);
    ca = readFileSync(pki.ca.cert);
    live = join(dir, 'live.pem');
    copyFileSync(pki.server.pem, live);
    d = await startDaemon(dir, 'tls', { pem_file: live });
    wss = `wss://127.0.0.1:${d.juggler}/`;
  });
  after(async () => {
    await d?.daemon.stop();
    cleanup();
  });

  test('the listening lines give wss:// and https:// URLs', T, () => {
    const listening = d.daemon.lines.filter((l) => l.msg === 'listening');
    const urls = listening.map((l) => l.url).sort();
    assert.deepEqual(urls, [`https://127.0.0.1:${d.http}/`, wss]);
    for (const l of listening) assert.equal(l.tls, true);
  });

  test('the CLI over wss:// with --ca: put and get', T, async () => {
    const put = await runCli(['put', '--address', wss, '--ca', pki.ca.cert, '--type', 't.M', '-'], {
      input: 'over tls',
    });
    assert.equal(put.code, 0, put.stderr);
    const id = JSON.parse(put.stdout).instance_id as number;
    const got = await runCli(['get', String(id), '--address', wss, '--ca', pki.ca.cert]);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(got.stdout, 'over tls');
    // The HTTP control serves the same bytes over https.
    const r = await httpsGet(`https://127.0.0.1:${d.http}/models/${id}`, ca);
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'over tls');
  });

  test('the CLI without --ca fails saying the certificate is not trusted', T, async () => {
    const r = await runCli(['ls', '--address', wss]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^aimm-store ls: cannot connect to wss:\/\/127\.0\.0\.1:\d+\/: the server's TLS certificate is not trusted/,
    );
    assert.match(r.stderr, /--ca FILE/);
  });

  test('the CLI with --insecure works and warns', T, async () => {
    const r = await runCli(['ls', '--address', wss, '--insecure']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /aimm-store ls: warning: --insecure: the server's certificate is not verified/,
    );
  });

  test('TLS options need a wss:// address; an unreadable --ca is a usage error', T, async () => {
    let r = await runCli(['ls', '--address', `ws://127.0.0.1:${d.juggler}/`, '--ca', pki.ca.cert]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--ca needs a wss:\/\/ or https:\/\/ address/);
    r = await runCli(['ls', '--address', wss, '--ca', join(dir, 'nope.crt')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--ca '.*nope\.crt' cannot be read \(ENOENT\)/);
  });

  test('curl --cacert against https /readyz', { ...T, skip: noCurl }, () => {
    const ok = curl(['--cacert', pki.ca.cert, `https://127.0.0.1:${d.http}/readyz`]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /"ready":true/);
    // Without the CA, curl refuses the certificate (exit 60: peer certificate cannot be authenticated).
    assert.equal(curl([`https://127.0.0.1:${d.http}/readyz`]).code, 60);
  });

  test('SIGHUP: a renewed certificate for new connections; an open one goes on', T, async () => {
    const open = await JugglerClient.connect(wss, { tls: { ca } });
    try {
      await open.list();
      assert.equal(await servedFingerprint(d.juggler, ca), fingerprintOf(pki.server.cert));
      const renewed = makeCert(dir, pki.ca, 'renewed', { cn: 'server' });
      writeFileSync(live, readFileSync(renewed.pem));
      const mark = d.daemon.lines.length;
      const after = (msg: string, control: string) =>
        d.daemon.waitFor(
          (l) => l.msg === msg && l.control === control && d.daemon.lines.indexOf(l) >= mark,
        );
      d.daemon.kill('SIGHUP');
      const lines = [
        await after('SIGHUP: TLS files reloaded', '$.control[0]'),
        await after('SIGHUP: TLS files reloaded', '$.control[1]'),
      ];
      const want = fingerprintOf(renewed.cert);
      for (const l of lines)
        assert.equal((l.certificate as { fingerprint256: string }).fingerprint256, want);
      assert.equal(await servedFingerprint(d.juggler, ca), want);
      assert.equal(await servedFingerprint(d.http, ca), want);
      // The connection from before the reload still works.
      await open.put('t.M', new Uint8Array([1]));

      // A broken file on SIGHUP: an error, and the current certificate stays.
      writeFileSync(live, readFileSync(pki.server.cert));
      const mark2 = d.daemon.lines.length;
      d.daemon.kill('SIGHUP');
      const failed = await d.daemon.waitFor(
        (l) =>
          l.msg === 'SIGHUP: TLS reload failed; the control keeps its current certificate' &&
          d.daemon.lines.indexOf(l) >= mark2,
      );
      assert.match(String(failed.error), /live\.pem' has no private key/);
      assert.equal(await servedFingerprint(d.juggler, ca), want);
      await open.list();
    } finally {
      writeFileSync(live, readFileSync(pki.server.pem));
      await open.close();
    }
  });
});

describe('daemon with mutual TLS', { skip }, () => {
  const { dir, cleanup } = tempDir('aimm-mtls-e2e-');
  let pki: TestPki;
  let d: Started;
  let wss: string;
  before(async () => {
    pki = makeTestPki(dir);
    d = await startDaemon(dir, 'mtls', { pem_file: pki.server.pem, ca_file: pki.ca.cert });
    wss = `wss://127.0.0.1:${d.juggler}/`;
  });
  after(async () => {
    await d?.daemon.stop();
    cleanup();
  });

  test('the CLI without a client certificate is refused; with --cert it works', T, async () => {
    const refused = await runCli(['ls', '--address', wss, '--ca', pki.ca.cert]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /client certificate/);
    assert.match(refused.stderr, /--cert FILE/);
    const ok = await runCli([
      'ls',
      '--address',
      wss,
      '--ca',
      pki.ca.cert,
      '--cert',
      pki.client.pem,
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const mutual = d.daemon.lines.filter((l) => l.msg === 'listening').map((l) => l.mutual_tls);
    assert.deepEqual(mutual, [true, true]);
  });

  test('curl: no client certificate refused, with one /readyz answers', {
    ...T,
    skip: noCurl,
  }, () => {
    const url = `https://127.0.0.1:${d.http}/readyz`;
    assert.notEqual(curl(['--cacert', pki.ca.cert, url]).code, 0);
    const ok = curl(['--cacert', pki.ca.cert, '--cert', pki.client.pem, url]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /"ready":true/);
  });
});

describe('check-config and TLS', { skip }, () => {
  const { dir, cleanup } = tempDir('aimm-tls-check-');
  after(cleanup);

  test('an unusable pem_file and users without TLS are config errors (exit 2)', T, async () => {
    const pki = makeTestPki(dir);
    const conf = writeJson(join(dir, 'bad.json'), {
      backend: { module: 'aimm-store/backends/sqlite', path: join(dir, 'never.db') },
      control: [
        {
          module: 'aimm-store/controls/juggler',
          server: { host: '10.0.0.1', port: 9950 },
          users: [{ username: 'a', password: 'a'.repeat(64) }],
        },
        {
          module: 'aimm-store/controls/http',
          server: { host: '127.0.0.1', port: 9951, pem_file: pki.server.cert },
        },
      ],
    });
    const r = await runCli(['check-config', '--conf', conf]);
    assert.equal(r.code, 2);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 2, r.stderr);
    assert.match(
      lines[0] ?? '',
      /bad\.json: \$\.control\[0\]\.server\.pem_file: is required when users log in on a non-loopback host \('10\.0\.0\.1'\).* \(rule: plaintext_login\)$/,
    );
    assert.match(
      lines[1] ?? '',
      /bad\.json: \$\.control\[1\]\.server\.pem_file: '.*server\.crt' has no private key .* \(rule: tls\)$/,
    );
  });
});

test('published endpoints: wss:// and https:// for controls with TLS', () => {
  const loaded = [
    { conf: { module: 'aimm-store/controls/juggler' }, module: {} as never, path: '$.control[0]' },
    { conf: { module: 'aimm-store/controls/http' }, module: {} as never, path: '$.control[1]' },
  ];
  const control = (port: number, secure: boolean) => ({
    address: { host: '10.0.0.5', port },
    secure,
    close: async () => {},
  });
  assert.deepEqual(endpointsOf(loaded, [control(9950, true), control(9951, true)]), {
    juggler: 'wss://10.0.0.5:9950/',
    http: 'https://10.0.0.5:9951/',
  });
  assert.deepEqual(endpointsOf(loaded, [control(9950, false), control(9951, false)]), {
    juggler: 'ws://10.0.0.5:9950/',
    http: 'http://10.0.0.5:9951/',
  });
});
