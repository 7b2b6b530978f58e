/**
 * Our own events coming back. The server sends a registered event back twice: in the
 * notification of every subscriber whose subscription matches it (ours included, before the
 * register response) and in the register response. A large json payload is received as a view of
 * the message (`ReceivedJsonPayload`), which pins the whole message in memory as long as the
 * event lives. When the text is the one we sent (compared as bytes, without decoding it), the
 * event takes the payload object we sent instead: nothing refers to the message any more, and its
 * memory can hold the next message (see `FrameReader.recycle`). Receivers then also recognise
 * their own payload by identity.
 *
 * The text is compared once per event: the notification comes first, and the register response
 * then carries the same event (the same id) again, which takes the payload the notification's
 * copy took without a second comparison.
 */
import type { Event, EventId, RegisterEvent } from './common.js';
import { ReceivedJsonPayload, sameJsonText } from './payload.js';

/** The event a sent payload was recognised in (a notification), by the payload object. */
const recognisedIn = new WeakMap<object, EventId>();

function sameId(a: EventId, b: EventId): boolean {
  return a.server === b.server && a.session === b.session && a.instance === b.instance;
}

/** True when the two event types are equal segment by segment. */
function sameType(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * `received` carries the payload of `sent` (same type, same JSON text): it takes that payload.
 * `byId`: a register response, whose events may have been recognised in a notification already.
 */
function adopt(received: Event, sent: RegisterEvent | undefined, byId: boolean): boolean {
  const p = received.payload;
  const q = sent?.payload;
  if (!(p instanceof ReceivedJsonPayload) || q?.kind !== 'json' || sent === undefined) return false;
  if (!sameType(received.type, sent.type)) return false;
  const seen = byId ? recognisedIn.get(q) : undefined;
  if (seen !== undefined && sameId(seen, received.id)) {
    // The same event as the notification's, where the text was compared.
    received.payload = q;
    return true;
  }
  if (!sameJsonText(p, q)) return false;
  received.payload = q;
  recognisedIn.set(q, received.id);
  return true;
}

/**
 * The register response's events take the payloads of the request's events at the same index
 * (the response lists them in request order) when they carry the same text. True when no event
 * refers to the received message any more.
 */
export function adoptInResponse(received: Event[], sent: readonly RegisterEvent[]): boolean {
  let pinned = false;
  for (let i = 0; i < received.length; i++) {
    const e = received[i] as Event;
    if (e.payload instanceof ReceivedJsonPayload && !adopt(e, sent[i], true)) pinned = true;
  }
  return !pinned;
}

/**
 * The notified events take the payloads of events of requests still in flight when they carry
 * the same type and text. True when no event refers to the received message any more.
 */
export function adoptInNotify(
  received: Event[],
  inFlightOf: () => readonly (readonly RegisterEvent[])[],
): boolean {
  let pinned = false;
  let inFlight: readonly (readonly RegisterEvent[])[] | null = null;
  for (const e of received) {
    if (!(e.payload instanceof ReceivedJsonPayload)) continue;
    inFlight ??= inFlightOf();
    let found = false;
    for (const sent of inFlight) {
      for (const s of sent) {
        if (adopt(e, s, false)) {
          found = true;
          break;
        }
      }
      if (found) break;
    }
    if (!found) pinned = true;
  }
  return !pinned;
}
