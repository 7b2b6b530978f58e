/**
 * Test certificates made with the system `openssl` command (EC P-256 keys: fast to make). A CA,
 * certificates it signs for a server (subjectAltName IP:127.0.0.1, DNS:localhost by default) or a
 * client, and the PEM files the controls and the CLI take: `pem` = certificate + private key.
 *
 * ```ts
 * const pki = makeTestPki(dir);            // ca, server (127.0.0.1), client
 * conf.server.pem_file = pki.server.pem;   // and ca_file: pki.ca.cert for mutual TLS
 * await JugglerClient.connect(url, { tls: { ca: readFileSync(pki.ca.cert) } });
 * ```
 * Tests that need it skip cleanly without `openssl`: `test('…', { skip: noOpenssl() }, …)`.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CertFiles {
  /** The certificate (PEM). */
  cert: string;
  /** Its private key (PEM, unencrypted). */
  key: string;
  /** Certificate then key in one file (what `pem_file` and `--cert` take). */
  pem: string;
}

export interface TestPki {
  ca: CertFiles;
  server: CertFiles;
  client: CertFiles;
}

let available: boolean | undefined;

/** False when there is an `openssl` command; else the reason to skip (for `test(…, {skip})`). */
export function noOpenssl(): false | string {
  if (available === undefined) {
    try {
      execFileSync('openssl', ['version'], { stdio: 'ignore' });
      available = true;
    } catch {
      available = false;
    }
  }
  return available ? false : 'no openssl command on this machine';
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function combine(dir: string, name: string): CertFiles {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const pem = join(dir, `${name}.pem`);
  writeFileSync(pem, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'));
  return { cert, key, pem };
}

const NEW_KEY = {
  ec: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
  rsa: ['-newkey', 'rsa:2048', '-nodes'],
};

/** A self-signed CA named `name` (files `name.crt`, `name.key`, `name.pem` in `dir`). */
export function makeCa(dir: string, name = 'ca'): CertFiles {
  openssl(
    [
      'req',
      '-x509',
      ...NEW_KEY.ec,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-days',
      '30',
      '-subj',
      `/CN=aimm-store test ${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return combine(dir, name);
}

let serial = 1;

export interface CertOptions {
  /** Common name (default `name`). */
  cn?: string;
  /** subjectAltName for a server (default `IP:127.0.0.1,DNS:localhost`). */
  san?: string;
  /** `client` adds extendedKeyUsage clientAuth; default `server` (serverAuth). */
  usage?: 'server' | 'client';
  /** Validity in days; a negative number makes a certificate that has already expired. */
  days?: number;
  /** Key type: EC P-256 (default, fast to make) or RSA 2048 (what many deployments use). */
  key?: 'ec' | 'rsa';
}

/** A certificate for `name` signed by `ca` (files `name.crt`, `name.key`, `name.pem` in `dir`). */
export function makeCert(
  dir: string,
  ca: CertFiles,
  name: string,
  options: CertOptions = {},
): CertFiles {
  const usage = options.usage ?? 'server';
  const ext = join(dir, `${name}.ext`);
  writeFileSync(
    ext,
    usage === 'server'
      ? `subjectAltName=${options.san ?? 'IP:127.0.0.1,DNS:localhost'}\nextendedKeyUsage=serverAuth\n`
      : 'extendedKeyUsage=clientAuth\n',
  );
  openssl(
    [
      'req',
      ...NEW_KEY[options.key ?? 'ec'],
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${options.cn ?? name}`,
    ],
    dir,
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-set_serial',
      String(++serial + Date.now()),
      '-days',
      String(options.days ?? 30),
      '-extfile',
      ext,
      '-out',
      `${name}.crt`,
    ],
    dir,
  );
  return combine(dir, name);
}

/** A CA, a server certificate for 127.0.0.1 (and localhost), and a client certificate. */
export function makeTestPki(dir: string): TestPki {
  const ca = makeCa(dir);
  return {
    ca,
    server: makeCert(dir, ca, 'server'),
    client: makeCert(dir, ca, 'client', { usage: 'client' }),
  };
}

/** SHA-256 fingerprint of a PEM certificate file (as a TLS peer's `fingerprint256`). */
export function fingerprintOf(certFile: string): string {
  return new X509Certificate(readFileSync(certFile)).fingerprint256;
}
