/**
 * PEM text split into its blocks: certificates and private keys, as one file holds them for TLS
 * (`pem_file` of the controls: the certificate chain and the private key; the CLI's `--cert`).
 * Only the framing is read here; what the blocks mean is checked by node:crypto (controls/tls.ts).
 */

export interface PemParts {
  /** `-----BEGIN CERTIFICATE-----` blocks, in file order, each with its BEGIN/END lines. */
  certs: string[];
  /** Unencrypted private keys (`PRIVATE KEY`, `RSA PRIVATE KEY`, `EC PRIVATE KEY`). */
  keys: string[];
  /** Password-protected keys (`ENCRYPTED PRIVATE KEY`, or a legacy key with `Proc-Type: 4,ENCRYPTED`). */
  encryptedKeys: number;
  /** Labels of any other blocks (`CERTIFICATE REQUEST`, `X509 CRL`, ...). */
  others: string[];
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

export function splitPem(text: string): PemParts {
  const parts: PemParts = { certs: [], keys: [], encryptedKeys: 0, others: [] };
  for (const m of text.matchAll(BLOCK)) {
    const label = m[1] as string;
    const block = `${m[0]}\n`;
    if (label === 'CERTIFICATE' || label === 'TRUSTED CERTIFICATE') parts.certs.push(block);
    else if (label === 'ENCRYPTED PRIVATE KEY') parts.encryptedKeys++;
    else if (/^(RSA |EC |DSA )?PRIVATE KEY$/.test(label)) {
      if (block.includes('Proc-Type: 4,ENCRYPTED')) parts.encryptedKeys++;
      else parts.keys.push(block);
    } else parts.others.push(label);
  }
  return parts;
}
