/**
 * The failure of a history call on a backend that keeps no history (`getHistory`/`getRevision`
 * absent). Its code stays `invalid` (what the Juggler control has always answered); the HTTP
 * control tells it apart by its class and answers 501.
 */
import { BackendError } from './types.js';

export class NoHistoryError extends BackendError {
  constructor(message = 'this backend keeps no model history') {
    super('invalid', message);
    this.name = 'NoHistoryError';
  }
}
