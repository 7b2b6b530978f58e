/**
 * Why a WebSocket connection could not be opened, in words that say what the address seems to be
 * and what was expected. A wrong port is the usual cause: the daemon's HTTP control answers the
 * opening handshake with plain HTTP, and a Hat server (eventer or monitor port) speaks chatter, a
 * binary protocol, so it never answers the handshake at all. For the silent case the client probes
 * the address with a chatter ping on a second TCP connection (a Hat server answers it at once), so
 * it can say "this is a Hat port" instead of waiting out the handshake timeout.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { formatAddress } from '../common/address.js';
import { FrameReader } from '../hat/chatter/framing.js';
import { decodeBody, encodeFrame, PING, PONG } from '../hat/chatter/message.js';

/** What the connection attempt ran into. */
export type ConnectFailure =
  /** Nothing listens there (ECONNREFUSED). */
  | 'refused'
  /** An HTTP server that does not upgrade to a WebSocket (e.g. aimm-store's HTTP control). */
  | 'http'
  /** A Hat server's chatter port (eventer or monitor): it answered a chatter ping. */
  | 'hat_chatter'
  /** Bytes came back that are not HTTP. */
  | 'not_http'
  /** The server closed the connection without answering the handshake. */
  | 'closed'
  /** No answer to the handshake within the timeout. */
  | 'no_answer'
  /** The TLS handshake failed (certificate not trusted, expired, for another name; client certificate missing or refused; no TLS there). */
  | 'tls'
  /** Anything else (DNS, TLS, unreachable network, ...). */
  | 'error';

/** Opening the WebSocket failed; `reason` says how, the message says what the address seems to be. */
export class ConnectFailedError extends Error {
  constructor(
    readonly url: string,
    readonly reason: ConnectFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot connect to ${url}: ${message}`, options);
    this.name = 'ConnectFailedError';
  }
}

const EXPECTED =
  "expected aimm-store's Juggler control, a WebSocket server (ws://HOST:9950/ by default)";

/** `host:port` of a ws:// or wss:// URL, as the user would write it. */
export function hostPort(url: string): { host: string; port: number; text: string } {
  const u = new URL(url);
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  const port = u.port === '' ? (u.protocol === 'wss:' ? 443 : 80) : Number(u.port);
  return { host, port, text: formatAddress({ host, port }) };
}

export interface FailureFacts {
  /** The server's answer when it was HTTP without an upgrade. */
  http?: { status: number; statusText: string };
  /** What the chatter probe found, if it ran. */
  probe?: ProbeResult;
  /** The probe's TCP connection was accepted (known before its result). */
  probeConnected?: boolean;
  /** The handshake timeout, for the message. */
  timeoutMs: number;
}

/** Turns what `ws` reported (and what we saw besides) into a {@link ConnectFailedError}. */
export function connectFailure(url: string, err: unknown, facts: FailureFacts): ConnectFailedError {
  const where = hostPort(url).text;
  const e = err as NodeJS.ErrnoException | null;
  const message = e instanceof Error ? e.message : String(err);
  if (facts.http !== undefined) {
    const { status, statusText } = facts.http;
    return new ConnectFailedError(
      url,
      'http',
      `${where} answered with HTTP ${status}${statusText === '' ? '' : ` ${statusText}`} instead of ` +
        `switching to a WebSocket: it is a plain HTTP server (aimm-store's HTTP control, port ` +
        `9951 by default, answers like this), not a Juggler control; ${EXPECTED}`,
      { cause: err },
    );
  }
  if (facts.probe === 'hat_chatter') {
    return new ConnectFailedError(
      url,
      'hat_chatter',
      `${where} speaks Hat's chatter protocol, not WebSocket (it answered a chatter ping): it is ` +
        `a Hat server's port (a Hat event server's eventer port, 23012 by default, or a ` +
        `hat-monitor's, 23010); ${EXPECTED}`,
      { cause: err },
    );
  }
  if (e?.code === 'ECONNREFUSED') {
    return new ConnectFailedError(
      url,
      'refused',
      `connection refused: nothing listens on ${where} (is the daemon running, and is this its Juggler address?)`,
      { cause: err },
    );
  }
  if (typeof e?.code === 'string' && e.code.startsWith('HPE_')) {
    return new ConnectFailedError(
      url,
      'not_http',
      `${where} answered with something that is not HTTP, so it is no WebSocket server; ${EXPECTED}`,
      { cause: err },
    );
  }
  const tls = tlsFailure(url, where, e?.code, message);
  if (tls !== null) return new ConnectFailedError(url, 'tls', tls, { cause: err });
  const reset = e?.code === 'ECONNRESET' || message === 'socket hang up';
  if (reset && url.startsWith('wss:')) {
    // TLS 1.3: a server refuses a client certificate after the client's side of the handshake is
    // done; its alert is often lost to the reset, so the client sees only the connection drop.
    return new ConnectFailedError(
      url,
      'tls',
      `${where} closed the connection without answering the WebSocket handshake: over TLS, a ` +
        'daemon with mutual TLS (ca_file) does this when the client certificate is missing or not ' +
        'signed by a CA of its ca_file; give one (the command line: --cert FILE; the client ' +
        'library: tls.cert and tls.key)',
      { cause: err },
    );
  }
  if (reset) {
    const tlsHint = url.startsWith('ws:')
      ? ' (a daemon with TLS, pem_file, does this to a plain ws:// client: then use wss://)'
      : '';
    return new ConnectFailedError(
      url,
      'closed',
      `${where} closed the connection without answering the WebSocket handshake${tlsHint}; ${EXPECTED}`,
      { cause: err },
    );
  }
  if (message === 'Opening handshake has timed out') {
    const text =
      facts.probeConnected === true || facts.probe === 'silent' || facts.probe === 'other'
        ? `${where} accepted the connection but did not answer the WebSocket handshake within ` +
          `${facts.timeoutMs} ms: it does not seem to speak HTTP; ${EXPECTED}`
        : `no answer from ${where} within ${facts.timeoutMs} ms (unreachable, or a firewall drops the connection)`;
    return new ConnectFailedError(url, 'no_answer', text, { cause: err });
  }
  return new ConnectFailedError(url, 'error', message, { cause: err });
}

/** Certificate verification codes meaning "signed by no CA this client trusts". */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
]);

/** The message for a failed TLS handshake, or null when `code`/`message` are no TLS failure. */
function tlsFailure(
  url: string,
  where: string,
  code: string | undefined,
  message: string,
): string | null {
  // OpenSSL's text without its location: `...:SSL routines:FUNCTION:REASON:FILE:LINE:...`.
  const reason = /SSL routines:[^:]*:([^:]+)/.exec(message)?.[1] ?? message.split('\n')[0];
  const what = `${code ?? 'TLS'}: ${reason}`;
  if (code !== undefined && UNTRUSTED.has(code))
    return (
      `the server's TLS certificate is not trusted (${what}): it is signed by a CA this client ` +
      'does not trust; give that CA (the command line: --ca FILE; the client library: tls.ca), ' +
      'or for a test only, do not verify (--insecure; tls.rejectUnauthorized: false)'
    );
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID')
    return (
      `the server's TLS certificate is ${code === 'CERT_HAS_EXPIRED' ? 'expired' : 'not valid yet'} ` +
      `(${what}): the daemon's pem_file needs a valid certificate (then send the daemon SIGHUP)`
    );
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return (
      `the server's TLS certificate is not for ${where} (${what}): connect with a host name or ` +
      'address the certificate lists (its subjectAltName)'
    );
  if (/alert certificate required/i.test(message))
    return (
      `${where} requires a client certificate (mutual TLS) and none was given (${what}): give ` +
      "a certificate signed by a CA of the daemon's ca_file (the command line: --cert FILE; the " +
      'client library: tls.cert and tls.key)'
    );
  if (
    /alert (bad certificate|unknown ca|certificate unknown|unsupported certificate)/i.test(message)
  )
    return (
      `${where} refused this client's certificate (${what}): it must be signed by a CA of the ` +
      "daemon's ca_file, valid, and meant for client authentication"
    );
  if (/wrong version number|packet length too long|unknown protocol/i.test(message))
    return url.startsWith('wss:')
      ? `${where} does not speak TLS (${what}): it is probably a plain WebSocket server; use ws://`
      : null;
  if (code?.startsWith('ERR_SSL_') || code?.startsWith('ERR_TLS_'))
    return `the TLS handshake with ${where} failed (${what})`;
  return null;
}

/**
 * `hat_chatter`: a chatter Pong came back; `silent`: connected, nothing came back in time;
 * `other`: something else came back, or the server closed; `unreachable`: no TCP connection.
 */
export type ProbeResult = 'hat_chatter' | 'silent' | 'other' | 'unreachable';

/** A chatter frame carrying `HatChatter.Ping` (what a Hat server answers with a Pong at any time). */
function pingFrame(): Buffer {
  return encodeFrame({
    id: 1,
    first: 1,
    owner: true,
    token: true,
    last: false,
    type: PING,
    data: new Uint8Array(0),
  });
}

export interface Probe {
  readonly result: Promise<ProbeResult>;
  /** Whether the probe's TCP connection has been accepted. */
  readonly connected: boolean;
  cancel(): void;
}

/** Asks `host:port` whether it speaks Hat's chatter: one ping on its own TCP connection. */
export function probeChatter(host: string, port: number, timeoutMs: number): Probe {
  let socket: Socket | null = null;
  let settle: (r: ProbeResult) => void = () => {};
  let connected = false;
  const result = new Promise<ProbeResult>((resolve) => {
    let done = false;
    const timer = setTimeout(() => settle(connected ? 'silent' : 'unreachable'), timeoutMs);
    settle = (r) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket?.destroy();
      resolve(r);
    };
    const reader = new FrameReader(4096);
    try {
      socket = netConnect({ host, port });
    } catch {
      settle('unreachable');
      return;
    }
    socket.on('connect', () => {
      connected = true;
      socket?.write(pingFrame());
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk, (body) =>
          settle(decodeBody(body).type === PONG ? 'hat_chatter' : 'other'),
        );
      } catch {
        settle('other');
      }
    });
    socket.on('error', () => settle(connected ? 'other' : 'unreachable'));
    socket.on('close', () => settle(connected ? 'other' : 'unreachable'));
  });
  return {
    result,
    get connected() {
      return connected;
    },
    cancel: () => settle('other'),
  };
}
