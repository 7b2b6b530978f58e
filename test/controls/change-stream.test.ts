/**
 * A ChangeStream against a fake response whose socket never drains: the client is dropped for
 * stalling, or for lagging once the ring has moved past it; either way it is destroyed and
 * reported once.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { test } from 'node:test';
import type { ModelChange } from '../../src/backend/types.js';
import { ChangeRing } from '../../src/controls/http/change-ring.js';
import { ChangeStream, type DropReason } from '../../src/controls/http/change-stream.js';

class StuckResponse extends EventEmitter {
  written: string[] = [];
  destroyed = false;
  write(text: string): boolean {
    this.written.push(text);
    return false;
  }
  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

const change = (id: number): ModelChange => ({
  change: 'created',
  instanceId: id,
  modelType: 't',
  revision: 1,
  origin: 'local',
});

function setup(stallMs: number) {
  const ring = new ChangeRing(3, (c) => JSON.stringify({ id: c.instanceId }));
  const res = new StuckResponse();
  const drops: DropReason[] = [];
  let dropped: () => void = () => {};
  const whenDropped = new Promise<void>((resolve) => {
    dropped = resolve;
  });
  const stream = new ChangeStream(res as unknown as ServerResponse, ring, {
    type: null,
    stallMs,
    onDrop: (reason) => {
      drops.push(reason);
      dropped();
    },
  });
  return { ring, res, drops, stream, whenDropped };
}

test('a client whose socket stays full is dropped as stalled', async () => {
  const { ring, res, drops, stream, whenDropped } = setup(1);
  stream.resume(ring.seq);
  ring.push(change(1));
  stream.changed();
  assert.equal(stream.blocked, true);
  await whenDropped;
  assert.deepEqual(drops, ['stalled']);
  assert.equal(res.destroyed, true);
  assert.equal(stream.closed, true);
});

test('a blocked client the ring leaves behind is dropped as lagging, once', () => {
  const { ring, res, drops, stream } = setup(3_600_000);
  stream.resume(ring.seq); // `synced` is written, and the socket is full from now on
  assert.equal(res.written.length, 1);
  assert.match(res.written[0] ?? '', /^id: [0-9a-f]{16}-0\nevent: synced\n/);
  for (let i = 1; i <= 3; i++) {
    ring.push(change(i));
    stream.changed();
  }
  assert.deepEqual(drops, [], 'changes 1..3 are all still in the ring');
  ring.push(change(4));
  stream.changed();
  ring.push(change(5));
  stream.changed();
  assert.deepEqual(drops, ['lagging']);
  assert.equal(res.destroyed, true);
  assert.equal(res.written.length, 1, 'nothing more was written to the blocked socket');
});
