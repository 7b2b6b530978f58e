/**
 * AIMM compatibility, driven by `../shared/hat-vectors/aimm-events.json` (what AIMM's event backend
 * really sent): our register requests for those models are byte-identical to AIMM's, our startup
 * (init subscriptions, latest query) is AIMM's, and AIMM's own frames replayed byte for byte into
 * the Hat peer become the same models in our backend.
 */
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { EventBackend } from '../../src/backends/event/backend.js';
import { decodeModelEvent, modelRegisterEvent } from '../../src/backends/event/format.js';
import { create } from '../../src/backends/event.js';
import {
  encodeRegisterReq,
  MSG_INIT_REQ,
  MSG_QUERY_REQ,
  MSG_REGISTER_REQ,
} from '../../src/hat/eventer/codec.js';
import type { RegisterEvent } from '../../src/hat/eventer/common.js';
import { hex, loadVectors } from '../hat/vectors.js';
import type { HatPeer } from '../peer/hat-peer.js';
import {
  ChangeLog,
  eventConf,
  peerContext,
  type RecordingProxy,
  startPeer,
  startRecordingProxy,
  waitFor,
  withTimeout,
} from './support.js';

interface AimmVectors {
  model_prefix: string[];
  events: {
    model: { instance_id: number; model_type: string; serialized_instance_hex: string };
    json_payload_text: string;
    register_event_hex: string;
    msg_register_req: { hex: string };
    frame_as_sent: { frame_hex: string };
  }[];
  all_three_in_one_request: { hex: string };
  startup: {
    init_req: { msg: { data: { data_hex: string } }; frame_hex: string };
    query_req: { msg: { data: { data_hex: string } }; frame_hex: string };
  };
}

const V = loadVectors<AimmVectors>('aimm-events.json');
const PREFIX = V.model_prefix;

describe('AIMM compatibility (hat-vectors/aimm-events.json)', () => {
  it('our register event for each model encodes to the bytes AIMM sent', () => {
    const all: RegisterEvent[] = [];
    for (const v of V.events) {
      const ev = modelRegisterEvent(PREFIX, v.model.instance_id, v.model.model_type, unhexBytes(v));
      all.push(ev);
      assert.equal(ev.payload?.kind, 'json');
      assert.equal(ev.payload.text, v.json_payload_text);
      assert.equal(ev.sourceTimestamp, null);
      assert.equal(hex(encodeRegisterReq([ev])), v.msg_register_req.hex);
      // The single RegisterEvent is the request minus its array count byte (0x81).
      assert.equal(hex(encodeRegisterReq([ev])).slice(2), v.register_event_hex);
    }
    assert.equal(hex(encodeRegisterReq(all)), V.all_three_in_one_request.hex);
  });

  it("AIMM's events decode to the same models", () => {
    for (const v of V.events) {
      const m = decodeModelEvent(PREFIX, {
        type: [...PREFIX, String(v.model.instance_id)],
        payload: { kind: 'json', text: v.json_payload_text },
      });
      assert.equal(m.kind, 'model');
      if (m.kind !== 'model') continue;
      assert.equal(m.instanceId, v.model.instance_id);
      assert.equal(m.modelType, v.model.model_type);
      assert.equal(hex(m.instance), v.model.serialized_instance_hex);
    }
  });

  describe('on the wire, through a recording proxy', () => {
    let peer: HatPeer;
    let proxy: RecordingProxy;
    before(async () => {
      peer = await startHatPeerForAimm();
      proxy = await startRecordingProxy(peer);
    });
    after(async () => {
      await proxy.close();
      await peer.close();
    });

    it("our backend's startup and register requests carry AIMM's exact bytes", async () => {
      const ctx = peerContext(proxy, { clientName: 'aimm' });
      // full_replay: latest recovers with AIMM's own startup scan (one latest query).
      const b = create(
        eventConf({ model_prefix: PREFIX, full_replay: 'latest' }),
        ctx,
      ) as EventBackend;
      try {
        await withTimeout(b.whenReady(), 5000, 'ready');
        const init = proxy.sent.find((m) => m.type === MSG_INIT_REQ);
        assert.equal(hex(init?.data ?? new Uint8Array()), V.startup.init_req.msg.data.data_hex);
        const query = proxy.sent.find((m) => m.type === MSG_QUERY_REQ);
        assert.equal(hex(query?.data ?? new Uint8Array()), V.startup.query_req.msg.data.data_hex);

        const log = new ChangeLog(b);
        const [m1, m2, m10] = V.events;
        assert.ok(m1 && m2 && m10);
        const r1 = await b.createModel(m1.model.model_type, unhexBytes(m1));
        const r2 = await b.createModel(m2.model.model_type, unhexBytes(m2));
        assert.deepEqual([r1.meta.instanceId, r2.meta.instanceId], [1, 2]);
        // Another writer takes ids up to 9, so our next id is AIMM's third one: 10.
        peer.register([
          {
            type: [...PREFIX, '9'],
            sourceTimestamp: null,
            payload: { kind: 'json', text: '{"type": "other", "instance": ""}' },
          },
        ]);
        await log.waitFor((c) => c.instanceId === 9 && c.origin === 'remote', 'model 9');
        const r10 = await b.createModel(m10.model.model_type, unhexBytes(m10));
        assert.equal(r10.meta.instanceId, 10);

        const registers = proxy.sent.filter((m) => m.type === MSG_REGISTER_REQ);
        assert.deepEqual(
          registers.map((m) => hex(m.data)),
          V.events.map((v) => v.msg_register_req.hex),
        );
        // The one deliberate difference: we ask for a response (last=false); AIMM did not.
        for (const m of registers) assert.equal(m.last, false);
      } finally {
        await b.close();
      }
    });
  });

  it("AIMM's own frames, replayed byte for byte as another client, become our models", async () => {
    const peer = await startHatPeerForAimm();
    const b = create(eventConf({ model_prefix: PREFIX }), peerContext(peer)) as EventBackend;
    try {
      await withTimeout(b.whenReady(), 5000, 'ready');
      const log = new ChangeLog(b);
      await replayAimmClient(peer);
      await log.waitFor((c) => c.instanceId === 10, 'model 10');
      const models = await b.getModels();
      assert.deepEqual(
        models.map((m) => [m.instanceId, m.modelType]),
        V.events.map((v) => [v.model.instance_id, v.model.model_type]),
      );
      for (const v of V.events) {
        const m = await b.getModel(v.model.instance_id);
        assert.equal(hex(m?.instance ?? new Uint8Array()), v.model.serialized_instance_hex);
      }
      assert.ok(log.changes.every((c) => c.origin === 'remote' && c.change === 'created'));
      // AIMM would reuse 10 after a restart; we continue above it.
      const c = await b.createModel('t', new Uint8Array([1]));
      assert.equal(c.meta.instanceId, 11);
    } finally {
      await b.close();
      await peer.close();
    }
  });
});

function startHatPeerForAimm(): Promise<HatPeer> {
  return startPeer({ engineEvents: false });
}

function unhexBytes(v: AimmVectors['events'][number]): Uint8Array {
  return new Uint8Array(Buffer.from(v.model.serialized_instance_hex, 'hex'));
}

/** Sends AIMM's recorded frames (init, startup query, three registers without response). */
async function replayAimmClient(peer: HatPeer): Promise<void> {
  const socket = tcpConnect(peer.port, peer.host);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const received: Buffer[] = [];
  socket.on('data', (d: Buffer) => received.push(d));
  socket.write(Buffer.from(V.startup.init_req.frame_hex, 'hex'));
  await waitFor(() => received.length > 0, 'init response');
  socket.write(Buffer.from(V.startup.query_req.frame_hex, 'hex'));
  for (const v of V.events) socket.write(Buffer.from(v.frame_as_sent.frame_hex, 'hex'));
  await waitFor(() => peer.events.filter((e) => e.type[0] === 'aimm').length === 3, 'registered');
  socket.destroy();
}
