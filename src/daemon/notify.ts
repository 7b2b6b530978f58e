/**
 * systemd's notification protocol (sd_notify): `KEY=VALUE` lines in one datagram to the AF_UNIX
 * socket named by `NOTIFY_SOCKET`. Without `NOTIFY_SOCKET` every call does nothing.
 *
 * - A path socket (`/run/systemd/notify`, the normal case) is written with `unix-dgram`, from this
 *   process, so `NotifyAccess=main` accepts it.
 * - An abstract socket (`@name`) cannot be addressed by `unix-dgram` (it copies the name as a C
 *   string and passes the full sockaddr length). Those go through the `systemd-notify` tool, whose
 *   messages come from a child process: systemd accepts them only with `NotifyAccess=all`. A
 *   warning at start says so.
 *
 * `WATCHDOG_USEC` (and `WATCHDOG_PID`, when it names this process) gives the watchdog interval;
 * {@link startWatchdog} sends `WATCHDOG=1` every half interval while the daemon is healthy.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import type { UnixDgramSocket } from 'unix-dgram';

export type NotifyFields = Readonly<Record<string, string | number>>;

export interface Notifier {
  /** False when there is no `NOTIFY_SOCKET`. */
  readonly enabled: boolean;
  /** Half of `WATCHDOG_USEC` in ms, or null when systemd runs no watchdog for us. */
  readonly watchdogIntervalMs: number | null;
  /** Sends one message; fields keep their order (`READY=1\nSTATUS=...`). Never throws. */
  send(fields: NotifyFields): void;
  close(): void;
}

type Env = Readonly<Record<string, string | undefined>>;

export function createNotifier(logger: Logger, env: Env = process.env): Notifier {
  const socketName = env.NOTIFY_SOCKET;
  const watchdogIntervalMs = watchdogInterval(env);
  if (socketName === undefined || socketName === '') {
    return { enabled: false, watchdogIntervalMs: null, send() {}, close() {} };
  }
  const transport = socketName.startsWith('@')
    ? toolTransport(socketName, logger)
    : dgramTransport(socketName, logger);
  if (transport === null) {
    return { enabled: false, watchdogIntervalMs: null, send() {}, close() {} };
  }
  let closed = false;
  return {
    enabled: true,
    watchdogIntervalMs,
    send(fields) {
      if (closed) return;
      transport.send(formatMessage(fields));
    },
    close() {
      if (closed) return;
      closed = true;
      transport.close();
    },
  };
}

/** `KEY=VALUE` lines; newlines inside values become spaces (a value is one line). */
export function formatMessage(fields: NotifyFields): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${String(v).replace(/[\r\n]+/g, ' ')}`)
    .join('\n');
}

function watchdogInterval(env: Env): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  if (env.WATCHDOG_USEC === undefined || !Number.isFinite(usec) || usec <= 0) return null;
  if (env.WATCHDOG_PID !== undefined && Number(env.WATCHDOG_PID) !== process.pid) return null;
  return Math.max(1, Math.floor(usec / 2000));
}

interface Transport {
  send(message: string): void;
  close(): void;
}

function dgramTransport(path: string, logger: Logger): Transport | null {
  let socket: UnixDgramSocket;
  try {
    const require = createRequire(import.meta.url);
    const unix = require('unix-dgram') as typeof import('unix-dgram');
    socket = unix.createSocket('unix_dgram');
  } catch (err) {
    logger.error(
      { err, notifySocket: path },
      'systemd notification disabled: no unix datagram socket',
    );
    return null;
  }
  let failures = 0;
  const onError = (err: Error) => {
    // One line for the first failure and then every 100th, so a missing socket cannot flood logs.
    if (failures++ % 100 === 0) {
      logger.warn(
        { err: err.message, notifySocket: path, failures },
        'systemd notification failed',
      );
    }
  };
  socket.on('error', onError);
  socket.on('congestion', () => onError(new Error('notify socket congested')));
  return {
    send(message) {
      const buf = Buffer.from(message, 'utf8');
      try {
        socket.send(buf, 0, buf.length, path, (err) => {
          if (err !== undefined && err !== null) onError(err);
        });
      } catch (err) {
        onError(err as Error);
      }
    },
    close() {
      try {
        socket.close();
      } catch {
        // already closed
      }
    },
  };
}

function toolTransport(name: string, logger: Logger): Transport {
  logger.warn(
    { notifySocket: name },
    'NOTIFY_SOCKET is an abstract socket, which unix-dgram cannot address: notifications go ' +
      'through systemd-notify, which systemd accepts only with NotifyAccess=all',
  );
  // Messages are sent one after another so that their order holds.
  let chain: Promise<void> = Promise.resolve();
  let closed = false;
  return {
    send(message) {
      chain = chain.then(
        () =>
          new Promise<void>((resolve) => {
            if (closed) return resolve();
            const env = { ...process.env, NOTIFY_SOCKET: name };
            execFile('systemd-notify', message.split('\n'), { timeout: 5000, env }, (err) => {
              if (err !== null) {
                logger.warn({ err: err.message, notifySocket: name }, 'systemd-notify failed');
              }
              resolve();
            });
          }),
      );
    },
    close() {
      // Let queued messages (STOPPING=1) go out; nothing new is accepted.
      void chain.then(() => {
        closed = true;
      });
    },
  };
}

/**
 * Sends `WATCHDOG=1` every `notifier.watchdogIntervalMs` while `healthy()` is true. The timer is
 * unref'ed: it never keeps the process alive. Returns the function that stops it.
 */
export function startWatchdog(notifier: Notifier, healthy: () => boolean): () => void {
  const interval = notifier.watchdogIntervalMs;
  if (!notifier.enabled || interval === null) return () => {};
  const timer = setInterval(() => {
    if (healthy()) notifier.send({ WATCHDOG: 1 });
  }, interval);
  timer.unref();
  return () => clearInterval(timer);
}
