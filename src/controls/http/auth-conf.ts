/**
 * The HTTP control's authentication settings: the rules a schema cannot say (where the control
 * may listen with and without authentication and TLS, a usable tokens file) and the
 * {@link HttpAuth} they configure.
 *
 * - On a loopback address anything goes (no authentication is the embedded default).
 * - On any other address the control needs authentication (`users` or `tokens_file`), whatever
 *   `allow_non_loopback` says: without it anyone who can reach the port reads every model.
 * - With authentication but without TLS (`pem_file`) on such an address, Basic passwords and
 *   tokens would cross the network in clear: refused unless `allow_plaintext: true`.
 */
import type { Logger } from 'pino';
import type { MetricsRegistry } from '../../common/metrics.js';
import type { ConfigIssue } from '../../common/schema.js';
import { type UserConf, Users } from '../juggler/auth.js';
import { isLoopbackHost } from '../loopback.js';
import { readTokensFile, TokenFile, TokensFileError } from '../tokens.js';
import { HttpAuth } from './auth.js';

export interface HttpAuthConf {
  server?: { host?: unknown; pem_file?: string };
  users?: UserConf[];
  tokens_file?: string;
  auth_metrics?: boolean;
  allow_plaintext?: boolean;
  /** Deprecated: no longer lets a control without authentication off loopback. */
  allow_non_loopback?: boolean;
}

export function hasAuth(conf: HttpAuthConf): boolean {
  return conf.users !== undefined || conf.tokens_file !== undefined;
}

/** Checks beyond the schema. Paths are prefixed with `basePath`. */
export function checkAuthConf(conf: HttpAuthConf, basePath = '$'): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (typeof conf.tokens_file === 'string') {
    try {
      readTokensFile(conf.tokens_file);
    } catch (err) {
      if (!(err instanceof TokensFileError)) throw err;
      issues.push({ path: `${basePath}.tokens_file`, rule: 'tokens_file', message: err.message });
    }
  }
  const host = conf.server?.host;
  if (typeof host !== 'string' || isLoopbackHost(host)) return issues;
  if (!hasAuth(conf)) {
    issues.push({
      path: `${basePath}.server.host`,
      rule: 'loopback',
      message:
        `'${host}' is not a loopback address and the HTTP control has no authentication: ` +
        'anyone who can reach the port could read every model; configure users or tokens_file ' +
        '(and server.pem_file for TLS), or listen on 127.0.0.1' +
        (conf.allow_non_loopback === true
          ? ' (allow_non_loopback: true no longer exposes a control without authentication)'
          : ''),
    });
  } else if (conf.server?.pem_file === undefined && conf.allow_plaintext !== true) {
    issues.push({
      path: `${basePath}.server.pem_file`,
      rule: 'plaintext',
      message:
        `is required on a non-loopback address ('${host}') when the HTTP control authenticates: ` +
        'without TLS, Basic passwords and bearer tokens cross the network in clear; give ' +
        'server.pem_file, or set allow_plaintext: true on a network you trust',
    });
  }
  return issues;
}

/** The control's {@link HttpAuth} (disabled without users and tokens_file). */
export function createAuth(conf: HttpAuthConf, metrics: MetricsRegistry, logger: Logger): HttpAuth {
  const failures = metrics.counter(
    'http_auth_failures_total',
    'HTTP control requests refused by authentication (401) or role (403), by reason',
  );
  return new HttpAuth({
    users: conf.users === undefined ? null : new Users(conf.users),
    tokens: conf.tokens_file === undefined ? null : new TokenFile(conf.tokens_file),
    authMetrics: conf.auth_metrics !== false,
    failures,
    logger,
  });
}
