/** Time limits on requests to Hat (register, recovery queries). */

/** A request to Hat got no answer within its time limit. */
export class RequestTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what} got no response within ${ms} ms`);
    this.name = 'RequestTimeoutError';
  }
}

/** Settles like `p`, or rejects with a {@link RequestTimeoutError} after `ms`. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RequestTimeoutError(what, ms)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
