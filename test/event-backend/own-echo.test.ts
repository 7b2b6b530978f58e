/**
 * Our own large write comes back twice (the register response and the subscription's notify);
 * the backend recognises both by comparing the payload bytes with what it sent, so the received
 * text (kept as bytes, see src/hat/eventer/payload.ts) is never decoded into a string. A remote
 * writer's event is decoded as before.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { jsonPayload } from '../../src/hat/eventer/common.js';
import { LARGE_JSON_TEXT_BYTES } from '../../src/hat/eventer/payload.js';
import type { HatPeer } from '../peer/hat-peer.js';
import { spyTextReads } from '../support/text-reads.js';
import { openBackend, PREFIX, peerContext, sleep, startPeer, waitFor } from './support.js';

/**
 * Counts decodes of received payload texts made by the event backend's own code (the test peer
 * runs in this process and decodes the requests it receives: those are not counted).
 */
const spyBackendTextReads = () => spyTextReads((caller) => caller.includes('/backends/event/'));

describe('event backend: own large writes are recognised as bytes', () => {
  let peer: HatPeer;
  before(async () => {
    peer = await startPeer();
  });
  after(() => peer.close());

  it('does not decode the echoed text of its own write, and still decodes a remote one', async () => {
    const b = await openBackend(peerContext(peer));
    const spy = spyBackendTextReads();
    try {
      const mine = randomBytes(LARGE_JSON_TEXT_BYTES * 2);
      const created = await b.createModel('big.Model', mine);
      const id = created.meta.instanceId;
      const next = randomBytes(LARGE_JSON_TEXT_BYTES);
      const updated = await b.updateModel(id, 'big.Model', next);
      // Both copies of each event (response and notify; the persisted one after the flush).
      peer.flush();
      await sleep(50);
      assert.equal(spy.count(), 0);
      assert.equal(updated.meta.revision, 2);
      assert.ok(Buffer.from((await b.getModel(id))?.instance ?? []).equals(next));

      const theirs = randomBytes(LARGE_JSON_TEXT_BYTES * 2);
      peer.register([
        {
          type: [...PREFIX, String(id)],
          sourceTimestamp: null,
          payload: jsonPayload({ type: 'their.Model', instance: theirs.toString('base64') }),
        },
      ]);
      await waitFor(
        async () => (await b.getModel(id))?.modelType === 'their.Model',
        'the remote write',
      );
      assert.ok(spy.count() >= 1, 'the remote event was decoded by the backend');
      assert.ok(Buffer.from((await b.getModel(id))?.instance ?? []).equals(theirs));
    } finally {
      spy.restore();
      await b.close();
    }
  });
});
