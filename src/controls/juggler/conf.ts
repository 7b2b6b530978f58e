/**
 * The Juggler control's configuration: its schema id, the checks a schema cannot express (no
 * `users` only on loopback; `users` elsewhere only with TLS or `allow_plaintext`; usable TLS files),
 * and the resolved settings with their defaults.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { type ConfigIssue, SCHEMAS_DIR, SchemaRegistry } from '../../common/schema.js';
import { isLoopbackHost } from '../loopback.js';
import { checkTlsConf } from '../tls.js';
import type { UserConf } from './auth.js';
import type { Framing } from './framing.js';

export const CONF_SCHEMA_ID = 'aimm-store://controls/juggler.yaml#';
export const CONF_SCHEMA_FILE = join(SCHEMAS_DIR, 'controls', 'juggler.yaml');

export interface JugglerConf {
  module: string;
  server: {
    host: string;
    port: number;
    autoflush_delay?: number;
    shutdown_timeout?: number;
    pem_file?: string;
    ca_file?: string;
  };
  allow_plaintext?: boolean;
  users?: UserConf[];
  state_instances?: boolean;
  framing?: 'auto' | Framing;
  framing_wait?: number;
  max_message_size?: number;
  max_segment_size?: number;
  max_pending_requests?: number;
  max_connections?: number;
  max_send_buffer?: number;
  ping_delay?: number;
  ping_timeout?: number;
}

export interface Settings {
  host: string;
  port: number;
  /** `server.pem_file`/`ca_file`; null: plain WebSocket (ws://). */
  tls: { pem_file: string; ca_file?: string } | null;
  /** null: no login required (open). */
  users: UserConf[] | null;
  stateInstances: boolean;
  framing: 'auto' | Framing;
  framingWaitMs: number;
  flushDelayMs: number;
  shutdownTimeoutMs: number;
  maxMessageSize: number;
  maxSegmentSize: number;
  maxPendingRequests: number;
  maxConnections: number;
  maxSendBuffer: number;
  pingDelayMs: number;
  pingTimeoutMs: number;
}

export const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024;

/** Checks beyond the schema; paths are prefixed with `basePath` (e.g. `$.control[0]`). */
export function checkConf(conf: JugglerConf, basePath = '$'): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (conf.users === undefined && !isLoopbackHost(conf.server.host)) {
    issues.push({
      path: `${basePath}.users`,
      rule: 'loopback_without_users',
      message: `is required when listening on a non-loopback host ('${conf.server.host}'): without users anyone who can reach the port can read, write and delete models`,
    });
  } else if (
    conf.users !== undefined &&
    conf.server.pem_file === undefined &&
    conf.allow_plaintext !== true &&
    !isLoopbackHost(conf.server.host)
  ) {
    issues.push({
      path: `${basePath}.server.pem_file`,
      rule: 'plaintext_login',
      message:
        `is required when users log in on a non-loopback host ('${conf.server.host}'): without TLS ` +
        'the password hashes (which are what a client logs in with) and the models cross the ' +
        'network in clear; set server.pem_file (and connect with wss://), or set ' +
        'allow_plaintext: true to accept that on a network you trust',
    });
  }
  issues.push(...checkTlsConf(conf.server, `${basePath}.server`));
  return issues;
}

let registry: SchemaRegistry | null = null;

/** Schema validation of this control's part of the config, then {@link checkConf}. */
export function validateConf(conf: unknown, basePath = '$'): ConfigIssue[] {
  if (registry === null) {
    registry = new SchemaRegistry([]);
    registry.addSchema(parseYaml(readFileSync(CONF_SCHEMA_FILE, 'utf8')), CONF_SCHEMA_FILE);
  }
  const issues = registry.validate(CONF_SCHEMA_ID, conf, basePath);
  if (issues.length > 0) return issues;
  return checkConf(conf as JugglerConf, basePath);
}

export function toSettings(conf: JugglerConf): Settings {
  const maxMessageSize = conf.max_message_size ?? DEFAULT_MAX_MESSAGE_SIZE;
  return {
    host: conf.server.host,
    port: conf.server.port,
    tls:
      conf.server.pem_file === undefined
        ? null
        : { pem_file: conf.server.pem_file, ca_file: conf.server.ca_file },
    users: conf.users ?? null,
    stateInstances: conf.state_instances ?? false,
    framing: conf.framing ?? 'auto',
    framingWaitMs: seconds(conf.framing_wait, 0.5),
    flushDelayMs: seconds(conf.server.autoflush_delay, 0.2),
    shutdownTimeoutMs: seconds(conf.server.shutdown_timeout, 0.5),
    maxMessageSize,
    maxSegmentSize: conf.max_segment_size ?? 65536,
    maxPendingRequests: conf.max_pending_requests ?? 32,
    maxConnections: conf.max_connections ?? 1024,
    maxSendBuffer: conf.max_send_buffer ?? 2 * maxMessageSize,
    pingDelayMs: seconds(conf.ping_delay, 30),
    pingTimeoutMs: seconds(conf.ping_timeout, 30),
  };
}

function seconds(value: number | undefined, dflt: number): number {
  return Math.round((value ?? dflt) * 1000);
}
