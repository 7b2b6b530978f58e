/**
 * `aimm-store hat monitor` end to end: the compiled CLI as a child process against
 * - a replay of the MsgServer messages the real hat-monitor 0.8.21 sent to one component
 *   (monitor-vectors `c-event-component-failover.json`, connection C, in their recorded order), and
 * - the monitor double (test/peer/monitor-peer.ts) with components registered through
 *   MonitorComponent and raw connections.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { parseMonitorAddress } from '../../src/cli/hat-format.js';
import { Connection } from '../../src/hat/chatter/connection.js';
import {
  type ComponentInfo,
  connectMonitor,
  isActive,
  MonitorComponent,
  type MonitorConnection,
  MSG_SERVER,
  type ServerMsg,
} from '../../src/hat/monitor/index.js';
import { type MonitorPeer, startMonitorPeer } from '../peer/monitor-peer.js';
import { cli, MAIN } from './cli-run.js';
import { isFrame, loadMonitorConversation, unhex } from './monitor-vectors.js';

interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

function spawnCli(args: string[]): Running {
  const child = spawn(process.execPath, [MAIN, 'hat', ...args]);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

const lines = (text: string) => text.split('\n').filter((l) => l !== '');

/** Polls `cond` every 10 ms, for at most `ms`. */
async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  for (let waited = 0; !cond(); waited += 10) {
    if (waited >= ms) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function listen(server: Server): Promise<number> {
  return new Promise((r) =>
    server.listen(0, '127.0.0.1', () => r((server.address() as { port: number }).port)),
  );
}

// ---- recorded MsgServer payloads (hat-monitor 0.8.21) ---------------------------------------

/**
 * Every MsgServer payload the monitor sent to connection C of `c-event-component-failover`
 * (recipient cid 3, `vec-c` in group `aimm`): event1 (server_id 1, eventer 127.0.0.1:23112) active
 * and event2 (server_id 2, 23113) standby in group `event`; then event1 stops, event2 is blessed,
 * then active. Every change came as two or more messages, the first one of the very first pair
 * without our own entry.
 */
const RECORDED: Buffer[] = loadMonitorConversation('c')
  .steps.filter(isFrame)
  .filter((st) => st.conn === 'C' && st.dir === 's2c')
  .map((st) => {
    assert.equal(st.decoded.data.type, MSG_SERVER);
    return unhex(st.decoded.data.data_hex);
  });
/** How many of them differ from the one before (what a client sees as distinct states). */
const DISTINCT = RECORDED.filter((b, i) => i === 0 || !b.equals(RECORDED[i - 1] as Buffer)).length;

/** A server that sends the recorded messages to every client, then ends or keeps it open. */
async function startReplay(end: 'eof' | 'hold') {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const conn = new Connection(socket, { pingDelay: 0, onMessage: () => {} });
    for (const payload of RECORDED) conn.send(MSG_SERVER, payload);
    if (end === 'eof') void conn.close();
  });
  const port = await listen(server);
  return {
    address: `127.0.0.1:${port}`,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const runner = { start: async () => {}, stop: async () => {} };

function component(m: MonitorPeer, name: string, group: string, data: unknown) {
  const c = new MonitorComponent({
    address: { host: m.host, port: m.port },
    name,
    group,
    data,
    runner,
    pingDelay: 0,
    reconnectMinDelayMs: 60_000,
  });
  c.setReady(true);
  c.start();
  return c;
}

const addr = (m: MonitorPeer) => `${m.host}:${m.port}`;

const byName = (m: MonitorPeer, name: string) => m.components().find((c) => c.name === name);

const STATE_LINE =
  /^ {2}(ACTIVE |blessed|standby) cid (\d+) mid (\d+) name (\S+) rank (\d+) req (-|\d+ at \S+) res (-|\d+) (ready|not-ready)$/;

/** The component lines of one printed state, by name. */
function parseState(text: string) {
  const out = new Map<string, { state: string; group: string; line: string; extra: string[] }>();
  let group = '';
  let current: { extra: string[] } | null = null;
  for (const line of lines(text)) {
    if (line.startsWith('group ') || line.startsWith('no group')) {
      group = line;
      continue;
    }
    const m = STATE_LINE.exec(line);
    if (m !== null) {
      current = { extra: [] };
      out.set(m[4] as string, { state: (m[1] as string).trim(), group, line, ...current });
      continue;
    }
    if (line.startsWith('          ') && current !== null) current.extra.push(line.trim());
  }
  return out;
}

describe('aimm-store hat monitor', { timeout: 60_000 }, () => {
  describe('against recorded hat-monitor messages', () => {
    test('prints the first state that lists this observer, own entry hidden', async () => {
      const replay = await startReplay('hold');
      try {
        const r = await cli(['monitor', '--address', replay.address]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stderr, '');
        const event1 =
          '{"server_id":1,"eventer_server":{"host":"127.0.0.1","port":23112},"server_token":null}';
        const event2 =
          '{"server_id":2,"eventer_server":{"host":"127.0.0.1","port":23113},"server_token":null}';
        assert.deepEqual(lines(r.stdout), [
          `monitor ${replay.address} mid 0: 2 components, 1 active`,
          'group "event":',
          '  ACTIVE  cid 1 mid 0 name "event1" rank 1 req 1 at 2026-12-04T13:50:30.255623Z res 1 ready',
          '          eventer 127.0.0.1:23112 server_id 1',
          `          data ${event1}`,
          '  standby cid 2 mid 0 name "event2" rank 1 req - res - ready',
          '          eventer 127.0.0.1:23113 server_id 2',
          `          data ${event2}`,
        ]);
      } finally {
        await replay.close();
      }
    });

    test('--watch prints each distinct state, then exits 1 when the monitor goes away', async () => {
      const replay = await startReplay('eof');
      try {
        const run = spawnCli(['monitor', '--address', replay.address, '--watch']);
        assert.equal(await run.exited, 1);
        const headers = lines(run.stdout()).filter((l) => / monitor /.test(l));
        // The stale first message lacks our entry; changes of our own (hidden) entry print nothing.
        assert.equal(headers.length, 3, run.stdout());
        for (const h of headers)
          assert.match(
            h,
            /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z monitor 127\.0\.0\.1:\d+ mid 0: /,
          );
        const states = run
          .stdout()
          .split(/^(?=\S+ monitor )/m)
          .map(parseState);
        assert.deepEqual(
          states.map((s) => [...s].map(([name, v]) => `${name} ${v.state}`)),
          [['"event1" ACTIVE', '"event2" standby'], ['"event2" blessed'], ['"event2" ACTIVE']],
        );
        assert.match(
          states[1]?.get('"event2"')?.line ?? '',
          / req 3 at 2026-12-04T13:50:34\.240451Z res - ready$/,
        );
        assert.match(
          run.stderr(),
          /connection to the monitor at 127\.0\.0\.1:\d+ lost: connection closed by the peer/,
        );
      } finally {
        await replay.close();
      }
    });

    test('--json --watch prints every distinct MsgServer as received, data parsed', async () => {
      const replay = await startReplay('eof');
      try {
        const run = spawnCli(['monitor', '--address', replay.address, '--watch', '--json']);
        assert.equal(await run.exited, 1);
        const msgs = lines(run.stdout()).map((l) => JSON.parse(l) as ServerMsg);
        // Every recorded message but the first (it does not list us yet), each once.
        assert.equal(msgs.length, DISTINCT - 1);
        for (const m of msgs) assert.deepEqual([m.cid, m.mid], [3, 0]);
        assert.deepEqual(msgs[0]?.components[2], {
          cid: 3,
          mid: 0,
          name: null,
          group: null,
          data: null,
          rank: 1,
          blessingReq: { token: null, timestamp: null },
          blessingRes: { token: null, ready: false },
        });
        assert.deepEqual(msgs[0]?.components[0]?.data, {
          server_id: 1,
          eventer_server: { host: '127.0.0.1', port: 23112 },
          server_token: null,
        });
        assert.equal(msgs[0]?.components[0]?.blessingReq.timestamp, 1796392230.2556233);
        assert.deepEqual(
          msgs.at(-1)?.components.map((c) => [c.name, c.blessingReq.token, c.blessingRes.token]),
          [
            ['event2', 3, 3],
            ['vec-c', 2, 2],
          ],
        );
      } finally {
        await replay.close();
      }
    });
  });

  describe('against a monitor with registered components', () => {
    let m: MonitorPeer;
    const components: MonitorComponent[] = [];
    const raw: MonitorConnection[] = [];
    const aimmData = {
      name: 'aimm-store-a',
      role: 'primary',
      juggler: 'ws://127.0.0.1:9950/',
      http: 'http://127.0.0.1:9951/',
    };

    before(async () => {
      m = await startMonitorPeer();
      components.push(
        component(m, 'event1', 'event', {
          server_id: 1,
          eventer_server: { host: '127.0.0.1', port: 23012 },
          server_token: null,
        }),
      );
      await until(
        () => byName(m, 'event1') !== undefined && isActive(byName(m, 'event1') as ComponentInfo),
        'event1 active',
      );
      components.push(
        component(m, 'event2', 'event', {
          server_id: 2,
          eventer_server: { host: '127.0.0.1', port: 23022 },
          server_token: 'tok',
        }),
        component(m, 'aimm-store-a', 'aimm', aimmData),
      );
      // Ready, blessed, but never takes up its blessing: "blessed". Its data has a big integer.
      const stuck = await connectMonitor({ host: m.host, port: m.port }, { pingDelay: 0 });
      stuck.send({
        name: 'stuck',
        group: 'raw',
        data: '{"x": 12345678901234567890}',
        blessingRes: { token: null, ready: true },
      });
      // Connected but never registered: group null.
      const unnamed = await connectMonitor({ host: m.host, port: m.port }, { pingDelay: 0 });
      raw.push(stuck, unnamed);
      await until(() => {
        const aimm = byName(m, 'aimm-store-a');
        return (
          m.components().length === 5 &&
          aimm !== undefined &&
          isActive(aimm) &&
          byName(m, 'stuck')?.blessingReq.token != null &&
          byName(m, 'event2')?.blessingRes.ready === true
        );
      }, 'the components registered');
    });

    after(async () => {
      await Promise.all(components.map((c) => c.close()));
      await Promise.all(raw.map((c) => c.close()));
      await m.close();
    });

    test('groups, states, tokens, eventer addresses and data', async () => {
      const r = await cli(['monitor', '--address', addr(m)]);
      assert.equal(r.code, 0, r.stderr);
      const out = lines(r.stdout);
      assert.equal(out[0], `monitor ${addr(m)} mid 0: 5 components, 2 active`);
      assert.deepEqual(out.filter((l) => /^\S/.test(l)).slice(1), [
        'group "event":',
        'group "aimm":',
        'group "raw":',
        'no group (not registered yet):',
      ]);
      const s = parseState(r.stdout);
      assert.deepEqual(
        [...s].map(([name, v]) => [name, v.state, v.group]),
        [
          ['"event1"', 'ACTIVE', 'group "event":'],
          ['"event2"', 'standby', 'group "event":'],
          ['"aimm-store-a"', 'ACTIVE', 'group "aimm":'],
          ['"stuck"', 'blessed', 'group "raw":'],
          ['-', 'standby', 'no group (not registered yet):'],
        ],
        'our own entry is not listed',
      );
      const e1 = byName(m, 'event1') as ComponentInfo;
      const iso = new Date((e1.blessingReq.timestamp as number) * 1000).toISOString().slice(0, 19);
      const token = e1.blessingReq.token;
      assert.match(
        s.get('"event1"')?.line ?? '',
        new RegExp(
          `^  ACTIVE  cid ${e1.cid} mid 0 name "event1" rank 1 req ${token} at ${iso}\\.\\d{6}Z res ${token} ready$`,
        ),
      );
      assert.equal(s.get('"event1"')?.extra[0], 'eventer 127.0.0.1:23012 server_id 1');
      assert.match(s.get('"event2"')?.line ?? '', / req - res - ready$/);
      assert.deepEqual(s.get('"event2"')?.extra, [
        'eventer 127.0.0.1:23022 server_id 2',
        'data {"server_id":2,"eventer_server":{"host":"127.0.0.1","port":23022},"server_token":"tok"}',
      ]);
      assert.deepEqual(s.get('"aimm-store-a"')?.extra, [`data ${JSON.stringify(aimmData)}`]);
      const stuck = byName(m, 'stuck') as ComponentInfo;
      assert.match(
        s.get('"stuck"')?.line ?? '',
        new RegExp(` req ${stuck.blessingReq.token} at \\S+Z res - ready$`),
      );
      assert.deepEqual(s.get('"stuck"')?.extra, ['data {"x":12345678901234567890}']);
      assert.match(s.get('-')?.line ?? '', / rank 1 req - res - not-ready$/);
      assert.deepEqual(s.get('-')?.extra, []);
    });

    test('--json: one line, the whole MsgServer with data parsed', async () => {
      const r = await cli(['monitor', '--address', addr(m), '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(lines(r.stdout).length, 1);
      assert.match(r.stdout, /"data":\{"x":12345678901234567890\}/, 'numbers kept verbatim');
      const msg = JSON.parse(r.stdout) as ServerMsg;
      assert.equal(msg.mid, 0);
      const own = msg.components.find((c) => c.cid === msg.cid);
      assert.deepEqual([own?.name, own?.group, own?.data], [null, null, null], 'our own entry');
      // (Big integers are lost by JSON.parse: stuck's data was checked verbatim above.)
      const dataOf = (name: string | null, text: string) => (name === 'stuck' ? 'big' : text);
      assert.deepEqual(
        msg.components
          .filter((c) => c.cid !== msg.cid)
          .map((c) => ({ ...c, data: dataOf(c.name, JSON.stringify(c.data)) })),
        m
          .components()
          .filter((c) => c.cid !== msg.cid)
          .map((c) => ({ ...c, data: dataOf(c.name, JSON.stringify(JSON.parse(c.data))) })),
      );
    });

    test('--watch shows a failover, and ends with 0 on SIGTERM', async () => {
      const run = spawnCli(['monitor', '--address', addr(m), '--watch']);
      try {
        await until(() => /"event1"/.test(run.stdout()), 'the first state');
        const event1 = components.shift() as MonitorComponent;
        await event1.close();
        await until(
          () => /^ {2}ACTIVE {2}cid \d+ mid 0 name "event2" /m.test(run.stdout()),
          'event2 active',
        );
        const headers = lines(run.stdout()).filter((l) => / monitor /.test(l));
        assert.ok(headers.length >= 2, run.stdout());
        assert.match(headers.at(-1) as string, /^\S+Z monitor \S+ mid 0: 4 components, 2 active$/);
        const latest = parseState(
          run
            .stdout()
            .split(/^(?=\S+ monitor )/m)
            .at(-1) as string,
        );
        assert.equal(latest.get('"event1"'), undefined);
        run.child.kill('SIGTERM');
        assert.equal(await run.exited, 0);
        assert.equal(run.stderr(), '');
      } finally {
        if (run.child.exitCode === null) run.child.kill('SIGKILL');
      }
    });
  });

  test('--watch: MsgClose from the monitor ends it with 1 and says so', async () => {
    const m = await startMonitorPeer();
    const run = spawnCli(['monitor', '--address', addr(m), '--watch']);
    try {
      await until(() => /^\S+Z monitor /.test(run.stdout()), 'the first state');
      await m.stop();
      assert.equal(await run.exited, 1);
      assert.match(
        run.stderr(),
        /^aimm-store hat monitor: the monitor at 127\.0\.0\.1:\d+ closed the connection \(MsgClose\)\n$/,
      );
      assert.match(run.stdout(), /: 0 components, 0 active/);
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
      await m.close();
    }
  });

  test('a closed stdout ends --watch quietly', async () => {
    const m = await startMonitorPeer();
    const run = spawnCli(['monitor', '--address', addr(m), '--watch']);
    try {
      await until(() => run.stdout() !== '', 'the first state');
      run.child.stdout?.destroy();
      const c = component(m, 'late', 'g', null);
      try {
        assert.equal(await run.exited, 0);
      } finally {
        await c.close();
      }
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
      await m.close();
    }
  });

  test('unreachable monitor: one line naming the address, exit 1', async () => {
    const s = createServer();
    const port = await listen(s);
    await new Promise<void>((r) => s.close(() => r()));
    const r = await cli(['monitor', '--address', `127.0.0.1:${port}`]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      `aimm-store hat monitor: cannot connect to 127.0.0.1:${port}: connection refused\n`,
    );
    const w = await cli(['monitor', '--address', `127.0.0.1:${port}`, '--watch']);
    assert.equal(w.code, 1);
  });

  test('a port that says nothing: no state within --timeout, exit 1', async () => {
    const sockets = new Set<Socket>();
    const s = createServer((socket) => sockets.add(socket));
    const port = await listen(s);
    try {
      const r = await cli(['monitor', '--address', `127.0.0.1:${port}`, '--timeout', '300']);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /no state from the monitor at 127\.0\.0\.1:\d+ within 300 ms/);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((r) => s.close(() => r()));
    }
  });

  test('usage errors, help, and the address forms', async () => {
    for (const args of [
      ['monitor', 'extra'],
      ['monitor', '--address', 'a:b:c'],
      ['monitor', '--address', 'h:99999'],
      ['monitor', '--token', 't'],
      ['monitor', '--client-name', 'x'],
      ['monitor', '--timeout', 'soon'],
      ['monitor', '--bogus'],
    ]) {
      const r = await cli(args);
      assert.equal(r.code, 2, `${args.join(' ')} → ${r.stderr}`);
      assert.match(r.stderr, /^aimm-store hat monitor: /);
    }
    const help = await cli(['--help']);
    assert.match(help.stdout, /hat monitor \[--address HOST\[:PORT\]\] \[--watch\] \[--json\]/);
    assert.deepEqual(parseMonitorAddress('hat1'), { host: 'hat1', port: 23010 });
    assert.deepEqual(parseMonitorAddress('[::1]'), { host: '::1', port: 23010 });
    assert.deepEqual(parseMonitorAddress('[::1]:23110'), { host: '::1', port: 23110 });
    assert.deepEqual(parseMonitorAddress('10.0.0.1:23110'), { host: '10.0.0.1', port: 23110 });
  });
});
