/**
 * The event backend's model size limit (issue 16): 32 MiB by default, at most 188 MiB (the event,
 * 4/3 of the model, must fit one 256 MiB eventer frame), refused with a message naming the setting.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BackendError } from '../../src/backend/types.js';
import { MAX_INSTANCE_BYTES_LIMIT, parseConfig } from '../../src/backends/event/config.js';
import { confSchema } from '../../src/backends/event.js';
import { SchemaRegistry } from '../../src/common/schema.js';
import { busyAllowanceMs } from '../../src/hat/chatter/connection.js';
import { DEFAULT_MAX_FRAME_SIZE } from '../../src/hat/chatter/message.js';
import type { HatPeer } from '../peer/hat-peer.js';
import { openBackend, peerContext, startPeer } from './support.js';

const base = { module: 'aimm-store/backends/event', model_prefix: ['aimm', 'model'] };

describe('event backend model size', () => {
  let peer: HatPeer;
  before(async () => {
    peer = await startPeer();
  });
  after(() => peer.close());

  it('defaults to 32 MiB; at most 188 MiB, whose event still fits one eventer frame', () => {
    assert.equal(parseConfig(base).maxInstanceBytes, 32 * 1024 * 1024);
    assert.equal(MAX_INSTANCE_BYTES_LIMIT, 188 * 1024 * 1024);
    assert.ok((MAX_INSTANCE_BYTES_LIMIT * 4) / 3 + 4 * 1024 * 1024 <= DEFAULT_MAX_FRAME_SIZE);
    assert.equal(
      parseConfig({ ...base, max_instance_bytes: MAX_INSTANCE_BYTES_LIMIT }).maxInstanceBytes,
      MAX_INSTANCE_BYTES_LIMIT,
    );
    assert.throws(
      () => parseConfig({ ...base, max_instance_bytes: MAX_INSTANCE_BYTES_LIMIT + 1 }),
      (e: unknown) =>
        e instanceof BackendError &&
        e.code === 'invalid' &&
        /max_instance_bytes must be at most 197132288 \(188 MiB\)/.test(e.message),
    );
    const schemas = new SchemaRegistry();
    assert.deepEqual(
      schemas
        .validate(
          confSchema,
          { ...base, max_instance_bytes: MAX_INSTANCE_BYTES_LIMIT + 1 },
          '$.backend',
        )
        .map((i) => `${i.path} ${i.rule}`),
      ['$.backend.max_instance_bytes maximum'],
    );
  });

  it('a model over the limit is refused with too_large, naming the setting', async () => {
    const b = await openBackend(peerContext(peer), { max_instance_bytes: 1000 });
    try {
      await assert.rejects(b.createModel('t', new Uint8Array(1001)), (e: unknown) => {
        assert.ok(e instanceof BackendError && e.code === 'too_large');
        assert.match(
          e.message,
          /^instance of 1001 bytes exceeds the event backend's max_instance_bytes \(1000\): .*Model size/,
        );
        return true;
      });
    } finally {
      await b.close();
    }
  });

  it('the allowance for a busy Hat: 1 ms per 1000 bytes (1 MB/s)', () => {
    assert.deepEqual(
      [busyAllowanceMs(0), busyAllowanceMs(1), busyAllowanceMs(63_000_000)],
      [0, 1, 63_000],
    );
  });
});
