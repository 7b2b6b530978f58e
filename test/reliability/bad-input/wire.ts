/**
 * The bad-input campaign's end-to-end targets, against `aimm-store serve` as a child process:
 *
 * - `config-cli`: broken config files through `check-config` and `serve` (exit 2, one
 *   `FILE: PATH: MESSAGE (rule: RULE)` line per issue naming the expected one, nothing created),
 *   config files that cannot be read, and a data path that cannot be created (exit 1, named);
 * - `juggler-wire`: fuzz connections (bad frames and requests, see juggler.ts) beside a canary
 *   client whose writes and reads must all succeed, with nothing of the fuzz stored;
 * - `hat-events-wire`: malformed model events registered in Hat by another writer: each skipped
 *   and counted under its reason, the valid ones applied, the same again after a restart, and ids
 *   of malformed events never handed out;
 * - `chatter-wire`: garbage injected into the daemon's Hat connection by a proxy: the daemon drops
 *   the connection, reconnects, recovers, and a canary's acknowledged writes are all in Hat.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import fc from 'fast-check';
import WebSocket from 'ws';
import { RequestFailedError } from '../../../src/client/connection.js';
import { JugglerClient } from '../../../src/client/index.js';
import type { EventPayload } from '../../../src/hat/eventer/common.js';
import { type HatPeer, startHatPeer } from '../../peer/hat-peer.js';
import {
  Daemon,
  deadline,
  httpGet,
  MAIN,
  metricSum,
  metricValue,
  Rng,
  ROOT,
  sha256,
  sleep,
  until,
  writeConfig,
} from '../support.js';
import {
  causes,
  eventBase,
  type Json,
  type Mutation,
  ruleMutations,
  schemaMutations,
  sqliteBase,
} from './config.js';
import { classify, eventArb, type Reason, storable } from './hat-events.js';
import type { TargetResult } from './in-process.js';
import { bump, done, mutated, report, start, validFrames } from './in-process.js';
import { type WireCase, wireCaseArb } from './juggler.js';

function runCli(
  args: string[],
  timeoutMs = 30_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString('utf8');
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

// ---- config files ----------------------------------------------------------------------------

const ISSUE_LINE = /^(.+): (\$\S*): (.+) \(rule: ([A-Za-z_]+)\)$/;

export async function configCli(cases: number, seed: number, dir: string): Promise<TargetResult> {
  const r = start('config files (CLI)');
  const rng = new Rng(seed);
  const all: Mutation[] = [...schemaMutations(dir), ...ruleMutations(dir)];
  const bases = { sqlite: sqliteBase(dir), event: eventBase(dir) };
  const dataDir = join(dir, 'never-created');
  const judge = (
    what: string,
    out: { code: number | null; stdout: string; stderr: string },
    file: string,
    m: Mutation | null,
  ) => {
    r.inputs++;
    if (out.code !== 2)
      return r.failures.push(`${what}: exit ${out.code}, expected 2; ${out.stderr.slice(0, 400)}`);
    const lines = out.stderr
      .split('\n')
      .filter(
        (l) =>
          l !== '' &&
          !l.startsWith('warning: ') &&
          !l.startsWith('(node:') &&
          !l.startsWith('(Use `node'),
      );
    const issues = lines.map((l) => ISSUE_LINE.exec(l));
    if (lines.length === 0 || issues.some((x) => x === null || x[1] !== file))
      return r.failures.push(
        `${what}: stderr is not one issue per line: ${out.stderr.slice(0, 400)}`,
      );
    if (m !== null) {
      const parsed = issues.map((x) => ({
        path: x?.[2] ?? '',
        message: x?.[3] ?? '',
        rule: x?.[4] ?? '',
      }));
      if (!causes(parsed, m))
        r.failures.push(
          `${what}: no ${m.expect.rule} issue at ${m.expect.path}: ${out.stderr.slice(0, 400)}`,
        );
    }
    if (existsSync(dataDir)) r.failures.push(`${what}: created ${dataDir}`);
    return 0;
  };
  for (let i = 0; i < cases; i++) {
    const m = all[rng.int(0, all.length - 1)] as Mutation;
    const c = structuredClone(bases[m.base]) as Record<string, Json>;
    m.apply(c);
    const yaml = rng.chance(0.5);
    const file = join(dir, `case-${i}.${yaml ? 'yaml' : 'json'}`);
    writeConfig(file, c); // JSON text is YAML too
    const command = rng.chance(0.7) ? 'check-config' : 'serve';
    const out = await runCli([command, '--conf', file]);
    // check-config fails on what serve fails on (an unreadable token file too): same verdict.
    judge(`${command} ${m.name}`, out, file, m);
    bump(r.detail, command);
  }
  // Files that cannot be read or parsed.
  mkdirSync(join(dir, 'a-folder.yaml'), { recursive: true });
  writeFileSync(join(dir, 'a-file'), 'x');
  writeFileSync(join(dir, 'binary.yaml'), Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80]));
  writeFileSync(join(dir, 'empty.yaml'), '');
  writeFileSync(join(dir, 'broken.json'), '{"name": "x",');
  writeFileSync(join(dir, 'list.yaml'), '- 1\n- 2\n');
  for (const f of [
    'missing.yaml',
    'a-folder.yaml',
    'a-file/below.yaml',
    'binary.yaml',
    'empty.yaml',
    'broken.json',
    'list.yaml',
  ]) {
    const file = join(dir, f);
    for (const command of ['check-config', 'serve'])
      judge(`${command} ${f}`, await runCli([command, '--conf', file]), file, null);
  }
  // A data path that cannot be created: a clear failure at start (exit 1), naming module and cause.
  const bad = structuredClone(bases.sqlite) as Record<string, Json>;
  (bad.backend as Record<string, Json>).path = join(dir, 'a-file', 'models.db');
  const badFile = writeConfig(join(dir, 'bad-path.json'), bad);
  const out = await runCli(['serve', '--conf', badFile]);
  r.inputs++;
  if (
    out.code !== 1 ||
    !/backend module 'aimm-store\/backends\/sqlite'/.test(out.stdout + out.stderr)
  )
    r.failures.push(
      `serve with an unusable data path: exit ${out.code}; ${(out.stdout + out.stderr).slice(0, 600)}`,
    );
  if (/"level":60/.test(out.stdout))
    r.failures.push('serve with an unusable data path logged fatal');
  return done(r);
}

// ---- Juggler over the wire -------------------------------------------------------------------

interface WireOutcome {
  answered: Map<number, { success: boolean; data: unknown }>;
  closeCode: number | null;
}

/** Runs one fuzz connection; returns what came back. */
export async function runWireCase(
  url: string,
  wc: WireCase,
  password: string,
): Promise<WireOutcome> {
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
  const out: WireOutcome = { answered: new Map(), closeCode: null };
  let parts = '';
  const closed = new Promise<void>((resolve) => {
    ws.on('close', (code) => {
      out.closeCode = code;
      resolve();
    });
  });
  ws.on('error', () => {});
  ws.on('message', (raw, isBinary) => {
    if (isBinary) return;
    let text = raw.toString();
    if (wc.framing === '0.7') {
      const t = text.charAt(0);
      if (t === '2') return ws.send(`3${text.slice(1)}`);
      if (t === '1') {
        parts += text.slice(1);
        return;
      }
      if (t !== '0') return;
      text = parts + text.slice(1);
      parts = '';
    }
    try {
      const m = JSON.parse(text) as {
        type?: string;
        id?: number;
        success?: boolean;
        data?: unknown;
      };
      if (m.type === 'response' && typeof m.id === 'number')
        out.answered.set(m.id, { success: m.success === true, data: m.data });
    } catch {
      // not ours to judge here
    }
  });
  const opened = await Promise.race([
    new Promise<boolean>((resolve) => {
      ws.once('open', () => resolve(true));
      ws.once('error', () => resolve(false));
    }),
    deadline(10_000, false),
  ]);
  if (!opened) throw new Error('cannot connect');
  const sendJson = (json: string, segment = 0) => {
    if (wc.framing === '0.6') return ws.send(json);
    if (segment <= 0) return ws.send(`0${json}`);
    for (let i = 0; i < json.length; i += segment)
      ws.send((i + segment < json.length ? '1' : '0') + json.slice(i, i + segment));
  };
  if (wc.login)
    sendJson(
      JSON.stringify({
        type: 'request',
        id: 1,
        name: 'login',
        data: { username: 'admin', password },
      }),
    );
  const waitFor: number[] = wc.login ? [1] : [];
  let fatal = false;
  for (const s of wc.steps) {
    if (s.kind === 'request') {
      sendJson(s.text, s.segment);
      waitFor.push(s.id);
    } else {
      if (typeof s.frame === 'string') ws.send(s.frame);
      else ws.send(s.frame, { binary: s.binary === true });
      fatal = true;
    }
  }
  const finished = () => out.closeCode !== null || waitFor.every((id) => out.answered.has(id));
  await until(finished, 'answers', 15_000, 2).catch(() => {});
  if (fatal) await Promise.race([closed, deadline(10_000, undefined)]);
  if (out.closeCode === null) {
    ws.close();
    await Promise.race([closed, deadline(5000, undefined)]);
    if (!fatal) out.closeCode = null;
  }
  return out;
}

export function judgeWire(wc: WireCase, out: WireOutcome): string | null {
  const fatal = wc.steps.find((s) => s.kind === 'fatal');
  if (wc.login) {
    const a = out.answered.get(1);
    // A bad frame closes the connection at once: answers still being computed may be dropped.
    if (!(a === undefined && fatal !== undefined) && JSON.stringify(a?.data) !== '{"success":true}')
      return `login answered ${JSON.stringify(a)} (close ${out.closeCode}, answered ${[...out.answered.keys()].join(',')})`;
  }
  for (const s of wc.steps) {
    if (s.kind !== 'request') continue;
    const a = out.answered.get(s.id);
    if (a === undefined) {
      if (fatal !== undefined) continue; // the close may overtake answers
      return `request ${s.id} (${s.text.slice(0, 120)}) got no answer (close ${out.closeCode})`;
    }
    if (a.success !== s.expect.success)
      return `request ${s.id} (${s.text.slice(0, 160)}): success ${a.success}, data ${JSON.stringify(a.data).slice(0, 160)}`;
    if (s.expect.data !== undefined && (typeof a.data !== 'string' || !s.expect.data.test(a.data)))
      return `request ${s.id} (${s.text.slice(0, 160)}): data ${JSON.stringify(a.data).slice(0, 160)} does not match ${s.expect.data}`;
    if (s.expect.dataIs !== undefined && JSON.stringify(a.data) !== JSON.stringify(s.expect.dataIs))
      return `request ${s.id}: data ${JSON.stringify(a.data)}`;
  }
  if (fatal !== undefined && fatal.kind === 'fatal') {
    if (out.closeCode !== fatal.code)
      return `expected close ${fatal.code}, got ${out.closeCode} after ${String(fatal.frame).slice(0, 80)}`;
  } else if (out.closeCode !== null) {
    return `the server closed (${out.closeCode}) without a bad frame`;
  }
  return null;
}

/** A client doing real work beside the fuzz: every write acknowledged, every read exact. */
class Canary {
  ops = 0;
  readonly errors: string[] = [];
  private running = true;
  private loop: Promise<void> = Promise.resolve();
  constructor(
    private readonly client: JugglerClient,
    private readonly rng: Rng,
  ) {}
  start(): void {
    this.loop = (async () => {
      const mine = new Map<number, { rev: number; sha: string }>();
      while (this.running) {
        try {
          const bytes = this.rng.bytes(this.rng.int(0, 4000));
          const ids = [...mine.keys()];
          if (ids.length < 20 || this.rng.chance(0.3)) {
            const m = await this.client.put('canary.Model', bytes);
            mine.set(m.instanceId, { rev: m.revision, sha: m.sha256 });
          } else {
            const id = this.rng.pick(ids);
            const cur = mine.get(id) as { rev: number; sha: string };
            const got = await this.client.get(id);
            if (got.revision !== cur.rev || sha256(got.instance) !== cur.sha)
              this.errors.push(`canary read ${id}: not what it wrote`);
            if (this.rng.chance(0.2)) {
              await this.client.remove(id, { expectedRevision: cur.rev });
              mine.delete(id);
            } else {
              const m = await this.client.put('canary.Model', bytes, {
                instanceId: id,
                expectedRevision: cur.rev,
              });
              mine.set(id, { rev: m.revision, sha: m.sha256 });
            }
          }
          this.ops++;
        } catch (err) {
          this.errors.push(`canary: ${(err as Error).message}`);
          if (!(err instanceof RequestFailedError) || this.errors.length >= 20) return;
        }
      }
    })();
  }
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

const ADMIN = { username: 'admin', password: 'admin-password-for-fuzz' };

export async function jugglerWire(
  cases: number,
  seed: number,
  dir: string,
  parallel = 4,
): Promise<TargetResult> {
  const r = start('juggler (wire)');
  const rng = new Rng(seed);
  const maxMessageSize = 65536;
  const config = writeConfig(join(dir, 'juggler-fuzz.json'), {
    name: 'fuzz',
    backend: { module: 'aimm-store/backends/sqlite', path: join(dir, 'juggler-fuzz.db') },
    control: [
      {
        module: 'aimm-store/controls/juggler',
        server: { host: '127.0.0.1', port: 0 },
        users: [{ username: ADMIN.username, password: sha256(ADMIN.password) }],
        max_message_size: maxMessageSize,
        max_connections: 4096,
        // Auto framing assumes 0.7 after framing_wait of silence; a loaded fuzz process can be
        // slower than the 0.5 s default between its connection and its first (0.6) message.
        framing_wait: 10,
      },
      { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } },
    ],
    log: { level: 'info' },
  });
  const daemon = new Daemon(config, { secrets: [ADMIN.password, sha256(ADMIN.password)] });
  try {
    const { url, http } = await daemon.endpoints();
    const canaryClient = await JugglerClient.connect(url, { ...ADMIN, pingDelay: null });
    const canary = new Canary(canaryClient, rng);
    canary.start();
    const per = Math.ceil(cases / parallel);
    const runs = await Promise.all(
      Array.from({ length: parallel }, (_, k) =>
        fc.check(
          fc.asyncProperty(wireCaseArb(maxMessageSize), async (wc) => {
            r.inputs += wc.steps.length + (wc.login ? 1 : 0);
            const out = await runWireCase(url, wc, sha256(ADMIN.password));
            if (process.env.REL_DEBUG) console.error('case', out.closeCode, out.answered.size);
            bump(r.detail, out.closeCode === null ? 'connections kept' : `closed ${out.closeCode}`);
            const why = judgeWire(wc, out);
            if (why !== null) throw new Error(why);
          }),
          { numRuns: per, seed: seed + k, endOnFailure: true },
        ),
      ),
    );
    if (process.env.REL_DEBUG) console.error('fuzz done', r.inputs);
    for (const d of runs) if (d.failed) r.failures.push(report(d));
    await canary.stop();
    r.detail['canary operations'] = canary.ops;
    r.failures.push(...canary.errors);
    if (canary.ops === 0) r.failures.push('the canary did nothing');
    const stored = await canaryClient.list();
    const foreign = stored.filter((m) => m.modelType !== 'canary.Model');
    if (foreign.length > 0)
      r.failures.push(`the fuzz stored models: ${JSON.stringify(foreign.slice(0, 3))}`);
    await canaryClient.close();
    const metrics = (await httpGet(http, '/metrics')).body;
    r.detail.rejected = metricSum(metrics, 'aimm_store_juggler_rejected_total');
    if (!daemon.alive) r.failures.push('the daemon died');
  } finally {
    await daemon.stop();
    r.failures.push(...daemon.problems);
  }
  return done(r);
}

// ---- model events in Hat ---------------------------------------------------------------------

const PREFIX = ['aimm', 'model'];
const TOKEN = 'bad-input-token';

interface Expect {
  skipped: Record<Reason, number>;
  /** id → live model (type, sha) or null when deleted; revision = applied events. */
  models: Map<number, { revision: number; live: { modelType: string; sha: string } | null }>;
  maxParsedId: number;
}

function eventDaemonConfig(
  dir: string,
  name: string,
  host: string,
  port: number,
  snapshot: boolean,
  backendExtra: Record<string, unknown> = {},
): string {
  return writeConfig(join(dir, `${name}.json`), {
    name,
    backend: {
      module: 'aimm-store/backends/event',
      model_prefix: PREFIX,
      ...backendExtra,
      reconnect: { min_delay_ms: 20, max_delay_ms: 200 },
      request_timeout_ms: 2000,
      ...(snapshot ? { snapshot: { path: join(dir, `${name}-snapshot.db`) } } : {}),
    },
    hat: {
      eventer_server: { host, port },
      client_token: TOKEN,
      ping_delay: 0.3,
      ping_timeout: 0.5,
      connect_timeout: 1,
    },
    control: [
      { module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 0 } },
      { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } },
    ],
    log: { level: 'info' },
  });
}

export async function hatEventsWire(
  batches: number,
  seed: number,
  dir: string,
): Promise<TargetResult> {
  const r = start('model events in Hat (wire)');
  const peer = await startHatPeer({ serverToken: TOKEN, flushDelayMs: 5 });
  const expect: Expect = {
    skipped: {
      bad_type: 0,
      bad_id: 0,
      binary_payload: 0,
      bad_json: 0,
      not_aimm_shaped: 0,
      bad_base64: 0,
    },
    models: new Map(),
    maxParsedId: 0,
  };
  const apply = (type: readonly string[], payload: EventPayload | null) => {
    const c = classify(PREFIX, type, payload);
    if (c.kind === 'malformed') {
      expect.skipped[c.reason]++;
      if (c.id !== null) expect.maxParsedId = Math.max(expect.maxParsedId, c.id);
      return;
    }
    expect.maxParsedId = Math.max(expect.maxParsedId, c.id);
    const m = expect.models.get(c.id) ?? { revision: 0, live: null };
    m.revision++;
    m.live = c.kind === 'model' ? { modelType: c.modelType, sha: sha256(c.instance) } : null;
    expect.models.set(c.id, m);
  };
  // No snapshot and `full_replay: history`: a restart replays the whole history, every malformed
  // event again, and serves exact revisions when ready. (The default, `latest_then_history`,
  // applies only each id's newest event before ready: test/event-backend/latest-then-history.)
  const config = eventDaemonConfig(dir, 'events-fuzz', peer.host, peer.port, false, {
    full_replay: 'history',
  });
  let daemon = new Daemon(config, { secrets: [TOKEN] });
  // The top of the id space is tried once, at the end (it ends id allocation for good).
  const top = String(Number.MAX_SAFE_INTEGER);
  const gen = fc.sample(
    eventArb(PREFIX).filter((e) => storable(e.payload) && e.type[PREFIX.length] !== top),
    { numRuns: batches * 12, seed },
  );
  let cursor = 0;
  let marker = 1_000_000;
  try {
    const connect = async (d: Daemon) => {
      const { url, http } = await d.endpoints();
      return { client: await JugglerClient.connect(url, { pingDelay: null }), http };
    };
    let { client, http } = await connect(daemon);
    const verify = async (what: string) => {
      const m = (await httpGet(http, '/metrics')).body;
      for (const [reason, n] of Object.entries(expect.skipped)) {
        const got =
          metricValue(m, 'aimm_store_event_skipped_events_total', `reason="${reason}"`) ?? 0;
        if (got !== n) r.failures.push(`${what}: skipped ${reason} ${got}, expected ${n}`);
      }
      const served = new Map((await client.list()).map((x) => [x.instanceId, x]));
      for (const [id, e] of expect.models) {
        const s = served.get(id);
        if (e.live === null) {
          if (s !== undefined) r.failures.push(`${what}: ${id} deleted in Hat but served`);
          continue;
        }
        if (
          s === undefined ||
          s.revision !== e.revision ||
          s.sha256 !== e.live.sha ||
          s.modelType !== e.live.modelType
        )
          r.failures.push(
            `${what}: ${id} served ${JSON.stringify(s)}, expected ${JSON.stringify(e)}`,
          );
      }
      for (const id of served.keys())
        if (!expect.models.has(id)) r.failures.push(`${what}: ${id} served, never written`);
    };
    for (let b = 0; b < batches && r.failures.length === 0; b++) {
      const n = 1 + (b % 12);
      const events = gen.slice(cursor, cursor + n);
      cursor += n;
      // A valid marker last: once it is served, the daemon has seen the whole batch.
      const markerId = ++marker;
      const markerBytes = Buffer.from(`marker ${markerId}`);
      const all = [
        ...events.map((e) => ({ type: e.type, sourceTimestamp: null, payload: e.payload })),
        {
          type: [...PREFIX, String(markerId)],
          sourceTimestamp: null,
          payload: {
            kind: 'json' as const,
            text: JSON.stringify({ type: 'marker', instance: markerBytes.toString('base64') }),
          },
        },
      ];
      peer.register(all);
      for (const e of all) apply(e.type, e.payload);
      r.inputs += events.length;
      await until(
        async () => (await client.list()).some((x) => x.instanceId === markerId),
        `marker ${markerId}`,
        15_000,
        5,
      ).catch((err: Error) => r.failures.push(err.message));
      if (b % 10 === 9 || b === batches - 1) await verify(`after batch ${b + 1}`);
    }
    // A new model gets an id above every id Hat has seen under the prefix, malformed ones included
    // (or, when another writer used the top of the id space, a clear refusal).
    try {
      const created = await client.put('after.fuzz', Buffer.from('x'));
      if (created.instanceId <= expect.maxParsedId)
        r.failures.push(`created id ${created.instanceId}, not above ${expect.maxParsedId}`);
      apply([...PREFIX, String(created.instanceId)], {
        kind: 'json',
        text: JSON.stringify({ type: 'after.fuzz', instance: Buffer.from('x').toString('base64') }),
      });
    } catch (err) {
      if (
        Number.isSafeInteger(expect.maxParsedId + 1) ||
        !/no instance id left/.test((err as Error).message)
      )
        r.failures.push(`create after the fuzz: ${(err as Error).message}`);
      else bump(r.detail, 'id space exhausted by another writer (refused clearly)');
    }
    // Another writer takes the last safe id: creates are then refused with a clear error.
    const last = {
      type: [...PREFIX, top],
      sourceTimestamp: null,
      payload: { kind: 'json' as const, text: JSON.stringify({ type: 'top', instance: 'eA==' }) },
    };
    peer.register([last]);
    apply(last.type, last.payload);
    r.inputs++;
    await until(
      async () => (await client.list()).some((x) => x.instanceId === Number.MAX_SAFE_INTEGER),
      'the top id',
      15_000,
      5,
    ).catch((err: Error) => r.failures.push(err.message));
    const refused = await client.put('after.top', Buffer.from('y')).then(
      (m) => `created ${m.instanceId}`,
      (err: Error) => err.message,
    );
    if (!/no instance id left/.test(refused))
      r.failures.push(`create after the top id: ${refused}`);
    // A restart replays it all: the same verdicts.
    await client.close();
    await daemon.stop();
    r.failures.push(...daemon.problems);
    daemon = new Daemon(config, { secrets: [TOKEN] });
    ({ client, http } = await connect(daemon));
    await verify('after a restart');
    await client.close();
    r.detail.events = cursor;
    for (const [k, v] of Object.entries(expect.skipped)) r.detail[k] = v;
  } finally {
    await daemon.stop();
    r.failures.push(...daemon.problems);
    await peer.close();
  }
  return done(r);
}

// ---- garbage on the Hat connection -----------------------------------------------------------

/** A TCP proxy in front of the peer that can inject bytes towards the daemon. */
class HatProxy {
  private readonly server: Server;
  private readonly pairs = new Set<{ down: Socket; up: Socket }>();
  port = 0;
  constructor(private readonly peer: HatPeer) {
    this.server = createServer((down) => {
      const up = tcpConnect(this.peer.port, this.peer.host);
      const pair = { down, up };
      this.pairs.add(pair);
      down.on('data', (b) => up.write(b));
      up.on('data', (b) => down.write(b));
      const end = () => {
        this.pairs.delete(pair);
        down.destroy();
        up.destroy();
      };
      for (const s of [down, up]) {
        s.on('error', end);
        s.on('close', end);
      }
    });
  }
  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }
  /** Writes `bytes` to every daemon-side connection, as if Hat had sent them. */
  inject(bytes: Uint8Array): number {
    for (const p of this.pairs) p.down.write(bytes);
    return this.pairs.size;
  }
  /** Cuts every connection (the daemon reconnects through the proxy). */
  cut(): void {
    for (const p of this.pairs) {
      p.down.destroy();
      p.up.destroy();
    }
  }
  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export async function chatterWire(
  injections: number,
  seed: number,
  dir: string,
): Promise<TargetResult> {
  const r = start('chatter frames on the Hat connection (wire)');
  const rng = new Rng(seed);
  const peer = await startHatPeer({ serverToken: TOKEN, flushDelayMs: 5 });
  const proxy = new HatProxy(peer);
  await proxy.listen();
  const config = eventDaemonConfig(dir, 'chatter-fuzz', '127.0.0.1', proxy.port, false);
  const daemon = new Daemon(config, { secrets: [TOKEN] });
  const frames = validFrames();
  const garbage = fc.sample(
    fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 300 }),
      mutated(fc.constantFrom(...frames)),
      // A length prefix announcing more than the client accepts (it must refuse before reading).
      fc.constantFrom(
        Buffer.from([8, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        Buffer.from([4, 0x7f, 0xff, 0xff, 0xff]),
      ),
      // A frame cut short, then other bytes.
      fc
        .constantFrom(...frames)
        .map((f) =>
          Buffer.concat([f.subarray(0, Math.max(1, f.length >> 1)), Buffer.from([0, 0, 0])]),
        ),
    ),
    { numRuns: injections, seed },
  );
  try {
    const { url, http } = await daemon.endpoints();
    const client = await JugglerClient.connect(url, { pingDelay: null });
    const acks: { id: number; revision: number; sha: string | null }[] = [];
    let running = true;
    const writer = (async () => {
      const live: number[] = [];
      while (running) {
        try {
          const bytes = rng.bytes(rng.int(1, 2000));
          if (live.length > 0 && rng.chance(0.5)) {
            const id = rng.pick(live);
            const m = await client.put('canary.Model', bytes, { instanceId: id });
            acks.push({ id, revision: m.revision, sha: m.sha256 });
          } else {
            const m = await client.put('canary.Model', bytes);
            live.push(m.instanceId);
            acks.push({ id: m.instanceId, revision: m.revision, sha: m.sha256 });
          }
        } catch (err) {
          if (!(err instanceof RequestFailedError)) {
            r.failures.push(`canary lost its connection: ${(err as Error).message}`);
            return;
          }
          bump(r.detail, 'canary writes failed (Hat connection down)');
          await sleep(10);
        }
      }
    })();
    const metric = async (name: string) => metricSum((await httpGet(http, '/metrics')).body, name);
    const awaitReady = (what: string) =>
      until(async () => (await httpGet(http, '/readyz')).status === 200, what, 20_000, 10).catch(
        (err: Error) => r.failures.push(err.message),
      );
    for (const g of garbage) {
      await awaitReady('ready');
      const before = await metric('aimm_store_event_disconnects_total');
      if (proxy.inject(g) === 0) continue;
      r.inputs++;
      // Garbage ends the connection: at once (a bad frame), or once a request over it times out.
      const dropped = await until(
        async () => (await metric('aimm_store_event_disconnects_total')) > before,
        'drop',
        10_000,
        10,
      ).then(
        () => true,
        () => false,
      );
      if (dropped) bump(r.detail, 'connections dropped');
      else {
        // A mutated frame can be a well-formed status notification: the daemon then takes Hat at
        // its word (not ready, as for a real standby) until a new connection brings the real status.
        const ready = await httpGet(http, '/readyz');
        const status = /Hat server status is (\w+)/.exec(ready.body)?.[1];
        if (
          ready.status === 503 &&
          status !== undefined &&
          status !== 'operational' &&
          Buffer.from(g).includes('HatEventer.MsgStatusNotify')
        ) {
          bump(r.detail, `garbage read as a status notification (${status})`);
          proxy.cut();
        } else bump(r.detail, 'garbage absorbed (no drop)');
      }
      if (r.failures.length > 0 || !daemon.alive) break;
    }
    running = false;
    await writer;
    await awaitReady('ready at the end');
    // Every acknowledged write is in Hat at its revision.
    const byId = new Map<number, EventPayload[]>();
    for (const e of peer.events) {
      if (e.type.length !== 3 || e.type[0] !== PREFIX[0] || e.type[1] !== PREFIX[1]) continue;
      const id = Number(e.type[2]);
      byId.set(id, [...(byId.get(id) ?? []), e.payload as EventPayload]);
    }
    for (const a of acks) {
      const p = byId.get(a.id)?.[a.revision - 1];
      const sha =
        p?.kind === 'json'
          ? sha256(Buffer.from((JSON.parse(p.text) as { instance: string }).instance, 'base64'))
          : null;
      if (sha !== a.sha)
        r.failures.push(`acknowledged write of ${a.id} at revision ${a.revision} is not in Hat`);
    }
    r.detail['acknowledged writes checked'] = acks.length;
    await client.close();
    if (!daemon.alive) r.failures.push('the daemon died');
  } finally {
    await daemon.stop();
    r.failures.push(...daemon.problems);
    await proxy.close();
    await peer.close();
  }
  return done(r);
}
