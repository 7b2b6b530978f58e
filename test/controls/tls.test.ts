/**
 * The controls' TLS loader (src/controls/tls.ts): what it accepts, and for each unusable PEM or CA
 * file the config issue (path, rule, message naming the file and what is wrong); the HTTP control's
 * checkConf carries them at the `server` section's path. Certificates from the system's openssl.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { checkConf as checkHttpConf } from '../../src/controls/http.js';
import { checkTlsConf, loadTls, TlsFileError } from '../../src/controls/tls.js';
import { tempDir } from '../daemon/harness.js';
import { fingerprintOf, makeCert, makeTestPki, noOpenssl, type TestPki } from '../support/certs.js';

const skip = noOpenssl();

describe('TLS files of the controls', { skip }, () => {
  const { dir, cleanup } = tempDir('aimm-tls-unit-');
  let pki: TestPki;
  const file = (name: string, body: string) => {
    const p = join(dir, name);
    writeFileSync(p, body);
    return p;
  };
  const read = (p: string) => readFileSync(p, 'utf8');
  before(() => {
    pki = makeTestPki(dir);
  });
  after(cleanup);

  /** The one issue of `server` at `$.control[0].server`: [path, rule, message]. */
  function issue(server: { pem_file?: string; ca_file?: string }): [string, string, string] {
    const issues = checkTlsConf(server, '$.control[0].server');
    assert.equal(issues.length, 1, JSON.stringify(issues));
    const i = issues[0] as { path: string; rule: string; message: string };
    return [i.path, i.rule, i.message];
  }

  test('a certificate and its key load, with the certificate described for the logs', () => {
    const m = loadTls({ pem_file: pki.server.pem });
    assert.equal(m.mutual, false);
    assert.equal(m.info.fingerprint256, fingerprintOf(pki.server.cert));
    assert.match(m.info.subject, /CN=server/);
    assert.deepEqual(m.warnings, []);
    assert.deepEqual(checkTlsConf({ pem_file: pki.server.pem }, '$'), []);
    // Key first, then the certificate: order within the file does not matter for these two.
    const keyFirst = file('key-first.pem', read(pki.server.key) + read(pki.server.cert));
    assert.deepEqual(checkTlsConf({ pem_file: keyFirst }, '$'), []);
    // With a CA file: mutual TLS.
    assert.equal(loadTls({ pem_file: pki.server.pem, ca_file: pki.ca.cert }).mutual, true);
    // No TLS keys: nothing to check.
    assert.deepEqual(checkTlsConf({}, '$'), []);
  });

  test('a missing file', () => {
    const [path, rule, message] = issue({ pem_file: join(dir, 'nope.pem') });
    assert.equal(path, '$.control[0].server.pem_file');
    assert.equal(rule, 'tls');
    assert.match(message, /nope\.pem' does not exist/);
  });

  test('a folder', () => {
    assert.match(issue({ pem_file: dir })[2], /is a folder, not a PEM file/);
  });

  test('no certificate', () => {
    const [path, , message] = issue({ pem_file: pki.server.key });
    assert.equal(path, '$.control[0].server.pem_file');
    assert.match(
      message,
      /server\.key' has no certificate \(no -----BEGIN CERTIFICATE----- block\)/,
    );
    assert.match(issue({ pem_file: file('empty.pem', '') })[2], /has no certificate/);
  });

  test('no private key', () => {
    assert.match(
      issue({ pem_file: pki.server.cert })[2],
      /server\.crt' has no private key .*append the key to the certificate chain/,
    );
  });

  test('an encrypted private key', () => {
    const encrypted = join(dir, 'encrypted.key');
    execFileSync('openssl', [
      'pkey',
      '-in',
      pki.server.key,
      '-aes256',
      '-passout',
      'pass:secret',
      '-out',
      encrypted,
    ]);
    const pem = file('encrypted.pem', read(pki.server.cert) + read(encrypted));
    assert.match(issue({ pem_file: pem })[2], /encrypted \(password-protected\) private key/);
  });

  test('a key that is not the certificate’s', () => {
    const pem = file('mismatch.pem', read(pki.server.cert) + read(pki.client.key));
    assert.match(
      issue({ pem_file: pem })[2],
      /mismatch\.pem' has a private key that does not belong to its certificate \(CN=server\)/,
    );
    // The chain in the wrong order: the key belongs to the second certificate.
    const swapped = file(
      'swapped.pem',
      read(pki.ca.cert) + read(pki.server.cert) + read(pki.server.key),
    );
    assert.match(
      issue({ pem_file: swapped })[2],
      /private key of its certificate number 2, not of the first one: the server's own certificate must come first/,
    );
  });

  test('an expired certificate is refused; one about to expire is a warning', () => {
    const expired = makeCert(dir, pki.ca, 'expired', { days: -1 });
    assert.match(
      issue({ pem_file: expired.pem })[2],
      /expired\.pem' has a certificate that expired on \d{4}-/,
    );
    assert.throws(() => loadTls({ pem_file: expired.pem }), TlsFileError);
    const soon = makeCert(dir, pki.ca, 'soon', { days: 3 });
    const m = loadTls({ pem_file: soon.pem });
    assert.equal(m.warnings.length, 1);
    assert.match(m.warnings[0] ?? '', /soon\.pem' expires on .* \(in [23]\.\d days\)/);
  });

  test('CA file: missing, without certificates, or without pem_file', () => {
    let [path, rule, message] = issue({
      pem_file: pki.server.pem,
      ca_file: join(dir, 'ca-nope.crt'),
    });
    assert.deepEqual([path, rule], ['$.control[0].server.ca_file', 'tls']);
    assert.match(message, /ca-nope\.crt' does not exist/);
    [path, , message] = issue({ pem_file: pki.server.pem, ca_file: pki.ca.key });
    assert.equal(path, '$.control[0].server.ca_file');
    assert.match(
      message,
      /ca\.key' has no certificate .*CA certificate\(s\) that sign client certificates/,
    );
    [path, , message] = issue({ ca_file: pki.ca.cert });
    assert.equal(path, '$.control[0].server.ca_file');
    assert.match(message, /needs pem_file/);
  });

  test('a garbled certificate block', () => {
    const garbled = file(
      'garbled.pem',
      `-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n${read(pki.server.key)}`,
    );
    assert.match(
      issue({ pem_file: garbled })[2],
      /garbled\.pem' has a certificate \(number 1\) that cannot be parsed/,
    );
  });

  test('the HTTP control reports them at its server section', () => {
    const issues = checkHttpConf(
      {
        module: 'aimm-store/controls/http',
        server: { host: '127.0.0.1', port: 0, pem_file: pki.server.cert },
      },
      '$.control[1]',
    );
    assert.deepEqual(
      issues.map((i) => [i.path, i.rule]),
      [['$.control[1].server.pem_file', 'tls']],
    );
  });
});
