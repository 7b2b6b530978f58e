/** `aimm-store hat ...` end to end: the compiled CLI as a child process against the test peer. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Event } from '../../src/hat/eventer/common.js';
import { type HatPeer, startHatPeer } from '../peer/hat-peer.js';
import { cli, MAIN } from './cli-run.js';

const lines = (text: string) => text.split('\n').filter((l) => l !== '');

/** Compares printed lines with the expected ones: exact text, except JSON payloads by value. */
function assertLines(actual: string, events: readonly Event[]): void {
  const split = (line: string) => {
    const m = /^(.*,"payload":)(.*)}$/.exec(line);
    assert.ok(m !== null, `not an event line: ${line}`);
    return [m[1], JSON.parse(m[2] as string)];
  };
  assert.deepStrictEqual(lines(actual).map(split), events.map(expectedLine).map(split));
}

/** The exact line the CLI must print for a stored event. */
function expectedLine(e: Event): string {
  const ts = (t: Event['timestamp']) => `{"s":${t.s},"us":${t.us}}`;
  let payload = 'null';
  if (e.payload?.kind === 'json')
    payload = `{"json":${JSON.stringify(JSON.parse(e.payload.text))}}`;
  if (e.payload?.kind === 'binary') {
    payload = `{"binary":{"type":${JSON.stringify(e.payload.type)},"data":"${Buffer.from(e.payload.data).toString('base64')}"}}`;
  }
  return `{"id":[${e.id.server},${e.id.session},${e.id.instance}],"type":${JSON.stringify(e.type)},"timestamp":${ts(e.timestamp)},"source_timestamp":${e.sourceTimestamp === null ? 'null' : ts(e.sourceTimestamp)},"payload":${payload}}`;
}

let peer: HatPeer;
let addr: string;
before(async () => {
  peer = await startHatPeer({ flushDelayMs: 60_000 });
  addr = `${peer.host}:${peer.port}`;
});
after(() => peer.close());

describe('aimm-store hat', { timeout: 60_000 }, () => {
  test('status prints the server status', async () => {
    const r = await cli(['status', '--address', addr]);
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, '{"status":"operational"}\n', '']);
    const p = await startHatPeer({ status: 'starting' });
    try {
      const s = await cli(['status', '--address', `${p.host}:${p.port}`]);
      assert.equal(s.stdout, '{"status":"starting"}\n');
    } finally {
      await p.close();
    }
  });

  test('status of an unreachable server: one line on stderr, exit 1', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as { port: number }).port;
    await new Promise<void>((r) => s.close(() => r()));
    const r = await cli(['status', '--address', `127.0.0.1:${port}`]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(lines(r.stderr).length, 1);
    assert.match(r.stderr, /refused/);
  });

  test('register prints the registered events in the documented line format', async () => {
    const r = await cli([
      'register',
      '--address',
      addr,
      '--type',
      'cli/a',
      '--type',
      'cli/b',
      '--json',
      '{"big": 12345678901234567890, "f": 1.0, "s": "\u017e"}',
      '--source-time',
      '2024-01-02T03:04:05.123456Z',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const stored = peer.events.filter((e) => e.type[0] === 'cli');
    assert.equal(stored.length, 2);
    assertLines(r.stdout, stored);
    assert.match(
      r.stdout,
      /"json":\{"big":12345678901234567890,"f":1\.0,"s":"ž"\}/,
      'numbers kept verbatim',
    );
    assert.match(r.stdout, /"source_timestamp":\{"s":1704164645,"us":123456\}/);
  });

  test('register a binary payload from a file, and without response', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hat-cli-'));
    const file = join(dir, 'blob.bin');
    writeFileSync(file, Buffer.from([0, 1, 2, 250, 251, 255]));
    const r = await cli([
      'register',
      '--address',
      addr,
      '--type',
      'bin/1',
      '--binary-type',
      'raw',
      '--file',
      file,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const [line] = lines(r.stdout);
    assert.match(line as string, /"payload":\{"binary":\{"type":"raw","data":"AAEC\+vv\/"\}\}\}$/);
    const stdin = await cli(
      ['register', '--address', addr, '--type', 'bin/2', '--binary-type', 'x', '--file', '-'],
      Buffer.from('hi'),
    );
    assert.match(stdin.stdout, /"data":"aGk="/);
    const before = peer.events.length;
    const nr = await cli(['register', '--address', addr, '--type', 'nr/1', '--no-response']);
    assert.deepEqual([nr.code, nr.stdout], [0, '']);
    assert.ok(peer.events.slice(before).some((e) => e.type.join('/') === 'nr/1'));
  });

  test('register failure exits 1', async () => {
    peer.failRegisters(true);
    try {
      const r = await cli(['register', '--address', addr, '--type', 'f/1']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /register failed/);
    } finally {
      peer.failRegisters(false);
    }
  });

  test('query latest / timeseries (all pages) / server', async () => {
    for (let i = 0; i < 5; i++)
      peer.register([
        { type: ['ts', String(i)], sourceTimestamp: { s: 1000 + i, us: 0 }, payload: null },
      ]);
    const latest = await cli(['query', '--address', addr, 'latest', 'ts/*']);
    assert.equal(latest.code, 0, latest.stderr);
    assert.deepEqual(
      lines(latest.stdout),
      peer.events.filter((e) => e.type[0] === 'ts').map(expectedLine),
    );

    const all = peer.events.filter((e) => e.type[0] === 'ts');
    const paged = await cli(['query', '--address', addr, 'timeseries', 'ts/?', '--max', '2']);
    assert.deepEqual(
      lines(paged.stdout),
      [...all].reverse().map(expectedLine),
      'descending, every page',
    );
    const asc = await cli([
      'query',
      '--address',
      addr,
      'timeseries',
      'ts/*',
      '--asc',
      '--by-source',
      '--source-from',
      '1001',
      '--source-to',
      '1970-01-01T00:16:43Z',
    ]);
    assert.deepEqual(lines(asc.stdout), all.slice(1, 4).map(expectedLine));
    const t = all[2]?.timestamp as Event['timestamp'];
    const iso = `${new Date(Number(t.s) * 1000).toISOString().slice(0, 19)}.${String(t.us).padStart(6, '0')}Z`;
    const ranged = await cli([
      'query',
      '--address',
      addr,
      'timeseries',
      'ts/*',
      '--from',
      iso,
      '--to',
      iso,
    ]);
    assert.deepEqual(lines(ranged.stdout), [expectedLine(all[2] as Event)]);

    const stored = peer.events.length;
    const server = await cli([
      'query',
      '--address',
      addr,
      'server',
      '--server-id',
      '1',
      '--max',
      '3',
    ]);
    // Everything stored, up to and including the CLI's own CONNECTED event (its DISCONNECTED
    // event comes after the query).
    assert.equal(lines(server.stdout).length, stored + 1);
    assertLines(server.stdout, peer.events.slice(0, stored + 1));
    assert.match(
      lines(server.stdout).at(-1) as string,
      /"eventer","aimm-store\/hat-cli"\].*"CONNECTED"/,
    );
    const none = await cli([
      'query',
      '--address',
      addr,
      'server',
      '--server-id',
      '1',
      '--persisted',
    ]);
    assert.equal(none.stdout, '', 'nothing flushed yet');
    peer.flush();
    const persisted = await cli([
      'query',
      '--address',
      addr,
      'server',
      '--server-id',
      '1',
      '--persisted',
    ]);
    assert.ok(lines(persisted.stdout).length >= all.length);
  });

  test('watch prints events as they arrive until SIGINT', async () => {
    const child = spawn(process.execPath, [MAIN, 'hat', 'watch', '--address', addr, 'watch/*']);
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      for (
        let i = 0;
        i < 500 && !peer.clients().some((c) => c.subscriptions[0]?.[0] === 'watch');
        i++
      ) {
        await new Promise((r) => setTimeout(r, 10));
      }
      const created = [
        ...peer.register([
          { type: ['watch', '1'], sourceTimestamp: null, payload: { kind: 'json', text: '"a"' } },
        ]),
        ...peer.register([{ type: ['watch', '2'], sourceTimestamp: null, payload: null }]),
      ];
      peer.register([{ type: ['other'], sourceTimestamp: null, payload: null }]);
      for (let i = 0; i < 500 && lines(out).length < 2; i++)
        await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(lines(out), created.map(expectedLine));
      child.kill('SIGINT');
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  test('watch exits 1 when the server goes away', async () => {
    const p = await startHatPeer();
    const child = spawn(process.execPath, [
      MAIN,
      'hat',
      'watch',
      '--address',
      `${p.host}:${p.port}`,
      '*',
    ]);
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      for (let i = 0; i < 500 && p.clients().length === 0; i++)
        await new Promise((r) => setTimeout(r, 10));
      await p.stop();
      assert.equal(await exited, 1);
      assert.match(err, /connection lost/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await p.close();
    }
  });

  test('token, usage errors and help', async () => {
    const p = await startHatPeer({ serverToken: 'secret' });
    try {
      const bad = await cli(['status', '--address', `${p.host}:${p.port}`, '--token', 'nope']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /invalid client token/);
      const good = await cli(['status', '--address', `${p.host}:${p.port}`, '--token', 'secret']);
      assert.equal(good.code, 0);
    } finally {
      await p.close();
    }
    for (const args of [
      ['register', '--address', addr],
      ['register', '--address', addr, '--type', 'x', '--json', '{bad'],
      ['register', '--address', addr, '--type', 'x', '--json', '1', '--file', 'f'],
      ['query', '--address', addr, 'server'],
      ['query', '--address', addr, 'latest', '--max', '2'],
      ['query', '--address', addr, 'timeseries', '--from', 'yesterday'],
      ['watch', '--address', addr],
      ['status', '--address', 'nohostport'],
      ['status', '--bogus'],
      ['frobnicate'],
    ]) {
      const r = await cli(args);
      assert.equal(r.code, 2, `${args.join(' ')} → ${r.stderr}`);
      assert.ok(r.stderr.length > 0);
    }
    const help = await cli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /hat query \[--address ADDR\] timeseries/);
  });
});
