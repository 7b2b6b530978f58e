/**
 * The hat-monitor test double against the real monitor: the recorded sessions of
 * `monitor-vectors/conversations/` replayed into it (its MsgServer stream per connection must be
 * the recorded one, frame for frame, blessing timestamps aside), the blessing rules, invalid
 * input, shutdown and restart, and a bounded fuzz.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { decodeBody, encodeFrame, PING, PONG } from '../../src/hat/chatter/message.js';
import {
  encodeClientMsg,
  MSG_CLIENT,
  MSG_CLOSE,
  MSG_MASTER,
  MSG_SERVER,
  MSG_SLAVE,
} from '../../src/hat/monitor/codec.js';
import { type ComponentInfo, isActive, type ServerMsg } from '../../src/hat/monitor/common.js';
import * as S from '../../src/hat/monitor/schema.js';
import { decode, encode } from '../../src/hat/sbs/codec.js';
import { type MonitorPeer, type MonitorPeerOptions, startMonitorPeer } from './monitor-peer.js';
import {
  Comp,
  loadRecordings,
  monitorConns,
  peerOptions,
  RawClient,
  replay,
  type Step,
  until,
} from './monitor-replay.js';

const recordings = loadRecordings();

async function withPeer(
  opts: MonitorPeerOptions,
  run: (peer: MonitorPeer, comps: Comp[]) => Promise<void>,
): Promise<void> {
  const peer = await startMonitorPeer(opts);
  const comps: Comp[] = [];
  try {
    await run(peer, comps);
  } finally {
    for (const c of comps) await c.close();
    await peer.close();
  }
}

async function comp(peer: MonitorPeer, comps: Comp[], opts = {}): Promise<Comp> {
  const c = await Comp.connect(peer, opts);
  comps.push(c);
  return c;
}

const frameMsg = (f: Buffer) => decodeBody(f.subarray(1 + (f[0] as number)));
/** A one-message conversation frame as a component sends it (a Ping: `last` false). */
const frame = (id: number, type: string, data: Uint8Array, last = true) =>
  encodeFrame({ id, first: id, owner: true, token: true, last, type, data });
const names = (m: ServerMsg | undefined) => m?.components.map((c) => c.name);
/** The request token of the component named `name`; undefined while there is none of that name. */
const token = (cs: ComponentInfo[], name: string) =>
  cs.find((c) => c.name === name)?.blessingReq.token;
const blessed = (cs: ComponentInfo[], name: string) => typeof token(cs, name) === 'number';

// ---------------------------------------------------------------------------------------------

/** Masks blessing timestamps (null stays null, so "timestamp iff token" is still compared). */
function masked(v: ServerMsg): unknown {
  return {
    ...v,
    components: v.components.map((c) => ({
      ...c,
      blessingReq: { ...c.blessingReq, timestamp: c.blessingReq.timestamp === null ? null : 'ts' },
    })),
  };
}

/** token → timestamp of every blessing in a list of MsgServer values; one timestamp per token. */
function timestamps(msgs: ServerMsg[], where: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of msgs) {
    for (const c of m.components) {
      const { token: t, timestamp: ts } = c.blessingReq;
      if (t === null || ts === null) continue;
      assert.equal(out.get(t) ?? ts, ts, `${where}: token ${t} has one timestamp`);
      out.set(t, ts);
    }
  }
  return out;
}

const distinct = (xs: unknown[]) =>
  xs.filter((x, i) => i === 0 || JSON.stringify(x) !== JSON.stringify(xs[i - 1]));

describe('the recorded sessions replayed into the double', { timeout: 60_000 }, () => {
  test('all 12 recordings are present', () => {
    assert.equal(recordings.size, 12);
  });

  for (const [name, rec] of recordings) {
    test(name, async () => {
      const conns = monitorConns(rec);
      const peer = await startMonitorPeer({ ...peerOptions(rec), closeTimeoutMs: 50 });
      const t0 = Date.now() / 1000;
      let got: Awaited<ReturnType<typeof replay>>['got'];
      try {
        ({ got } = await replay(rec, conns, peer));
      } finally {
        await peer.close();
      }
      const t1 = Date.now() / 1000;
      for (const conn of conns) {
        const where = `${name} ${conn}`;
        const steps = rec.steps.filter((s) => s.conn === conn && s.dir === 's2c' && !s.eof);
        const frames = got.get(conn)?.frames ?? [];
        const want = steps.map((s) => {
          const d = s.decoded as NonNullable<Step['decoded']>;
          return { ...d, type: d.data.type, data: undefined, payload: d.payload as ServerMsg };
        });
        const have = frames.map((f) => {
          const m = frameMsg(f);
          const payload = (m.type === MSG_SERVER ? decode(S.MsgServer, m.data) : null) as ServerMsg;
          return { ...m, payload };
        });
        /** Header, type and payload with blessing timestamps masked. */
        const view = (x: (typeof have)[number] | (typeof want)[number]) => ({
          id: x.id,
          first: x.first,
          owner: x.owner,
          token: x.token,
          last: x.last,
          type: x.type,
          payload: x.type === MSG_SERVER ? masked(x.payload) : x.payload,
        });
        const states = (xs: typeof have | typeof want) =>
          xs.filter(isServer).map((x) => masked(x.payload));
        // coarse to fine: the distinct states, the final state, then every frame
        const [h, w] = [states(have), states(want)];
        assert.deepEqual(distinct(h), distinct(w), `${where}: distinct states`);
        assert.deepEqual(h.at(-1), w.at(-1), `${where}: final state`);
        assert.deepEqual(
          have.map(view),
          want.map(view),
          `${where}: every frame, stale-then-fresh pairs included`,
        );
        // byte for byte once the recorded timestamps are put in place of the double's
        const ours = timestamps(
          have.filter(isServer).map((x) => x.payload),
          where,
        );
        const theirs = timestamps(
          want.filter(isServer).map((x) => x.payload),
          `${where} (recorded)`,
        );
        assert.deepEqual([...ours.keys()], [...theirs.keys()], `${where}: the same tokens`);
        for (const ts of ours.values()) assert.ok(ts >= t0 - 1 && ts <= t1 + 1, 'epoch seconds');
        for (const [i, m] of have.entries()) {
          let data = m.data;
          if (m.type === MSG_SERVER) {
            const v = decode(S.MsgServer, m.data);
            for (const c of v.components) {
              const t = c.blessingReq.token;
              if (t !== null) c.blessingReq.timestamp = theirs.get(Number(t)) ?? null;
            }
            data = encode(S.MsgServer, v);
          }
          const bytes = encodeFrame({ ...m, data });
          assert.equal(bytes.toString('hex'), steps[i]?.frame_hex, `${where}: frame ${i} bytes`);
        }
        // who closed: a recorded server close must happen; a connection open at the end stays so
        const serverClosed = rec.steps.some((s) => s.conn === conn && s.dir === 's2c' && s.eof);
        const clientClosed = rec.steps.some((s) => s.conn === conn && s.dir === 'c2s' && s.eof);
        if (serverClosed) assert.ok(got.get(conn)?.ended, `${where}: the double closed it`);
        else if (!clientClosed) assert.ok(!got.get(conn)?.ended, `${where}: still open`);
      }
    });
  }
});

function isServer(x: { type: string }): boolean {
  return x.type === MSG_SERVER;
}

// ---------------------------------------------------------------------------------------------

describe('the double', { timeout: 30_000 }, () => {
  test('BLESS_ONE: a lower rank takes over only after the holder revoked its response', async () => {
    await withPeer({}, async (peer, comps) => {
      const a = await comp(peer, comps);
      const b = await comp(peer, comps);
      a.send({ name: 'a', ready: true });
      b.send({ name: 'b', ready: true });
      await a.until((m) => token(m.components, 'a') === 1, 'a blessed');
      a.send({ name: 'a', ready: true, token: 1 });
      await peer.waitFor((cs) => cs.some((c) => c.name === 'a' && isActive(c)));
      peer.setRank((b.own() as ComponentInfo).cid, 0);
      // a loses its request at once; b is not blessed while a still holds response token 1
      let cs = await peer.waitFor((x) => token(x, 'a') === null);
      assert.equal(token(cs, 'b'), null);
      assert.equal(cs.find((c) => c.name === 'b')?.rank, 0);
      a.send({ name: 'a', ready: true, token: null });
      cs = await peer.waitFor((x) => blessed(x, 'b'));
      assert.equal(token(cs, 'b'), 2, 'the next token of the process');
      assert.equal(token(cs, 'a'), null);
    });
  });

  test('BLESS_ALL: every ready component at once; tokens shared with other groups', async () => {
    await withPeer({ groupAlgorithms: { all: 'BLESS_ALL' } }, async (peer, comps) => {
      const [a, b, x] = [await comp(peer, comps), await comp(peer, comps), await comp(peer, comps)];
      x.send({ name: 'x', group: 'other', ready: true });
      await peer.waitFor((cs) => token(cs, 'x') === 1);
      a.send({ name: 'a', group: 'all', ready: true });
      b.send({ name: 'b', group: 'all', ready: true });
      const cs = await peer.waitFor((v) => blessed(v, 'a') && blessed(v, 'b'));
      assert.deepEqual([token(cs, 'a'), token(cs, 'b')], [2, 3]);
      a.send({ name: 'a', group: 'all', ready: true, token: 2 });
      b.send({ name: 'b', group: 'all', ready: true, token: 3 });
      await peer.waitFor((v) => v.filter(isActive).length === 2);
      b.send({ name: 'b', group: 'all', ready: false, token: 3 });
      const after = await peer.waitFor((v) => token(v, 'b') === null);
      assert.equal(token(after, 'a'), 2, 'a keeps its blessing');
    });
  });

  test('unchanged or Python-equal MsgClient sends nothing; data comes back as json.dumps', async () => {
    await withPeer({}, async (peer, comps) => {
      const a = await comp(peer, comps);
      a.send({ name: 'a', data: '{"x":1,"y":[1e3,"ž"]}' });
      await a.until((m) => a.own()?.name === 'a' && m.components.length === 1, 'named');
      assert.equal(a.own()?.data, '{"x": 1, "y": [1000.0, "\\u017e"]}');
      const n = a.msgs.length;
      const inputs = peer.inputCount();
      a.send({ name: 'a', data: '{"y": [1000, "\\u017e"], "x": true}' });
      a.send({ name: 'a', data: '{"x": 1, "y": [1000.0, "ž"]}' });
      a.send({ name: 'a', data: '{"x": 2, "y": []}' });
      await until(() => peer.inputCount() === inputs + 3, 'three messages handled');
      await a.until((m) => ownData(m) === '{"x": 2, "y": []}', 'the real change');
      assert.equal(a.msgs.length, n + 2, 'only the last one broadcast (stale, fresh)');
    });
  });

  test('rank cache: per (name, group) for the process lifetime', async () => {
    await withPeer({ defaultRank: 3 }, async (peer, comps) => {
      const newComp = () => comp(peer, comps, { closeOnMsgClose: true });
      const a = await newComp();
      a.send({ name: 'a' });
      await peer.waitFor((cs) => cs[0]?.name === 'a');
      peer.setRank(1, 7);
      await peer.waitFor((cs) => cs[0]?.rank === 7);
      await a.close();
      const a2 = await newComp();
      const b = await newComp();
      a2.send({ name: 'a' });
      b.send({ name: 'b' });
      let cs = await peer.waitFor((v) => v.length === 2 && v.every((c) => c.name !== null));
      assert.deepEqual(
        cs.map((c) => [c.cid, c.name, c.rank]),
        [
          [2, 'a', 7],
          [3, 'b', 3],
        ],
      );
      await peer.stop();
      await peer.start();
      const a3 = await newComp();
      a3.send({ name: 'a' });
      cs = await peer.waitFor((v) => v[0]?.name === 'a');
      assert.deepEqual([cs[0]?.cid, cs[0]?.rank], [1, 3], 'a restarted monitor forgot it');
    });
  });

  test('invalid input: removed for the others, MsgClose, closed after closeTimeoutMs', async () => {
    await withPeer({ closeTimeoutMs: 100 }, async (peer, comps) => {
      const watch = await comp(peer, comps);
      watch.send({ name: 'w' });
      const inputs: [string, Uint8Array][] = [
        [
          MSG_CLIENT,
          encodeClientMsg({
            name: 'x',
            group: 'g',
            data: 'not json',
            blessingRes: { token: null, ready: true },
          }),
        ],
        [
          MSG_CLIENT,
          encodeClientMsg({
            name: 'x',
            group: 'g',
            data: 'NaN',
            blessingRes: { token: null, ready: true },
          }),
        ],
        [MSG_CLIENT, Buffer.from('8180', 'hex')],
        [MSG_SLAVE, encode(S.MsgSlave, { components: [] })],
        [MSG_MASTER, Buffer.alloc(0)],
        [MSG_CLOSE, Buffer.alloc(0)],
        [MSG_SERVER, encode(S.MsgServer, { cid: 1, mid: 0, components: [] })],
        ['Whatever.Type', Buffer.alloc(3)],
      ];
      for (const [type, data] of inputs) {
        const raw = await RawClient.connect(peer.port);
        await peer.waitFor((cs) => cs.length === 2);
        const valid = encodeClientMsg({
          name: 'x',
          group: 'g',
          data: '1',
          blessingRes: { token: null, ready: false },
        });
        raw.write(frame(1, MSG_CLIENT, valid));
        await watch.until((m) => names(m)?.join() === 'w,x', 'the watcher sees x');
        raw.write(frame(2, type, data));
        await watch.until((m) => names(m)?.join() === 'w', 'the watcher sees x removed');
        assert.deepEqual(
          watch.msgs.slice(-2).map(names),
          [['w', 'x'], ['w']],
          'the others get stale, then fresh',
        );
        await until(
          () => raw.messages().some((m) => m.type === MSG_CLOSE),
          `MsgClose after ${type}`,
        );
        const close = raw.messages().at(-1);
        assert.equal(close?.type, MSG_CLOSE, 'MsgClose is the last message');
        assert.equal(close?.data.length, 0);
        await until(() => raw.ended, `the double to close after ${type}`);
        raw.socket.destroy();
      }
      // a malformed chatter frame: removed and closed without MsgClose
      const raw = await RawClient.connect(peer.port);
      await peer.waitFor((cs) => cs.length === 2);
      raw.write(Buffer.from('0103ffffff', 'hex'));
      await until(() => raw.ended, 'the double to close');
      assert.ok(raw.messages().every((m) => m.type === MSG_SERVER));
      await peer.waitFor((cs) => cs.length === 1);
    });
  });

  test('a dropped client stays open until it closes (pings answered) or closeTimeoutMs', async () => {
    await withPeer({ closeTimeoutMs: 60_000 }, async (peer) => {
      const raw = await RawClient.connect(peer.port);
      raw.write(frame(1, MSG_SLAVE, Buffer.from('80', 'hex')));
      await until(() => raw.messages().some((m) => m.type === MSG_CLOSE), 'MsgClose');
      raw.write(frame(2, PING, Buffer.alloc(0), false));
      await until(() => raw.messages().some((m) => m.type === PONG), 'the pong');
      const sent = raw.messages();
      assert.deepEqual(
        sent.map((m) => [m.id, m.type]),
        [
          [1, MSG_SERVER],
          [2, MSG_SERVER],
          [3, MSG_CLOSE],
          [4, PONG],
        ],
      );
      assert.deepEqual([sent[3]?.first, sent[3]?.owner], [2, false], 'the pong answers our ping');
      assert.equal(peer.connectionCount(), 1);
      raw.socket.end();
      await until(() => peer.connectionCount() === 0, 'the double to let it go');
    });
  });

  test('stop: removals broadcast, MsgClose to each, wait; a restart counts from 1 again', async () => {
    await withPeer({ closeTimeoutMs: 100 }, async (peer, comps) => {
      const a = await comp(peer, comps, { closeOnMsgClose: true });
      const b = await comp(peer, comps); // does not close by itself
      a.send({ name: 'a', ready: true });
      b.send({ name: 'b' });
      await a.until(() => a.own()?.blessingReq.token === 1, 'a blessed');
      a.send({ name: 'a', ready: true, token: 1 });
      await peer.waitFor((cs) => cs.length === 2 && cs.some(isActive));
      await b.until((m) => m.components.some(isActive), 'b saw a active');
      const port = peer.port;
      const nb = b.msgs.length;
      await peer.stop();
      assert.equal(peer.connectionCount(), 0);
      assert.deepEqual([a.closes, b.closes], [1, 1]);
      assert.deepEqual(
        b.msgs.slice(nb).map((m) => m.components.map((c) => c.name)),
        [['a', 'b'], ['b']],
        'b saw a removed before its own MsgClose',
      );
      await b.conn.closed;
      assert.deepEqual(peer.components(), []);
      await peer.start();
      assert.equal(peer.port, port);
      const c = await comp(peer, comps);
      c.send({ name: 'c', ready: true });
      const m = await c.until(() => c.own()?.blessingReq.token != null, 'c blessed');
      assert.deepEqual([m.cid, c.own()?.blessingReq.token], [1, 1]);
    });
  });

  test('fuzz: random bytes and frames never break it', async () => {
    const peer = await startMonitorPeer({
      closeTimeoutMs: 20,
      groupAlgorithms: { a: 'BLESS_ALL' },
    });
    const text = fc.oneof(
      fc.json(),
      fc.string(),
      fc.constantFrom(
        'NaN',
        '1e400',
        '[[[[',
        `${'['.repeat(1200)}${']'.repeat(1200)}`,
        '9'.repeat(4400),
      ),
    );
    const int = fc.oneof(
      fc.constant(null),
      fc.integer(),
      fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
    );
    const clientMsg = fc
      .record({
        name: fc.string(),
        group: fc.constantFrom('a', 'b', ''),
        data: text,
        token: int,
        ready: fc.boolean(),
      })
      .map((m) =>
        encode(S.MsgClient, {
          name: m.name,
          group: m.group,
          data: m.data,
          blessingRes: { token: m.token, ready: m.ready },
        }),
      );
    const randomFrame = fc
      .record({
        id: fc.nat(),
        first: fc.nat(),
        owner: fc.boolean(),
        token: fc.boolean(),
        last: fc.boolean(),
        type: fc.oneof(
          fc.constantFrom(MSG_CLIENT, MSG_SERVER, MSG_CLOSE, MSG_SLAVE, MSG_MASTER, PING, PONG),
          fc.string(),
        ),
        data: fc.oneof(clientMsg, fc.uint8Array({ maxLength: 40 })),
      })
      .map((f) => encodeFrame(f));
    const action = fc.record({
      conn: fc.nat(2),
      bytes: fc.oneof(
        randomFrame,
        clientMsg.map((d) => frame(1, MSG_CLIENT, d)),
        fc.uint8Array({ minLength: 1, maxLength: 30 }),
      ),
      end: fc.integer({ min: 0, max: 9 }).map((x) => x === 0),
    });
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(action, { maxLength: 10 }), async (actions) => {
          const raws = await Promise.all([0, 1, 2].map(() => RawClient.connect(peer.port)));
          for (const a of actions) {
            const r = raws[a.conn] as RawClient;
            r.write(a.bytes);
            if (a.end) r.socket.end();
          }
          for (const r of raws) r.socket.end();
          await until(() => peer.connectionCount() === 0, 'every fuzz connection gone');
          await peer.waitFor((cs) => cs.length === 0);
          // still serving
          const c = await Comp.connect(peer);
          c.send({ name: 'check', group: 'a', ready: true });
          const m = await c.until(() => c.own()?.blessingReq.token != null, 'check blessed');
          assert.deepEqual(
            m.components.map((x) => x.name),
            ['check'],
          );
          for (const r of raws)
            for (const msg of r.messages())
              assert.ok([MSG_SERVER, MSG_CLOSE, PONG].includes(msg.type));
          await c.close();
        }),
        { numRuns: 40 },
      );
    } finally {
      await peer.close();
    }
  });
});

function ownData(m: ServerMsg): string | undefined {
  return m.components.find((c) => c.cid === m.cid)?.data;
}
