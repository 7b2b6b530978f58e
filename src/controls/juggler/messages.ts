/**
 * Juggler messages: parsing what a client sends and the texts the server sends, with the key
 * orders hat-juggler uses (response: type, id, data, success; state: type, diff; notify: type,
 * name, data) in Python's `json.dumps` format.
 */

import { modelReplyText } from './fast-texts.js';
import type { PatchOp } from './patch.js';
import { pyDumps, pyNumber } from './pyjson.js';

export interface Request {
  id: number;
  name: string;
  data: unknown;
}

/** Why a client message is not a request we can answer. */
export class MessageError extends Error {
  /** Set when the message is a request whose id could be read (answer it with an error). */
  readonly id: number | null;
  constructor(message: string, id: number | null = null) {
    super(message);
    this.name = 'MessageError';
    this.id = id;
  }
}

export function parseRequest(text: string): Request {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    throw new MessageError('message is not valid JSON');
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg))
    throw new MessageError('message is not a JSON object');
  const m = msg as Record<string, unknown>;
  if (m.type !== 'request')
    throw new MessageError(`unsupported message type ${typeForLog(m.type)}`);
  if (typeof m.id !== 'number' || !Number.isSafeInteger(m.id))
    throw new MessageError('request id is not an integer');
  if (typeof m.name !== 'string') throw new MessageError('request name is not a string', m.id);
  return { id: m.id, name: m.name, data: m.data === undefined ? null : m.data };
}

function typeForLog(t: unknown): string {
  return typeof t === 'string' ? `'${t.slice(0, 32)}'` : typeof t;
}

/**
 * A response. `code` (failures only, see handlers.ts) goes last, after AIMM's keys: clients that
 * know only AIMM's four keys (hat-juggler, @hat-open/juggler) ignore it.
 */
export function responseText(id: number, success: boolean, data: unknown, code?: string): string {
  if (code === undefined) {
    // A write's meta_only reply (one per write) by template: the same text in half the time.
    const reply = success ? modelReplyText(data) : null;
    if (reply !== null)
      return `{"type": "response", "id": ${pyNumber(id)}, "data": ${reply}, "success": true}`;
    return pyDumps({ type: 'response', id, data, success });
  }
  return pyDumps({ type: 'response', id, data, success, code });
}

export function stateText(diff: readonly PatchOp[]): string {
  return pyDumps({ type: 'state', diff });
}

export function notifyText(name: string, data: unknown): string {
  return pyDumps({ type: 'notify', name, data });
}
