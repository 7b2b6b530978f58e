/**
 * Authentication and roles of the HTTP control. One call per request, before any route runs
 * ({@link HttpAuth.authorize}): from the path and the method it decides what the request needs —
 *
 * | path                          | method                 | needs                              |
 * |-------------------------------|------------------------|------------------------------------|
 * | `/healthz`, `/readyz`         | any                    | nothing (probes)                   |
 * | `/openapi.json`               | any                    | nothing (the API's description)    |
 * | `/`, `/console`, `/console/...` | any                  | nothing (the console's static files) |
 * | `/metrics`                    | any                    | `read`, or nothing if `auth_metrics: false` |
 * | `/models`, `/models/...`      | GET, HEAD, OPTIONS     | `read`                             |
 * | `/models`, `/models/...`      | any other              | `write` (POST …/rollback too)      |
 * | `/whoami`                     | any                    | `read`                             |
 * | anything else                 | any                    | `read` (then 404)                  |
 *
 * — and checks the `Authorization` header: HTTP Basic against the configured `users` (the clear
 * password, hashed to AIMM's SHA-256 hex and compared in constant time over every user), or a
 * Bearer token against the tokens file. Without credentials, or with wrong ones: 401 with
 * `WWW-Authenticate` challenges; with a `read` role on a write: 403. Every refusal is counted in
 * `http_auth_failures_total{reason}`; no secret reaches the logs. A request with an
 * `X-Requested-With` header (the web console's) gets its Basic challenge as `Console` instead, so
 * that a browser shows the console's login form rather than its own password dialog.
 *
 * With neither `users` nor `tokens_file` configured the control has no authentication and every
 * request is let through, as before roles existed.
 */
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import type { Counter } from '../../common/metrics.js';
import type { Users } from '../juggler/auth.js';
import { hashPassword } from '../juggler/auth.js';
import { allows, type Role } from '../roles.js';
import type { TokenFile } from '../tokens.js';

export const REALM = 'aimm-store';

export type Requirement = 'public' | Role;

const READ_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/** What a request on `url` with `method` needs (see the table above). */
export function requirementOf(url: string, method: string, authMetrics: boolean): Requirement {
  const path = url.split('?', 1)[0] ?? '/';
  if (path === '/healthz' || path === '/readyz' || path === '/openapi.json') return 'public';
  // The console's page and assets are static and hold no data; its login form is one of them.
  if (path === '/' || path === '/console' || path.startsWith('/console/')) return 'public';
  if (path === '/metrics') return authMetrics ? 'read' : 'public';
  if (path === '/models' || path.startsWith('/models/'))
    return READ_METHODS.has(method) ? 'read' : 'write';
  return 'read';
}

export type Credentials =
  | { kind: 'none' }
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'bearer'; token: string }
  | { kind: 'malformed'; why: string }
  | { kind: 'unsupported'; scheme: string };

const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses an `Authorization` header value (RFC 7617 Basic, RFC 6750 Bearer). Never throws. */
export function parseAuthorization(value: string | undefined): Credentials {
  if (value === undefined || value.trim() === '') return { kind: 'none' };
  const m = /^[ \t]*([A-Za-z0-9!#$%&'*+.^_`|~-]+)(?:[ \t]+(.*?))?[ \t]*$/s.exec(value);
  if (m === null) return { kind: 'malformed', why: 'not a scheme and credentials' };
  const scheme = (m[1] as string).toLowerCase();
  const rest = m[2] ?? '';
  if (scheme === 'basic') {
    if (!BASE64.test(rest) || rest === '')
      return { kind: 'malformed', why: 'Basic credentials must be base64 of user:password' };
    let text: string;
    try {
      text = utf8.decode(Buffer.from(rest, 'base64'));
    } catch {
      return { kind: 'malformed', why: 'Basic credentials are not UTF-8' };
    }
    const colon = text.indexOf(':');
    if (colon < 0) return { kind: 'malformed', why: 'Basic credentials have no colon' };
    // The user name ends at the first colon; the password may hold more (RFC 7617 2).
    return { kind: 'basic', username: text.slice(0, colon), password: text.slice(colon + 1) };
  }
  if (scheme === 'bearer') {
    if (!TOKEN68.test(rest)) return { kind: 'malformed', why: 'a Bearer token must be token68' };
    return { kind: 'bearer', token: rest };
  }
  return { kind: 'unsupported', scheme: scheme.slice(0, 20) };
}

/** Why a request was refused: the label of `http_auth_failures_total`. */
export type FailureReason =
  | 'missing'
  | 'malformed'
  | 'unsupported_scheme'
  | 'bad_password'
  | 'bad_token'
  | 'forbidden';

export interface Denial {
  status: 401 | 403;
  body: { error: string; code: 'unauthorized' | 'forbidden' };
  headers: OutgoingHttpHeaders;
}

export interface HttpAuthOptions {
  /** null: no Basic users. */
  users: Users | null;
  /** null: no tokens file. */
  tokens: TokenFile | null;
  /** Whether /metrics needs `read` (default true). */
  authMetrics: boolean;
  failures: Counter;
  logger: Logger;
}

/** Who made a request. */
export interface Principal {
  kind: 'user' | 'token' | 'anonymous';
  name: string;
  role: Role;
}

export class HttpAuth {
  /** Who made each request let through (for `/whoami`). */
  private readonly principals = new WeakMap<IncomingMessage, Principal>();

  constructor(private readonly options: HttpAuthOptions) {}

  /** The principal of a request `authorize` let through with credentials, else null. */
  principalOf(req: IncomingMessage): Principal | null {
    return this.principals.get(req) ?? null;
  }

  /** Is any authentication configured? */
  get enabled(): boolean {
    return this.options.users !== null || this.options.tokens !== null;
  }

  /** Re-reads the tokens file (SIGHUP). */
  async reload(): Promise<void> {
    const tokens = this.options.tokens;
    if (tokens === null) return;
    const r = tokens.refresh(true);
    if (r.error !== undefined)
      this.options.logger.error(
        { file: tokens.file, line: r.error.line },
        `tokens file not reloaded, the previous tokens stay: ${r.error.message}`,
      );
    else this.options.logger.info({ file: tokens.file, tokens: tokens.size }, 'tokens reloaded');
  }

  /** null: the request may proceed; else the answer to send instead. */
  async authorize(req: IncomingMessage): Promise<Denial | null> {
    if (!this.enabled) return null;
    const method = req.method ?? 'GET';
    const needed = requirementOf(req.url ?? '/', method, this.options.authMetrics);
    if (needed === 'public') return null;
    const raw = req.headers.authorization;
    const creds = parseAuthorization(raw);
    const who = await this.identify(creds);
    if ('reason' in who) {
      this.fail(who.reason, req, who.name);
      return this.unauthorized(
        who.message,
        who.reason,
        req.headers['x-requested-with'] !== undefined,
      );
    }
    if (!allows(who.role, needed)) {
      this.fail('forbidden', req, who.name);
      return {
        status: 403,
        body: {
          error: `forbidden: ${method} ${pathOf(req)} needs the role ${needed}; ${who.kind} '${who.name}' has ${who.role}`,
          code: 'forbidden',
        },
        headers: {},
      };
    }
    this.principals.set(req, who);
    return null;
  }

  private async identify(
    creds: Credentials,
  ): Promise<Principal | { reason: FailureReason; message: string; name?: string }> {
    const { users, tokens } = this.options;
    switch (creds.kind) {
      case 'none':
        return { reason: 'missing', message: 'authentication required' };
      case 'malformed':
        return { reason: 'malformed', message: `malformed Authorization header: ${creds.why}` };
      case 'unsupported':
        return {
          reason: 'unsupported_scheme',
          message: `unsupported authentication scheme '${creds.scheme}' (use ${this.schemes()})`,
        };
      case 'basic': {
        const role = users?.authenticate(creds.username, hashPassword(creds.password)) ?? null;
        if (role === null)
          return {
            reason: 'bad_password',
            message: 'wrong user name or password',
            name: creds.username,
          };
        return { kind: 'user', name: creds.username, role };
      }
      case 'bearer': {
        if (tokens === null) return { reason: 'bad_token', message: 'unknown token' };
        const r = tokens.refresh();
        if (r.error !== undefined)
          this.options.logger.error(
            { file: tokens.file, line: r.error.line },
            `tokens file not reloaded, the previous tokens stay: ${r.error.message}`,
          );
        else if (r.reloaded)
          this.options.logger.info({ file: tokens.file, tokens: tokens.size }, 'tokens reloaded');
        const entry = tokens.lookup(creds.token);
        if (entry === null) return { reason: 'bad_token', message: 'unknown token' };
        return { kind: 'token', name: entry.name, role: entry.role };
      }
    }
  }

  private schemes(): string {
    const s: string[] = [];
    if (this.options.users !== null) s.push('Basic');
    if (this.options.tokens !== null) s.push('Bearer');
    return s.join(' or ');
  }

  private fail(reason: FailureReason, req: IncomingMessage, name?: string): void {
    this.options.failures.inc({ reason });
    // A request without credentials is how every client starts: not worth a warning.
    const level = reason === 'missing' ? 'debug' : 'warn';
    this.options.logger[level](
      {
        reason,
        method: req.method,
        path: pathOf(req),
        remote: req.socket.remoteAddress,
        ...(name === undefined ? {} : { principal: name.slice(0, 64) }),
      },
      'http request refused',
    );
  }

  private unauthorized(message: string, reason: FailureReason, script: boolean): Denial {
    const challenges: string[] = [];
    // A browser answers a Basic challenge with its own dialog, even to a script's fetch().
    const basic = script ? 'Console' : 'Basic';
    if (this.options.users !== null) challenges.push(`${basic} realm="${REALM}", charset="UTF-8"`);
    if (this.options.tokens !== null)
      challenges.push(
        reason === 'bad_token'
          ? `Bearer realm="${REALM}", error="invalid_token"`
          : `Bearer realm="${REALM}"`,
      );
    return {
      status: 401,
      body: { error: message, code: 'unauthorized' },
      headers: { 'WWW-Authenticate': challenges.length === 1 ? challenges[0] : challenges },
    };
  }
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?', 1)[0]?.slice(0, 200) ?? '/';
}
