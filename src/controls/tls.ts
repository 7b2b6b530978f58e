/**
 * TLS for the built-in controls: `server.pem_file` (this daemon's certificate chain and private key
 * in one PEM file, AIMM's key) and `server.ca_file` (a CA bundle; when given, clients must present
 * a certificate it signed: mutual TLS). {@link loadTls} reads and checks the files and says what
 * is wrong in one sentence naming the file (unreadable, no certificate, no key, an encrypted key,
 * a key that is not the certificate's, an expired certificate, a CA file without certificates);
 * {@link checkTlsConf} turns that into config issues (check-config and start); {@link ServerTls}
 * holds the material of a listener and swaps it on reload (SIGHUP) without dropping connections.
 *
 * An expired certificate is refused (at check-config, start and reload): every client that
 * verifies would refuse it anyway, so starting with it only moves the failure to the clients.
 * A certificate not yet valid, or expiring within {@link EXPIRY_WARNING_DAYS} days, is a warning
 * in the `listening` and reload log lines.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ServerOptions } from 'node:https';
import { createSecureContext, type SecureContextOptions, type Server as TlsServer } from 'node:tls';
import { splitPem } from '../common/pem.js';
import type { ConfigIssue } from '../common/schema.js';

/** The TLS keys of a control's `server` section. */
export interface TlsConf {
  pem_file?: string;
  ca_file?: string;
}

export const EXPIRY_WARNING_DAYS = 14;

/** A TLS file that cannot be used; `key` is the config key that names it. */
export class TlsFileError extends Error {
  constructor(
    readonly key: 'pem_file' | 'ca_file',
    readonly file: string,
    why: string,
  ) {
    super(`'${file}' ${why}`);
    this.name = 'TlsFileError';
  }
}

export interface TlsMaterial {
  /** For `createSecureContext` / `setSecureContext`. */
  context: SecureContextOptions;
  /** Client certificates required (a `ca_file` is configured). */
  mutual: boolean;
  /** For the logs: the served certificate. */
  info: { subject: string; not_after: string; fingerprint256: string };
  warnings: string[];
}

function read(key: 'pem_file' | 'ca_file', file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EACCES'
          ? 'cannot be read: permission denied (EACCES); the daemon needs read access'
          : code === 'EISDIR'
            ? 'is a folder, not a PEM file'
            : `cannot be read (${code})`;
    throw new TlsFileError(key, file, why);
  }
}

function x509(key: 'pem_file' | 'ca_file', file: string, pem: string, n: number): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new TlsFileError(
      key,
      file,
      `has a certificate (number ${n}) that cannot be parsed: ${(err as Error).message}`,
    );
  }
}

/** Whatever else the TLS library itself refuses (a key too weak for its security level, ...). */
function refusedBy(key: 'pem_file' | 'ca_file', file: string, options: SecureContextOptions): void {
  try {
    createSecureContext(options);
  } catch (err) {
    throw new TlsFileError(key, file, `is refused by the TLS library: ${(err as Error).message}`);
  }
}

/** Reads and checks `pem_file` (and `ca_file`); throws {@link TlsFileError}. */
export function loadTls(
  files: { pem_file: string; ca_file?: string },
  now = new Date(),
): TlsMaterial {
  const file = files.pem_file;
  const parts = splitPem(read('pem_file', file));
  if (parts.certs.length === 0)
    throw new TlsFileError(
      'pem_file',
      file,
      'has no certificate (no -----BEGIN CERTIFICATE----- block): it must hold the certificate chain and the private key',
    );
  if (parts.keys.length === 0)
    throw new TlsFileError(
      'pem_file',
      file,
      parts.encryptedKeys > 0
        ? 'has an encrypted (password-protected) private key, which the daemon cannot use: decrypt it (openssl pkey -in KEY -out KEY.plain)'
        : 'has no private key (no -----BEGIN PRIVATE KEY----- block): append the key to the certificate chain',
    );
  if (parts.keys.length > 1)
    throw new TlsFileError(
      'pem_file',
      file,
      `has ${parts.keys.length} private keys; it must hold exactly one`,
    );
  let key: KeyObject;
  try {
    key = createPrivateKey(parts.keys[0] as string);
  } catch (err) {
    throw new TlsFileError(
      'pem_file',
      file,
      `has a private key that cannot be parsed: ${(err as Error).message}`,
    );
  }
  const certs = parts.certs.map((pem, i) => x509('pem_file', file, pem, i + 1));
  const leaf = certs[0] as X509Certificate;
  if (!leaf.checkPrivateKey(key)) {
    const owner = certs.findIndex((c) => c.checkPrivateKey(key));
    throw new TlsFileError(
      'pem_file',
      file,
      owner > 0
        ? `has the private key of its certificate number ${owner + 1}, not of the first one: the server's own certificate must come first, then its chain`
        : `has a private key that does not belong to its certificate (${leaf.subject.replaceAll('\n', ', ')})`,
    );
  }
  const notAfter = new Date(leaf.validTo);
  const notBefore = new Date(leaf.validFrom);
  if (notAfter.getTime() < now.getTime())
    throw new TlsFileError(
      'pem_file',
      file,
      `has a certificate that expired on ${notAfter.toISOString()}`,
    );
  const warnings: string[] = [];
  if (notBefore.getTime() > now.getTime())
    warnings.push(
      `the certificate in '${file}' is not valid before ${notBefore.toISOString()} (is the clock right?)`,
    );
  const left = (notAfter.getTime() - now.getTime()) / 86_400_000;
  if (left < EXPIRY_WARNING_DAYS)
    warnings.push(
      `the certificate in '${file}' expires on ${notAfter.toISOString()} (in ${left.toFixed(1)} days)`,
    );

  const context: SecureContextOptions = { key: parts.keys[0], cert: parts.certs.join('') };
  refusedBy('pem_file', file, context);
  if (files.ca_file !== undefined) {
    const caFile = files.ca_file;
    const ca = splitPem(read('ca_file', caFile));
    if (ca.certs.length === 0)
      throw new TlsFileError(
        'ca_file',
        caFile,
        'has no certificate (no -----BEGIN CERTIFICATE----- block): it must hold the CA certificate(s) that sign client certificates',
      );
    for (const [i, pem] of ca.certs.entries()) x509('ca_file', caFile, pem, i + 1);
    refusedBy('ca_file', caFile, { ca: ca.certs });
    context.ca = ca.certs;
  }
  return {
    context,
    mutual: files.ca_file !== undefined,
    info: {
      subject: leaf.subject.replaceAll('\n', ', '),
      not_after: notAfter.toISOString(),
      fingerprint256: leaf.fingerprint256,
    },
    warnings,
  };
}

/**
 * Config issues of a control's `server` TLS keys (`basePath` is the `server` section's path):
 * `ca_file` without `pem_file`, and any {@link TlsFileError} at the path of the key it names.
 */
export function checkTlsConf(server: TlsConf | undefined, basePath: string): ConfigIssue[] {
  if (server === undefined) return [];
  if (server.pem_file === undefined) {
    if (server.ca_file === undefined) return [];
    return [
      {
        path: `${basePath}.ca_file`,
        rule: 'tls',
        message:
          'needs pem_file: client certificates (mutual TLS) are checked only on a TLS listener',
      },
    ];
  }
  try {
    loadTls({ pem_file: server.pem_file, ca_file: server.ca_file });
    return [];
  } catch (err) {
    if (!(err instanceof TlsFileError)) throw err;
    return [{ path: `${basePath}.${err.key}`, rule: 'tls', message: err.message }];
  }
}

/** The TLS material of one listener, reloadable. */
export class ServerTls {
  private material: TlsMaterial;

  constructor(readonly files: { pem_file: string; ca_file?: string }) {
    this.material = loadTls(files);
  }

  /** From a control's `server` section; null without `pem_file` (a plain listener). */
  static of(server: TlsConf): ServerTls | null {
    if (server.pem_file === undefined) return null;
    return new ServerTls({ pem_file: server.pem_file, ca_file: server.ca_file });
  }

  get mutual(): boolean {
    return this.material.mutual;
  }

  /** For `https.createServer`: the material, and client certificates required when mutual. */
  serverOptions(): ServerOptions {
    return {
      ...this.material.context,
      requestCert: this.material.mutual,
      rejectUnauthorized: this.material.mutual,
    };
  }

  /** Log fields of the `listening` line. */
  describe(): Record<string, unknown> {
    const m = this.material;
    return { tls: true, mutual_tls: m.mutual, certificate: m.info, ...warningsField(m) };
  }

  /**
   * Re-reads the files and, when they are usable, gives new connections the new material (open
   * ones keep theirs). Throws {@link TlsFileError} and keeps the current material otherwise.
   */
  reload(server: TlsServer): Record<string, unknown> {
    const next = loadTls(this.files);
    server.setSecureContext(next.context);
    this.material = next;
    return {
      pem_file: this.files.pem_file,
      ca_file: this.files.ca_file,
      certificate: next.info,
      ...warningsField(next),
    };
  }
}

function warningsField(m: TlsMaterial): Record<string, unknown> {
  return m.warnings.length > 0 ? { warnings: m.warnings } : {};
}
