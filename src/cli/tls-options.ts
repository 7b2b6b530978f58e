/**
 * The client commands' TLS options for a `wss://` address: `--ca FILE` (trust this CA),
 * `--cert FILE` (a PEM with the client certificate and its key, for mutual TLS), `--insecure`
 * (do not verify the server; the command warns on stderr). Files are read here, so that a wrong
 * path is a usage error (exit 2) before anything is sent.
 */
import { readFileSync } from 'node:fs';
import type { TlsOptions } from '../client/index.js';
import { splitPem } from '../common/pem.js';

export const TLS_OPTIONS = {
  ca: { type: 'string' },
  cert: { type: 'string' },
  insecure: { type: 'boolean' },
} as const;

export const TLS_USAGE = `  --ca FILE        wss://, https://: trust the CA certificate(s) in FILE (PEM), e.g. a private CA
  --cert FILE      wss://, https://: present this client certificate (PEM: certificate and key; mutual TLS)
  --insecure       wss://, https://: do not verify the server's certificate (tests only; warns)
`;

function readPem(option: string, file: string): string | Error {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return new Error(`${option} '${file}' cannot be read (${code})`);
  }
}

/** The client's TLS options (undefined: none given), or the Error to report as a usage error. */
export function tlsOptionsOf(
  values: Record<string, unknown>,
  address: string,
): TlsOptions | undefined | Error {
  const ca = values.ca as string | undefined;
  const cert = values.cert as string | undefined;
  const insecure = values.insecure === true;
  const given = [ca && '--ca', cert && '--cert', insecure && '--insecure'].filter(
    (x): x is string => typeof x === 'string',
  );
  if (given.length === 0) return undefined;
  if (!address.startsWith('wss://') && !address.startsWith('https://'))
    return new Error(
      `${given.join(', ')} ${given.length === 1 ? 'needs' : 'need'} a wss:// or https:// address (TLS), not '${address}'`,
    );
  if (insecure && ca !== undefined)
    return new Error('--insecure and --ca contradict each other: --ca verifies with that CA');
  const tls: TlsOptions = {};
  if (insecure) tls.rejectUnauthorized = false;
  if (ca !== undefined) {
    const text = readPem('--ca', ca);
    if (text instanceof Error) return text;
    const certs = splitPem(text).certs;
    if (certs.length === 0)
      return new Error(`--ca '${ca}' has no certificate (no -----BEGIN CERTIFICATE----- block)`);
    tls.ca = certs;
  }
  if (cert !== undefined) {
    const text = readPem('--cert', cert);
    if (text instanceof Error) return text;
    const parts = splitPem(text);
    if (parts.certs.length === 0 || parts.keys.length !== 1)
      return new Error(
        `--cert '${cert}' must hold the client certificate and its unencrypted private key (PEM): ` +
          `found ${parts.certs.length} certificate(s), ${parts.keys.length} usable key(s)` +
          (parts.encryptedKeys > 0 ? ` and ${parts.encryptedKeys} encrypted one(s)` : ''),
      );
    tls.cert = parts.certs.join('');
    tls.key = parts.keys[0];
  }
  return tls;
}
