/**
 * A control that cannot listen: one error that says which control, which address and what to do,
 * e.g. `http control cannot listen on 127.0.0.1:9951: the address is in use: another aimm-store
 * daemon is running there (its HTTP control answered /healthz); stop it, or give this control
 * another port`. For a port in use the address is asked (one HTTP GET, 1 s at most) whether an
 * aimm-store answers there, so that the message can say so instead of guessing.
 */
import { request } from 'node:http';
import { formatAddress } from '../common/address.js';

export type ControlKind = 'juggler' | 'http';

/** `name` is `ListenError`: the daemon logs it as one line, without a stack (not a bug). */
export class ListenError extends Error {
  readonly control: ControlKind;
  readonly host: string;
  readonly port: number;
  /** The system's code (`EADDRINUSE`, `EACCES`, ...), if any. */
  readonly code: string | undefined;
  constructor(
    control: ControlKind,
    host: string,
    port: number,
    code: string | undefined,
    why: string,
  ) {
    super(`${control} control cannot listen on ${formatAddress({ host, port })}: ${why}`);
    this.name = 'ListenError';
    this.control = control;
    this.host = host;
    this.port = port;
    this.code = code;
  }
}

/** The {@link ListenError} for `err`, the failure of `listen(port, host)`. */
export async function listenError(
  control: ControlKind,
  host: string,
  port: number,
  err: unknown,
): Promise<ListenError> {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return new ListenError(control, host, port, code, await explain(host, port, code, err));
}

async function explain(
  host: string,
  port: number,
  code: string | undefined,
  err: unknown,
): Promise<string> {
  switch (code) {
    case 'EADDRINUSE': {
      const who = await whoListens(host, port);
      const there =
        who === 'aimm-store http'
          ? 'another aimm-store daemon is running there (its HTTP control answered /healthz)'
          : who === 'aimm-store juggler'
            ? 'another aimm-store daemon is running there (its Juggler control answered)'
            : who === 'http'
              ? 'another program (an HTTP server) listens there'
              : 'another aimm-store daemon may be running (or another program holds the port)';
      return `the address is already in use (EADDRINUSE): ${there}; stop it, or give this control another port`;
    }
    case 'EACCES':
      return `permission denied (EACCES): ports below 1024 need root or CAP_NET_BIND_SERVICE; use a port from 1024 up`;
    case 'EADDRNOTAVAIL':
      return `'${host}' is not an address of this machine (EADDRNOTAVAIL); use one of its addresses, or 127.0.0.1`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot resolve the host name '${host}' (${code})`;
    default: {
      const message = err instanceof Error ? err.message : String(err);
      return code === undefined || message.includes(code) ? message : `${code}: ${message}`;
    }
  }
}

type Listener = 'aimm-store http' | 'aimm-store juggler' | 'http' | 'unknown';

/** One GET /healthz to the address in use: who answers? Never throws; 1 s at most. */
function whoListens(host: string, port: number): Promise<Listener> {
  const target = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return new Promise((resolve) => {
    const req = request(
      { host: target, port, path: '/healthz', method: 'GET', timeout: 1000, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (body.length < 4096) body += chunk;
        });
        res.on('end', () => {
          if (res.statusCode === 200 && /"status"\s*:\s*"alive"/.test(body))
            resolve('aimm-store http');
          else if (res.statusCode === 426 && body.includes('Juggler'))
            resolve('aimm-store juggler');
          else resolve('http');
        });
        res.on('error', () => resolve('http'));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve('unknown'));
    req.end();
  });
}
