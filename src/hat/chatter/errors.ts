/**
 * Typed errors of a Hat connection (chatter transport and the eventer protocol above it).
 *
 * Every error that ends a connection or fails a request is a {@link HatConnectionError} with a
 * `code`, so callers can branch on it without parsing messages.
 */

export type HatConnectionErrorCode =
  | 'connect_failed'
  | 'connect_timeout'
  | 'closed'
  | 'protocol'
  | 'frame_too_large'
  | 'ping_timeout'
  | 'init_failed';

export class HatConnectionError extends Error {
  readonly code: HatConnectionErrorCode;
  constructor(code: HatConnectionErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HatConnectionError';
    this.code = code;
  }
}

/** The TCP connection could not be established (refused, unreachable, timed out). */
export class ConnectError extends HatConnectionError {
  /** `host:port` that was tried. */
  readonly address: string;
  /** The system error code when there is one (e.g. `ECONNREFUSED`). */
  readonly syscallCode: string | undefined;
  constructor(
    code: 'connect_failed' | 'connect_timeout',
    address: string,
    message: string,
    options?: { cause?: unknown; syscallCode?: string },
  ) {
    super(code, message, options);
    this.name = 'ConnectError';
    this.address = address;
    this.syscallCode = options?.syscallCode;
  }
}

/**
 * The connection is closed: by the peer, locally, or because of another error (then `cause` holds
 * it). Requests pending when a connection ends are rejected with this error.
 */
export class ConnectionClosedError extends HatConnectionError {
  constructor(message = 'connection closed', options?: { cause?: unknown }) {
    super('closed', message, options);
    this.name = 'ConnectionClosedError';
  }
}

/** The peer sent something the protocol does not allow; the connection is closed. */
export class ProtocolError extends HatConnectionError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('protocol', message, options);
    this.name = 'ProtocolError';
  }
}

/** A frame announced a body larger than the configured maximum (rejected before buffering it). */
export class FrameTooLargeError extends HatConnectionError {
  readonly size: number;
  readonly maxFrameSize: number;
  constructor(size: number, maxFrameSize: number) {
    super(
      'frame_too_large',
      `frame body of ${size === Number.POSITIVE_INFINITY ? 'more than 2^53' : size} bytes exceeds the maximum frame size ${maxFrameSize}`,
    );
    this.name = 'FrameTooLargeError';
    this.size = size;
    this.maxFrameSize = maxFrameSize;
  }
}

/**
 * Nothing arrived within the ping timeout after our Ping; the connection is closed. `owedBytes`:
 * bytes of ours the peer had not answered yet, for which the wait was extended by `extraMs`.
 */
export class PingTimeoutError extends HatConnectionError {
  readonly timeoutMs: number;
  readonly owedBytes: number;
  readonly extraMs: number;
  constructor(
    timeoutMs: number,
    owed: { bytes: number; extraMs: number } = { bytes: 0, extraMs: 0 },
  ) {
    super(
      'ping_timeout',
      owed.extraMs > 0
        ? `no message from the peer within ${timeoutMs + owed.extraMs} ms after a ping (the ping timeout of ${timeoutMs} ms plus ${owed.extraMs} ms for the ${owed.bytes} bytes it had not answered yet)`
        : `no message from the peer within ${timeoutMs} ms after a ping`,
    );
    this.name = 'PingTimeoutError';
    this.timeoutMs = timeoutMs;
    this.owedBytes = owed.bytes;
    this.extraMs = owed.extraMs;
  }
}
