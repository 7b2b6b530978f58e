/**
 * MonitorComponent against a fake monitor that replays what hat-monitor 0.8.21 sent in the
 * recorded sessions (test/vectors/monitor, README "Replaying"): the s2c frames of the component's
 * own connection are written verbatim, the inputs of `client_actions` are applied (name, group,
 * data, set_ready where the recording's next MsgClient changes `ready`), and the distinct sequence
 * of `blessingRes` values the component sends is compared with the recorded one. Also: the runner
 * starts only after the monitor echoed the response token; it is stopped before the response token
 * is released; MsgClose, a dropped connection and anything malformed from the monitor end the
 * connection (never the process) and the component reconnects. And selectEventServer on the
 * recorded states of conversations c, c2 and c3.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { HatConnectionError, ProtocolError } from '../../src/hat/chatter/errors.js';
import { selectEventServer } from '../../src/hat/eventer/monitor-connector.js';
import {
  decodeClientMsg,
  decodeServerMsg,
  encodeClientMsg,
  encodeServerMsg,
  MSG_CLIENT,
  MSG_CLOSE,
  MSG_MASTER,
  MSG_SERVER,
  MSG_SLAVE,
} from '../../src/hat/monitor/codec.js';
import {
  type BlessingRes,
  type ComponentInfo,
  isActive,
  ownInfo,
  type ServerMsg,
} from '../../src/hat/monitor/common.js';
import {
  type ComponentEvent,
  type ComponentRunner,
  MonitorComponent,
} from '../../src/hat/monitor/component.js';
import { MonitorCloseError } from '../../src/hat/monitor/connection.js';
import * as S from '../../src/hat/monitor/schema.js';
import { encode } from '../../src/hat/sbs/codec.js';
import {
  FakeMonitor,
  type FakeMonitorConnection,
  recordedServerMsgs,
  sleep,
  until,
} from './monitor-support.js';
import {
  isFrame,
  loadMonitorConversation,
  type MonitorConversation,
  type MonitorStep,
} from './monitor-vectors.js';

// ---- nothing may escape as an unhandled rejection or an uncaught exception ------------------

const escaped: unknown[] = [];
const onEscaped = (err: unknown) => {
  escaped.push(err);
};
before(() => {
  process.on('unhandledRejection', onEscaped);
  process.on('uncaughtException', onEscaped);
});
after(() => {
  process.off('unhandledRejection', onEscaped);
  process.off('uncaughtException', onEscaped);
});
function assertNothingEscaped() {
  assert.deepEqual(
    escaped.map((e) => String(e)),
    [],
    'no unhandled rejection or uncaught exception',
  );
}

// ---- the harness ---------------------------------------------------------------------------

/** How long the runner's stop() takes: a MsgClient sent before it ends would arrive meanwhile. */
const STOP_MS = 60;

type LogEntry =
  | { kind: 'accept'; conn: number }
  | { kind: 'end'; conn: number }
  | { kind: 'recv'; conn: number; res: BlessingRes }
  | { kind: 'start'; conn: number; own: ComponentInfo | null }
  | { kind: 'stop-begin' }
  | { kind: 'stop-end' }
  | { kind: 'close-called'; conn: number };

interface Harness {
  fake: FakeMonitor;
  component: MonitorComponent;
  log: LogEntry[];
  events: ComponentEvent[];
  /** MsgServer messages written per connection index, decoded. */
  written: ServerMsg[][];
  /** Per connection: how many messages had been received when close() was called. */
  receivedAtClose: Map<number, number>;
  close(): Promise<void>;
}

const harnesses: Harness[] = [];
after(async () => {
  for (const h of harnesses) await h.close();
});

async function harness(options: {
  name: string;
  group: string;
  data: unknown;
  runner?: Partial<ComponentRunner>;
}): Promise<Harness> {
  const fake = await FakeMonitor.start();
  const log: LogEntry[] = [];
  const events: ComponentEvent[] = [];
  const written: ServerMsg[][] = [];
  const current = () => fake.connections.length - 1;
  fake.onAccept = (c) => {
    written[c.index] = [];
    log.push({ kind: 'accept', conn: c.index });
  };
  fake.onEnd = (c) => log.push({ kind: 'end', conn: c.index });
  fake.onMessage = (c, m) => {
    if (m.type === MSG_CLIENT)
      log.push({ kind: 'recv', conn: c.index, res: decodeClientMsg(m.data).blessingRes });
  };
  let component: MonitorComponent | null = null;
  const runner: ComponentRunner = {
    start: async () => {
      log.push({ kind: 'start', conn: current(), own: component?.state.own ?? null });
      await options.runner?.start?.();
    },
    stop: async () => {
      log.push({ kind: 'stop-begin' });
      await sleep(STOP_MS);
      log.push({ kind: 'stop-end' });
      await options.runner?.stop?.();
    },
  };
  component = new MonitorComponent({
    address: fake.address,
    name: options.name,
    group: options.group,
    data: options.data,
    runner,
    pingDelay: 0,
    reconnectMinDelayMs: 10,
    reconnectMaxDelayMs: 40,
    random: () => 0.5,
    onEvent: (e) => events.push(e),
  });
  const c = component;
  const h: Harness = {
    fake,
    component: c,
    log,
    events,
    written,
    receivedAtClose: new Map(),
    close: async () => {
      await c.close();
      await fake.close();
    },
  };
  harnesses.push(h);
  c.start();
  return h;
}

/** Consecutive distinct values. */
function distinct<T>(values: readonly T[]): T[] {
  const out: T[] = [];
  for (const v of values) if (out.length === 0 || !isDeepStrictEqual(out.at(-1), v)) out.push(v);
  return out;
}

function sentRes(conn: FakeMonitorConnection, upTo = conn.received.length): BlessingRes[] {
  return conn.received
    .slice(0, upTo)
    .filter((m) => m.type === MSG_CLIENT)
    .map((m) => decodeClientMsg(m.data).blessingRes);
}

const hexOf = (s: { decoded: { data: { data_hex: string } } }) =>
  Buffer.from(s.decoded.data.data_hex, 'hex');

/**
 * Replays `steps` (one recorded connection) on the fake's connection `index`: writes the s2c
 * frames one by one (waiting until the component has taken each MsgServer), and for each recorded
 * MsgClient applies set_ready when its `ready` differs and waits for the component to send the
 * same blessingRes. A c2s EOF is the application closing the component, unless it follows
 * MsgClose (then the component closes by itself). Returns the recorded distinct blessingRes
 * sequence. With `keepsReady`, recorded not-ready MsgClients before the first ready one are
 * skipped (our component keeps `ready` over a reconnect; Python's is a new object).
 */
async function replay(
  h: Harness,
  steps: readonly MonitorStep[],
  index: number,
  opts: { keepsReady?: boolean } = {},
): Promise<BlessingRes[]> {
  const conn = await h.fake.connection(index);
  const expected: BlessingRes[] = [];
  let lastS2c = '';
  let seenReady = false;
  for (const step of steps) {
    if (!isFrame(step)) {
      if (step.dir === 's2c') {
        conn.destroy();
      } else if (lastS2c === MSG_CLOSE) {
        await until(() => conn.ended, 'the component to close its connection after MsgClose');
      } else {
        h.receivedAtClose.set(index, conn.received.length);
        h.log.push({ kind: 'close-called', conn: index });
        await h.component.close();
        await until(() => conn.ended, 'the connection to end after close()');
      }
      continue;
    }
    const type = step.decoded.data.type;
    if (step.dir === 's2c') {
      lastS2c = type;
      conn.writeRecorded(step.frame_hex);
      if (type === MSG_SERVER) {
        const msg = decodeServerMsg(hexOf(step));
        h.written[index]?.push(msg);
        await until(
          () => isDeepStrictEqual(h.component.state.server, msg),
          `the component to take the MsgServer of ${step.t_ms} ms`,
        );
      }
      continue;
    }
    assert.equal(type, MSG_CLIENT, 'a component only ever sends MsgClient');
    const recorded = decodeClientMsg(hexOf(step));
    const res = recorded.blessingRes;
    if (opts.keepsReady && !seenReady && !res.ready) continue;
    seenReady ||= res.ready;
    if (res.ready !== h.component.ready) h.component.setReady(res.ready);
    if (expected.length === 0 || !isDeepStrictEqual(expected.at(-1), res)) expected.push(res);
    await until(
      () => distinct(sentRes(conn)).length >= expected.length,
      `MsgClient ${JSON.stringify(res)} of ${step.t_ms} ms (sent so far: ${JSON.stringify(distinct(sentRes(conn)))})`,
    );
    assert.deepEqual(
      distinct(sentRes(conn)).slice(0, expected.length),
      expected,
      `blessingRes sequence up to the MsgClient of ${step.t_ms} ms`,
    );
    const sent = conn.clientMsgs().at(-1);
    assert.ok(sent !== undefined);
    assert.equal(sent.name, recorded.name);
    assert.equal(sent.group, recorded.group);
    assert.deepEqual(JSON.parse(sent.data), JSON.parse(recorded.data), 'data, as parsed JSON');
  }
  return expected;
}

/** Checks one replayed connection: the whole sequence, the runner starts and every release. */
function checkConnection(
  h: Harness,
  index: number,
  expected: BlessingRes[],
  recordedRunnerStarts: number,
) {
  const conn = h.fake.connections[index];
  assert.ok(conn !== undefined);
  const atClose = h.receivedAtClose.get(index);
  assert.deepEqual(
    distinct(sentRes(conn, atClose)),
    expected,
    'the distinct blessingRes sequence equals the recording',
  );
  // Every MsgClient is a one-message conversation: first == id, owner, last, token (README §1).
  for (const [i, m] of conn.received.entries()) {
    assert.equal(m.id, i + 1, 'ids 1, 2, 3, ...');
    assert.deepEqual([m.first, m.owner, m.last, m.token], [m.id, true, true, true]);
  }
  const starts = h.log.filter(
    (e): e is Extract<LogEntry, { kind: 'start' }> => e.kind === 'start' && e.conn === index,
  );
  assert.equal(starts.length, recordedRunnerStarts, 'runner starts as often as runner_cb was');
  for (const s of starts) {
    // Active = the monitor echoed our response token while it equals the request token.
    assert.ok(s.own !== null && isActive(s.own), 'the runner starts only after the echo');
    assert.ok(
      h.written[index]?.some((m) => {
        const o = ownInfo(m);
        return o !== undefined && isActive(o) && o.blessingRes.token === s.own?.blessingRes.token;
      }),
      'the echo was written by the monitor',
    );
  }
  checkReleases(h, index);
  if (atClose !== undefined) {
    const after = sentRes(conn).slice(sentRes(conn, atClose).length);
    assert.ok(
      after.every((r) => !r.ready),
      `after close() only not-ready messages: ${JSON.stringify(after)}`,
    );
  }
}

/**
 * A release (a MsgClient whose token goes from a value to null) that follows a runner start on
 * that connection comes only after the runner's stop() has completed.
 */
function checkReleases(h: Harness, index: number) {
  let prev: number | null = null;
  let startedAt = -1;
  let checked = 0;
  for (const [i, e] of h.log.entries()) {
    if (e.kind === 'start' && e.conn === index) startedAt = i;
    if (e.kind !== 'recv' || e.conn !== index) continue;
    if (prev !== null && e.res.token === null && startedAt >= 0) {
      const stopEnd = h.log.findIndex((x, j) => j > startedAt && x.kind === 'stop-end');
      assert.ok(
        stopEnd >= 0 && stopEnd < i,
        `runner.stop() completed before the release MsgClient (log ${JSON.stringify(h.log.slice(startedAt))})`,
      );
      startedAt = -1;
      checked++;
    }
    prev = e.res.token;
  }
  return checked;
}

function runnerCbCount(conv: MonitorConversation, label: string): number {
  return conv.client_events.filter((e) => e.event.startsWith(`${label}: runner_cb called`)).length;
}

function firstClientMsg(conv: MonitorConversation, label: string) {
  const step = conv.steps.find(
    (s) => isFrame(s) && s.conn === label && s.dir === 'c2s' && s.decoded.data.type === MSG_CLIENT,
  );
  assert.ok(step !== undefined && isFrame(step));
  return decodeClientMsg(hexOf(step));
}

async function componentFor(conv: MonitorConversation, label: string) {
  const first = firstClientMsg(conv, label);
  return harness({ name: first.name, group: first.group, data: JSON.parse(first.data) });
}

const stepsOf = (conv: MonitorConversation, label: string) =>
  conv.steps.filter((s) => s.conn === label);

// ---- replays -----------------------------------------------------------------------------------

describe('MonitorComponent replays the recorded sessions', { timeout: 30_000 }, () => {
  for (const [prefix, labels] of [
    ['a', ['A']],
    ['a2', ['A']],
    ['b', ['A', 'B']],
    ['b2', ['A', 'B']],
  ] as const) {
    for (const label of labels) {
      const conv = loadMonitorConversation(prefix);
      test(`${conv.file} connection ${label} (${conv.connections[label]?.client.slice(0, 70)}…)`, async () => {
        const h = await componentFor(conv, label);
        const expected = await replay(h, stepsOf(conv, label), 0);
        checkConnection(h, 0, expected, runnerCbCount(conv, label));
        assert.equal(h.fake.connections.length, 1, 'no reconnect');
        assertNothingEscaped();
      });
    }
  }

  test('a2: ready false while active sends {1, false}, stops the runner, then {null, false}', async () => {
    const conv = loadMonitorConversation('a2');
    const h = await componentFor(conv, 'A');
    await replay(h, stepsOf(conv, 'A'), 0);
    const i1 = h.log.findIndex(
      (e) => e.kind === 'recv' && isDeepStrictEqual(e.res, { token: 1, ready: false }),
    );
    const start = h.log.findIndex((e) => e.kind === 'start');
    const stopEnd = h.log.findIndex((e, i) => i > start && e.kind === 'stop-end');
    const iNull = h.log.findIndex(
      (e, i) =>
        i > i1 && e.kind === 'recv' && isDeepStrictEqual(e.res, { token: null, ready: false }),
    );
    // {1, false} leaves at once (it may arrive while the runner stops); {null, false} only after.
    assert.ok(
      start >= 0 && i1 > start && stopEnd > start && iNull > stopEnd,
      JSON.stringify(h.log),
    );
    // Two releases after a run: the ready-false one and the one of close().
    assert.equal(checkReleases(h, 0), 2);
  });

  test('e: MsgClose stops the runner at once; the component reconnects and is blessed again', async () => {
    const conv = loadMonitorConversation('e');
    const h = await componentFor(conv, 'A');
    const expectedA = await replay(h, stepsOf(conv, 'A'), 0);
    checkConnection(h, 0, expectedA, runnerCbCount(conv, 'A'));
    await until(() => h.events.some((e) => e.kind === 'disconnected'), 'the disconnected event');
    const disconnected = h.events.find((e) => e.kind === 'disconnected');
    assert.ok(
      disconnected?.kind === 'disconnected' && disconnected.reason instanceof MonitorCloseError,
      'disconnected because of MsgClose',
    );
    // Python's component ends for good here and the application connects a new one (conn B);
    // ours reconnects by itself, still ready: the recorded not-ready start of B is skipped.
    const expectedB = await replay(h, stepsOf(conv, 'B'), 1, { keepsReady: true });
    checkConnection(h, 1, expectedB, runnerCbCount(conv, 'B'));
    const stopEnd = h.log.findIndex((e) => e.kind === 'stop-end');
    const accept1 = h.log.findIndex((e) => e.kind === 'accept' && e.conn === 1);
    assert.ok(stopEnd >= 0 && stopEnd < accept1, 'the runner stopped before the reconnect');
    assert.deepEqual(expectedB, [
      { token: null, ready: true },
      { token: 1, ready: true },
    ]);
    assertNothingEscaped();
  });
});

// ---- the handshake in detail -------------------------------------------------------------------

/** Conversation a, connection A, without its final EOF: the component ends up active. */
async function activeComponent(): Promise<{
  h: Harness;
  conn: FakeMonitorConnection;
  echo: ServerMsg;
}> {
  const conv = loadMonitorConversation('a');
  const h = await componentFor(conv, 'A');
  const steps = stepsOf(conv, 'A').filter(isFrame);
  await replay(h, steps, 0);
  await until(() => h.component.state.active, 'the component to be active');
  const conn = h.fake.connections[0] as FakeMonitorConnection;
  const echo = h.written[0]?.at(-1);
  assert.ok(echo !== undefined);
  return { h, conn, echo };
}

/** `msg` with the own entry's blessing changed. */
function withOwn(
  msg: ServerMsg,
  req: { token: number | null; timestamp: number | null },
  res: BlessingRes,
): ServerMsg {
  return {
    ...msg,
    components: msg.components.map((c) =>
      c.cid === msg.cid && c.mid === msg.mid ? { ...c, blessingReq: req, blessingRes: res } : c,
    ),
  };
}

async function sendServer(h: Harness, conn: FakeMonitorConnection, msg: ServerMsg) {
  conn.send(MSG_SERVER, encodeServerMsg(msg));
  h.written[conn.index]?.push(msg);
  await until(() => isDeepStrictEqual(h.component.state.server, msg), 'the component to take it');
}

/** The monitor echoes the response to blessing `req` (ready): the runner starts a second time. */
async function echoAndRestart(
  h: Harness,
  conn: FakeMonitorConnection,
  echo: ServerMsg,
  req: { token: number; timestamp: number },
) {
  await sendServer(h, conn, withOwn(echo, req, { token: req.token, ready: true }));
  await until(() => h.log.filter((e) => e.kind === 'start').length === 2, 'a second start');
}

describe('MonitorComponent handshake', { timeout: 30_000 }, () => {
  test('the runner does not start on our own response, only on its echo', async () => {
    const conv = loadMonitorConversation('a');
    const h = await componentFor(conv, 'A');
    const steps = stepsOf(conv, 'A');
    const answer = steps.findIndex(
      (s) => isFrame(s) && s.dir === 'c2s' && decodeClientMsg(hexOf(s)).blessingRes.token === 1,
    );
    assert.ok(answer > 0);
    await replay(h, steps.slice(0, answer + 1), 0);
    // Blessed (request token 1) and answered (response token 1), but not echoed yet.
    await sleep(150);
    assert.equal(h.log.filter((e) => e.kind === 'start').length, 0, 'not started before the echo');
    assert.equal(h.component.state.active, false);
    const conn = h.fake.connections[0] as FakeMonitorConnection;
    const blessed = h.written[0]?.at(-1);
    assert.ok(blessed !== undefined);
    // An echo that comes when the request has already moved on does not start it either.
    const stale = withOwn(blessed, { token: null, timestamp: null }, { token: 1, ready: true });
    await sendServer(h, conn, stale);
    await until(
      () => isDeepStrictEqual(sentRes(conn).at(-1), { token: null, ready: true }),
      'the response token withdrawn',
    );
    await sleep(100);
    assert.equal(h.log.filter((e) => e.kind === 'start').length, 0);
    // A new blessing, answered and echoed: now it runs.
    const ts = 1796392207.5;
    await sendServer(
      h,
      conn,
      withOwn(blessed, { token: 2, timestamp: ts }, { token: null, ready: true }),
    );
    await until(
      () => isDeepStrictEqual(sentRes(conn).at(-1), { token: 2, ready: true }),
      '{2, true}',
    );
    assert.equal(h.log.filter((e) => e.kind === 'start').length, 0);
    await sendServer(
      h,
      conn,
      withOwn(blessed, { token: 2, timestamp: ts }, { token: 2, ready: true }),
    );
    await until(() => h.log.some((e) => e.kind === 'start'), 'the runner to start');
    assert.equal(h.component.state.active, true);
    assertNothingEscaped();
  });

  test('revocation: runner.stop() completes before the MsgClient with token null', async () => {
    const { h, conn, echo } = await activeComponent();
    const recvBefore = conn.received.length;
    await sendServer(
      h,
      conn,
      withOwn(echo, { token: null, timestamp: null }, { token: 1, ready: true }),
    );
    await until(
      () => isDeepStrictEqual(sentRes(conn).at(-1), { token: null, ready: true }),
      'the release {null, true}',
    );
    const start = h.log.findIndex((e) => e.kind === 'start');
    const stopBegin = h.log.findIndex((e) => e.kind === 'stop-begin');
    const stopEnd = h.log.findIndex((e) => e.kind === 'stop-end');
    const release = h.log.findIndex(
      (e, i) => i > start && e.kind === 'recv' && e.res.token === null,
    );
    assert.ok(
      start >= 0 && stopBegin > start && stopEnd > stopBegin && release > stopEnd,
      JSON.stringify(h.log),
    );
    assert.equal(checkReleases(h, 0), 1);
    // Nothing but the release was sent meanwhile (no other token, ready stays true).
    assert.deepEqual(sentRes(conn).slice(sentRes(conn, recvBefore).length), [
      { token: null, ready: true },
    ]);
    assert.equal(h.component.state.active, false);
    // Blessed again: new token, echoed, a second run.
    await sendServer(
      h,
      conn,
      withOwn(echo, { token: 7, timestamp: 1.5 }, { token: null, ready: true }),
    );
    await until(
      () => isDeepStrictEqual(sentRes(conn).at(-1), { token: 7, ready: true }),
      '{7, true}',
    );
    await echoAndRestart(h, conn, echo, { token: 7, timestamp: 1.5 });
    assertNothingEscaped();
  });

  test('a changed request token: the runner stops before the response token changes', async () => {
    const { h, conn, echo } = await activeComponent();
    await sendServer(
      h,
      conn,
      withOwn(echo, { token: 5, timestamp: 2.5 }, { token: 1, ready: true }),
    );
    await until(() => sentRes(conn).at(-1)?.token === 5, 'the response token 5');
    const start = h.log.findIndex((e) => e.kind === 'start');
    const stopEnd = h.log.findIndex((e) => e.kind === 'stop-end');
    const changed = h.log.findIndex((e, i) => i > start && e.kind === 'recv' && e.res.token !== 1);
    assert.ok(start >= 0 && stopEnd > start && changed > stopEnd, JSON.stringify(h.log));
    assert.equal(h.component.state.active, false, 'not active until token 5 is echoed');
    await echoAndRestart(h, conn, echo, { token: 5, timestamp: 2.5 });
    assertNothingEscaped();
  });

  test('close() while active: the runner stops, then the connection closes', async () => {
    const { h, conn } = await activeComponent();
    h.receivedAtClose.set(0, conn.received.length);
    await h.component.close();
    await until(() => conn.ended, 'the connection to end');
    const stopEnd = h.log.findIndex((e) => e.kind === 'stop-end');
    const end = h.log.findIndex((e) => e.kind === 'end' && e.conn === 0);
    assert.ok(stopEnd >= 0 && end > stopEnd);
    const after = sentRes(conn).slice(sentRes(conn, h.receivedAtClose.get(0)).length);
    assert.ok(after.every((r) => !r.ready));
    await sleep(80);
    assert.equal(h.fake.connections.length, 1, 'a closed component does not reconnect');
    assertNothingEscaped();
  });

  test('a dropped connection stops the runner at once and the component reconnects', async () => {
    const { h, conn } = await activeComponent();
    conn.destroy();
    const next = await h.fake.connection(1);
    await until(() => next.clientMsgs().length > 0, 'the first MsgClient on the new connection');
    const stopEnd = h.log.findIndex((e) => e.kind === 'stop-end');
    const accept1 = h.log.findIndex((e) => e.kind === 'accept' && e.conn === 1);
    assert.ok(stopEnd >= 0 && stopEnd < accept1, 'stopped before reconnecting');
    assert.equal(h.component.state.active, false);
    const first = next.clientMsgs()[0];
    assert.deepEqual(first?.blessingRes, { token: null, ready: true }, 'still ready, no token');
    assert.equal(first?.name, 'vec-a');
    assert.ok(h.events.some((e) => e.kind === 'disconnected'));
    assertNothingEscaped();
  });
});

// ---- malformed input from the monitor ------------------------------------------------------------

const recordedBody = (() => {
  const conv = loadMonitorConversation('a');
  return recordedServerMsgs(conv, 'A').at(-1) as ServerMsg;
})();

const BAD_INPUTS: [string, (c: FakeMonitorConnection) => void][] = [
  [
    'a frame that is not a chatter message',
    (c) => c.writeRaw(Buffer.from([1, 3, 0xff, 0xff, 0xff])),
  ],
  [
    'a MsgServer whose SBS is malformed',
    (c) => c.send(MSG_SERVER, Buffer.from([0xff, 0xff, 0x01])),
  ],
  [
    'a truncated MsgServer',
    (c) => {
      const data = encodeServerMsg(recordedBody);
      c.send(MSG_SERVER, data.subarray(0, data.length - 5));
    },
  ],
  [
    'a MsgServer with a cid beyond 2^53',
    (c) => c.send(MSG_SERVER, encode(S.MsgServer, { cid: 2n ** 60n, mid: 0, components: [] })),
  ],
  ['MsgSlave (master port only)', (c) => c.send(MSG_SLAVE, Buffer.from('80', 'hex'))],
  [
    'MsgMaster (master port only)',
    (c) => c.send(MSG_MASTER, encode(S.MsgMaster, { mid: 1, components: [] })),
  ],
  [
    'MsgClient sent by the server',
    (c) =>
      c.send(
        MSG_CLIENT,
        encodeClientMsg({
          name: 'x',
          group: 'y',
          data: 'null',
          blessingRes: { token: null, ready: false },
        }),
      ),
  ],
  ['an unknown message type', (c) => c.send('HatObserver.MsgNothing', Buffer.alloc(0))],
];

describe('MonitorComponent: anything malformed closes the connection and it retries', {
  timeout: 30_000,
}, () => {
  for (const [what, write] of BAD_INPUTS) {
    test(what, async () => {
      const h = await harness({ name: 'vec-bad', group: 'aimm', data: { x: 1 } });
      h.component.setReady(true);
      const conn = await h.fake.connection(0);
      await until(() => conn.clientMsgs().length > 0, 'the first MsgClient');
      write(conn);
      await until(() => conn.ended, 'the component to close the connection');
      const next = await h.fake.connection(1);
      await until(() => next.clientMsgs().length > 0, 'a MsgClient on the new connection');
      assert.deepEqual(next.clientMsgs()[0]?.blessingRes, { token: null, ready: true });
      const ev = h.events.find((e) => e.kind === 'disconnected');
      assert.ok(
        ev?.kind === 'disconnected' && ev.reason instanceof HatConnectionError,
        `disconnected with a typed error (${ev?.kind === 'disconnected' ? String(ev.reason) : 'none'})`,
      );
      assertNothingEscaped();
    });
  }

  test('MsgSlave while active: the runner stops, then the component reconnects', async () => {
    const { h, conn } = await activeComponent();
    conn.send(MSG_SLAVE, Buffer.from('80', 'hex'));
    await until(() => conn.ended, 'the component to close the connection');
    await h.fake.connection(1);
    const stopEnd = h.log.findIndex((e) => e.kind === 'stop-end');
    const accept1 = h.log.findIndex((e) => e.kind === 'accept' && e.conn === 1);
    assert.ok(stopEnd >= 0 && stopEnd < accept1);
    const ev = h.events.find((e) => e.kind === 'disconnected');
    assert.ok(ev?.kind === 'disconnected' && ev.reason instanceof ProtocolError);
    assertNothingEscaped();
  });
});

// ---- selectEventServer on the recorded states -----------------------------------------------------

/** The distinct selections over the MsgServer messages of `label`, as short strings. */
function selections(conv: MonitorConversation, label: string, token: string | null) {
  return distinct(
    recordedServerMsgs(conv, label).map((m) => {
      const s = selectEventServer(m.components, 'event', token);
      return s.kind === 'server'
        ? `server ${s.server.serverId} ${s.server.address.host}:${s.server.address.port} token=${s.server.serverToken} (${s.server.name}, cid ${s.server.cid})`
        : `none: ${s.reason}`;
    }),
  );
}

/** The recorded state C saw while event1 was the active server (a component list). */
function stateWithEvent1Active(conv: MonitorConversation): ComponentInfo[] {
  const msg = recordedServerMsgs(conv, 'C')[0];
  assert.ok(msg !== undefined);
  return msg.components;
}

describe('selectEventServer (recorded states of c, c2, c3)', () => {
  test('c: event1, then nothing while event2 is blessed but has not answered, then event2', () => {
    const conv = loadMonitorConversation('c');
    assert.deepEqual(selections(conv, 'C', null), [
      'server 1 127.0.0.1:23112 token=null (event1, cid 1)',
      'none: no_active_server',
      'server 2 127.0.0.1:23113 token=null (event2, cid 2)',
    ]);
    // event2's own connection saw event1 become active and stay so.
    assert.deepEqual(selections(conv, 'B', null).slice(0, 1), [
      'server 1 127.0.0.1:23112 token=null (event1, cid 1)',
    ]);
    // event1's own connection starts before it is active (blessed, not yet answered).
    assert.deepEqual(selections(conv, 'A', null).slice(0, 2), [
      'none: no_active_server',
      'server 1 127.0.0.1:23112 token=null (event1, cid 1)',
    ]);
  });

  test('c2: a client token the active server does not publish → none (token_mismatch)', () => {
    const conv = loadMonitorConversation('c2');
    const c = selections(conv, 'C', 'tok');
    assert.deepEqual(c, ['none: token_mismatch']);
    assert.deepEqual(selections(conv, 'C', null), [
      'server 1 127.0.0.1:23112 token=null (event1, cid 1)',
    ]);
    const s = selectEventServer(stateWithEvent1Active(conv), 'event', 'tok');
    assert.equal(s.kind === 'none' && s.reason, 'token_mismatch');
  });

  test('c3: the matching client token selects event1 with its server token', () => {
    const conv = loadMonitorConversation('c3');
    assert.deepEqual(selections(conv, 'C', 'tok'), [
      'server 1 127.0.0.1:23112 token=tok (event1, cid 1)',
    ]);
    // No client token: any server token is accepted; another token: none.
    assert.deepEqual(selections(conv, 'C', null), [
      'server 1 127.0.0.1:23112 token=tok (event1, cid 1)',
    ]);
    assert.deepEqual(selections(conv, 'C', 'other'), ['none: token_mismatch']);
  });

  test("data that is not a hat-event server's → none (invalid_data)", () => {
    const conv = loadMonitorConversation('c');
    const components = stateWithEvent1Active(conv);
    // The recorded hat.event.component (vec-c, group aimm, data null) is active in its group.
    const recorded = recordedServerMsgs(conv, 'C').find((m) =>
      m.components.some((c) => c.name === 'vec-c' && isActive(c)),
    );
    assert.ok(recorded !== undefined);
    const own = selectEventServer(recorded.components, 'aimm', null);
    assert.equal(own.kind === 'none' && own.reason, 'invalid_data');
    const event1Data = JSON.parse(components[0]?.data ?? '') as Record<string, unknown>;
    const bad: unknown[] = [
      { x: 1 },
      null,
      [1, 2],
      { ...event1Data, server_id: '1' },
      { ...event1Data, server_id: 1.5 },
      { ...event1Data, eventer_server: null },
      { ...event1Data, eventer_server: { host: 1, port: 23112 } },
      { ...event1Data, eventer_server: { host: '127.0.0.1', port: '23112' } },
      { ...event1Data, server_token: 5 },
    ];
    for (const data of bad) {
      const list = components.map((c) =>
        c.name === 'event1' ? { ...c, data: JSON.stringify(data) } : c,
      );
      const s = selectEventServer(list, 'event', null);
      assert.equal(s.kind === 'none' && s.reason, 'invalid_data', JSON.stringify(data));
    }
    const notJson = components.map((c) => (c.name === 'event1' ? { ...c, data: 'not json' } : c));
    const s = selectEventServer(notJson, 'event', null);
    assert.equal(s.kind === 'none' && s.reason, 'invalid_data');
    // server_token absent is null, as Python's json.get gives None.
    const { server_token: _, ...withoutToken } = event1Data;
    const noToken = components.map((c) =>
      c.name === 'event1' ? { ...c, data: JSON.stringify(withoutToken) } : c,
    );
    const ok = selectEventServer(noToken, 'event', null);
    assert.equal(ok.kind === 'server' && ok.server.serverToken, null);
  });

  test('only the first active server counts: no fallback to a second one', () => {
    const conv = loadMonitorConversation('c');
    const components = stateWithEvent1Active(conv);
    const event2 = components.find((c) => c.name === 'event2') as ComponentInfo;
    const event2Active = {
      ...event2,
      blessingReq: { token: 9, timestamp: 3.5 },
      blessingRes: { token: 9, ready: true },
    };
    const both = components.map((c) => (c.name === 'event2' ? event2Active : c));
    const first = selectEventServer(both, 'event', null);
    assert.equal(first.kind === 'server' && first.server.serverId, 1, 'the first in list order');
    const reversed = [event2Active, ...components.filter((c) => c.name !== 'event2')];
    const r = selectEventServer(reversed, 'event', null);
    assert.equal(r.kind === 'server' && r.server.serverId, 2);
    // The first active one has bad data, the second is fine: none.
    const badFirst = both.map((c) => (c.name === 'event1' ? { ...c, data: '{"x": 1}' } : c));
    const b = selectEventServer(badFirst, 'event', null);
    assert.equal(b.kind === 'none' && b.reason, 'invalid_data');
    // The first active one publishes another token: none, although event2 would match.
    const tok = both.map((c) =>
      c.name === 'event2'
        ? { ...c, data: c.data.replace('"server_token": null', '"server_token": "tok"') }
        : c,
    );
    const t = selectEventServer(tok, 'event', 'tok');
    assert.equal(t.kind === 'none' && t.reason, 'token_mismatch');
    // A blessed but not active first one is skipped: the active one is taken.
    const blessedFirst = both.map((c) =>
      c.name === 'event1'
        ? {
            ...c,
            blessingReq: { token: 11, timestamp: 4.5 },
            blessingRes: { token: null, ready: true },
          }
        : c,
    );
    const bf = selectEventServer(blessedFirst, 'event', null);
    assert.equal(bf.kind === 'server' && bf.server.serverId, 2);
    // Another group is never considered.
    assert.equal(selectEventServer(both, 'other', null).kind, 'none');
  });
});
