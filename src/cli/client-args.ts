/**
 * What every client command shares: exit codes, the usage error, the common options (`--address`,
 * `--user`, TLS; an http(s):// address makes put and get use the HTTP transport), the Juggler
 * connection, argument parsing and the JSON output lines (the wire's snake_case keys).
 */
import { HttpModelClient } from '../client/http-client.js';
import {
  DEFAULT_ADDRESS,
  JugglerClient,
  type ModelInfo,
  type TlsOptions,
} from '../client/index.js';
import { writeLine } from './output.js';
import { tlsOptionsOf } from './tls-options.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export class UsageError extends Error {}

export interface Common {
  address: string;
  /** Set for an http:// or https:// address: put and get go over the HTTP API (raw bytes). */
  http?: HttpModelClient;
  username?: string;
  password?: string;
  framing: '0.6' | '0.7';
  tls?: TlsOptions;
}

export type Values = Record<string, string | boolean | undefined>;

export function commonOf(values: Values): Common {
  const framing = (values.framing as string | undefined) ?? '0.7';
  if (framing !== '0.6' && framing !== '0.7')
    throw new UsageError(`--framing must be 0.6 or 0.7, not '${framing}'`);
  let address = (values.address as string | undefined) ?? DEFAULT_ADDRESS;
  if (!/^(wss?|https?):\/\//.test(address)) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(address))
      throw new UsageError(
        `--address must be a ws://, wss://, http:// or https:// URL, not '${address}'`,
      );
    address = `ws://${address}`;
  }
  try {
    new URL(address);
  } catch {
    throw new UsageError(`--address '${address}' is not a valid URL`);
  }
  const common: Common = { address, framing };
  const tls = tlsOptionsOf(values, address);
  if (tls instanceof Error) throw new UsageError(tls.message);
  if (tls !== undefined) common.tls = tls;
  if (typeof values.user === 'string') {
    const password = process.env.AIMM_STORE_PASSWORD;
    if (password === undefined)
      throw new UsageError(
        '--user needs the password in the environment variable AIMM_STORE_PASSWORD',
      );
    common.username = values.user;
    common.password = password;
  }
  if (/^https?:\/\//.test(address)) {
    const token = process.env.AIMM_STORE_TOKEN;
    common.http = new HttpModelClient(address, {
      ...(common.username === undefined ? {} : { username: common.username }),
      ...(common.password === undefined ? {} : { password: common.password }),
      ...(token === undefined || common.username !== undefined ? {} : { token }),
      ...(common.tls === undefined ? {} : { tls: common.tls }),
    });
  }
  return common;
}

export function connect(c: Common): Promise<JugglerClient> {
  return JugglerClient.connect(c.address, {
    username: c.username,
    password: c.password,
    framing: c.framing,
    tls: c.tls,
  });
}

export async function withClient<T>(
  c: Common,
  fn: (client: JugglerClient) => Promise<T>,
): Promise<T> {
  const client = await connect(c);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

export function parseId(text: string | undefined, what: string): number {
  if (text === undefined) throw new UsageError(`${what} is required`);
  const n = Number(text);
  if (!/^[1-9]\d*$/.test(text) || !Number.isSafeInteger(n))
    throw new UsageError(`${what} must be a positive integer, not '${text}'`);
  return n;
}

export function parseRevision(
  text: string | boolean | undefined,
  what = '--expect-revision',
): number | undefined {
  if (text === undefined) return undefined;
  const s = String(text);
  const n = Number(s);
  if (!/^(0|[1-9]\d*)$/.test(s) || !Number.isSafeInteger(n))
    throw new UsageError(`${what} must be a non-negative integer, not '${s}'`);
  return n;
}

export function noMorePositionals(positionals: string[], max: number): void {
  if (positionals.length > max)
    throw new UsageError(`unexpected argument '${positionals[max] as string}'`);
}

/** One JSON line on stdout (dropped once the reader closed it). */
export function line(value: unknown): void {
  writeLine(JSON.stringify(value));
}

export function metaLine(m: ModelInfo): Record<string, unknown> {
  return {
    instance_id: m.instanceId,
    model_type: m.modelType,
    revision: m.revision,
    size: m.size,
    sha256: m.sha256,
    updated: m.updated,
    ...provisionalMark(m),
  };
}

export function putLine(meta: ModelInfo): Record<string, unknown> {
  return {
    instance_id: meta.instanceId,
    model_type: meta.modelType,
    revision: meta.revision,
    size: meta.size,
    sha256: meta.sha256,
    ...provisionalMark(meta),
  };
}

/** `revision_provisional: true` while the server says the revision is a lower bound. */
export function provisionalMark(m: { revisionProvisional?: true }): Record<string, true> {
  return m.revisionProvisional === true ? { revision_provisional: true } : {};
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
