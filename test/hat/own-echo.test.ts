/**
 * Our own events coming back (src/hat/eventer/own-echo.ts): a received large payload equal to one
 * we sent takes the sent payload object; anything else stays as received; the register response's
 * copy of an event already recognised in a notification is taken by its id.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Event, EventId, RegisterEvent } from '../../src/hat/eventer/common.js';
import { adoptInNotify, adoptInResponse } from '../../src/hat/eventer/own-echo.js';
import {
  LARGE_JSON_TEXT_BYTES,
  PartsJsonPayload,
  ReceivedJsonPayload,
} from '../../src/hat/eventer/payload.js';

const big = (c: string) => `"${c.repeat(LARGE_JSON_TEXT_BYTES)}"`;

function sent(type: string[], text: string): RegisterEvent {
  return { type, sourceTimestamp: null, payload: new PartsJsonPayload([text]) };
}

function received(type: string[], text: string, instance = 1): Event {
  const id: EventId = { server: 1, session: 7, instance };
  return {
    id,
    type,
    timestamp: { s: 1, us: 0 },
    sourceTimestamp: null,
    payload: new ReceivedJsonPayload(Buffer.from(text)),
  };
}

describe('own echoes', () => {
  test('a notification: same type and text adopts the sent payload; others stay as received', () => {
    const mine = sent(['m', '1'], big('a'));
    const events = [received(['m', '1'], big('a'), 1)];
    assert.equal(
      adoptInNotify(events, () => [[mine]]),
      true,
    );
    assert.equal(events[0]?.payload, mine.payload);
    for (const other of [received(['m', '2'], big('a')), received(['m', '1'], big('b'))]) {
      assert.equal(
        adoptInNotify([other], () => [[mine]]),
        false,
      );
      assert.ok(other.payload instanceof ReceivedJsonPayload);
    }
  });

  test('small payloads are not views of the message: nothing to adopt, nothing pinned', () => {
    const small: Event = { ...received(['m', '1'], '1'), payload: { kind: 'json', text: '1' } };
    let asked = false;
    assert.equal(
      adoptInNotify([small], () => {
        asked = true;
        return [];
      }),
      true,
    );
    assert.equal(asked, false, 'requests in flight are not even listed');
  });

  test('a response: by index and text, or by the id a notification recognised', () => {
    const mine = sent(['m', '1'], big('a'));
    const first = [received(['m', '1'], big('a'), 5)];
    assert.equal(adoptInResponse(first, [mine]), true);
    assert.equal(first[0]?.payload, mine.payload);
    // Different text at the same index: kept as received.
    const other = [received(['m', '1'], big('c'), 6)];
    assert.equal(adoptInResponse(other, [mine]), false);

    const again = sent(['m', '3'], big('d'));
    assert.equal(
      adoptInNotify([received(['m', '3'], big('d'), 9)], () => [[again]]),
      true,
    );
    // The response's copy of event 9 is taken by its id (its text is not read again: a copy that
    // differed would be the server's error, not a foreign event).
    const copy = [received(['m', '3'], big('e'), 9)];
    assert.equal(adoptInResponse(copy, [again]), true);
    assert.equal(copy[0]?.payload, again.payload);
    // Another id with another text is compared, and refused.
    const notSame = [received(['m', '3'], big('e'), 10)];
    assert.equal(adoptInResponse(notSame, [again]), false);
  });
});
