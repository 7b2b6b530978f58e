/**
 * `aimm-events.json`: the events and frames the real AIMM event backend sends. Our codec encodes
 * the same register events and frames, our client sends the same startup frames, and the AIMM
 * payload rule gives the same JSON text.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { encodeFrame } from '../../src/hat/chatter/message.js';
import { connect } from '../../src/hat/eventer/client.js';
import { encodeInitRes, encodeQueryRes, encodeRegisterReq } from '../../src/hat/eventer/codec.js';
import type { RegisterEvent } from '../../src/hat/eventer/common.js';
import { pythonJsonDumps } from '../../src/hat/eventer/json.js';
import { RawFrames } from './replay.js';
import { hex, loadVectors, unhex } from './vectors.js';

interface FrameVec {
  msg: {
    id: number;
    first: number;
    owner: boolean;
    token: boolean;
    last: boolean;
    data: { type: string; data_hex: string };
  };
  frame_hex: string;
}
interface AimmEvent {
  model: { instance_id: number; model_type: string; serialized_instance_hex: string };
  register_event: { type: string[]; sourceTimestamp: null; payload: ['json', string] };
  register_event_hex: string;
  json_payload_text: string;
  msg_register_req: { hex: string };
  frame_as_sent: FrameVec;
}
const file = loadVectors<{
  model_prefix: string[];
  events: AimmEvent[];
  all_three_in_one_request: { hex: string };
  startup: { init_req: FrameVec; query_req: FrameVec };
}>('aimm-events.json');

/** The AIMM rule: type [...prefix, String(id)], no source time, json {type, instance: base64}. */
function aimmEvent(prefix: string[], m: AimmEvent['model']): RegisterEvent {
  const instance = Buffer.from(m.serialized_instance_hex, 'hex').toString('base64');
  return {
    type: [...prefix, String(m.instance_id)],
    sourceTimestamp: null,
    payload: {
      kind: 'json',
      text: pythonJsonDumps(JSON.stringify({ type: m.model_type, instance })),
    },
  };
}

const frameOf = (f: FrameVec) =>
  encodeFrame({ ...f.msg, type: f.msg.data.type, data: unhex(f.msg.data.data_hex) });

describe('aimm-events.json', () => {
  test('the AIMM payload rule and our codec give the recorded bytes', () => {
    assert.equal(file.events.length, 3);
    const events = file.events.map((e) => aimmEvent(file.model_prefix, e.model));
    for (const [i, e] of file.events.entries()) {
      const ours = events[i] as RegisterEvent;
      assert.equal((ours.payload as { text: string }).text, e.json_payload_text);
      assert.equal(hex(encodeRegisterReq([ours])), e.msg_register_req.hex);
      assert.equal(hex(frameOf(e.frame_as_sent)), e.frame_as_sent.frame_hex);
    }
    assert.equal(hex(encodeRegisterReq(events)), file.all_three_in_one_request.hex);
  });

  test('our client sends the recorded startup frames and register frame', async () => {
    const { init_req, query_req } = file.startup;
    const first = file.events[0] as AimmEvent;
    const server = createServer(async (s) => {
      const frames = new RawFrames(s);
      try {
        assert.equal(hex((await frames.next(3000)) as Buffer), init_req.frame_hex);
        s.write(
          encodeFrame({
            id: 1,
            first: 1,
            owner: false,
            token: true,
            last: true,
            type: 'HatEventer.MsgInitRes',
            data: encodeInitRes({ kind: 'success', status: 'operational' }),
          }),
        );
        assert.equal(hex((await frames.next(3000)) as Buffer), query_req.frame_hex);
        s.write(
          encodeFrame({
            id: 2,
            first: 2,
            owner: false,
            token: true,
            last: true,
            type: 'HatEventer.MsgQueryRes',
            data: encodeQueryRes({ events: [], moreFollows: false }),
          }),
        );
        assert.equal(hex((await frames.next(3000)) as Buffer), first.frame_as_sent.frame_hex);
        s.end();
      } catch (err) {
        s.destroy(err as Error);
        failure = err;
      }
    });
    let failure: unknown = null;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const c = await connect(
        { host: '127.0.0.1', port },
        { clientName: 'aimm', subscriptions: [[...file.model_prefix, '*']] },
      );
      await c.query({ kind: 'latest', eventTypes: [[...file.model_prefix, '*']] });
      await c.registerNoResponse([aimmEvent(file.model_prefix, first.model)]);
      await c.closed;
      assert.equal(failure, null);
    } finally {
      server.close();
    }
  });
});
