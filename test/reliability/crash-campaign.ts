/**
 * The crash campaign: `aimm-store serve` is SIGKILLed again and again while a writer process
 * (crash-writer.ts) drives concurrent creates, updates and deletes through its Juggler API, and
 * after every restart a checker (crash-checker.ts) compares what the daemon serves with the
 * writer's append-only log of acknowledged writes.
 *
 * Kill points (chosen at random by weight, each counted):
 * - `random`: a random moment while writes flow;
 * - `commit`: inside a SQLite write or sync system call of the daemon's main thread (group
 *   commits of the sqlite backend; see kill-points.ts);
 * - `snapshot`: the same, in the event backend, whose only SQLite file is its snapshot;
 * - `register-dropped` / `register-landed` / `register-response`: at the N-th register request
 *   (batch) the Hat test peer receives — before it is handled, after Hat registered it but before
 *   the response, or just after the response was sent;
 * - `catch-up`: during recovery after a restart, at the N-th query the daemon sends (while it
 *   replays the history, or catches up from its snapshot's checkpoint; the campaign first registers
 *   unrelated events in Hat so that there is something to page through);
 * - `startup`: a random moment between spawn and readiness (opening files, recovery).
 *
 * The Hat test peer lives in this process and survives the kills, as a real Hat server would.
 * A campaign runs in epochs (fresh files, peer and writer every `killsPerEpoch` kills) so that the
 * Hat history a daemon without snapshot replays at each start stays bounded. Each epoch ends with
 * a graceful stop (SIGTERM, exit 0) and one more restart and check.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { JugglerClient } from '../../src/client/index.js';
import { type HatPeer, startHatPeer } from '../peer/hat-peer.js';
import {
  type CheckReport,
  CrashChecker,
  type ObservedModel,
  type Violation,
} from './crash-checker.js';
import { readLog, type WriterCommand, type WriterEvent } from './crash-log.js';
import {
  canAimAtSyscalls,
  killInSyscall,
  PeerHooks,
  SYSCALL_NAMES,
  SYSCALLS,
} from './kill-points.js';
import {
  Daemon,
  deadline,
  HERE,
  httpGet,
  makeUser,
  metricSum,
  Rng,
  randomSeed,
  SUPPORT,
  sha256,
  sleep,
  tempDir,
  trackChild,
  writeConfig,
} from './support.js';

export type CrashBackend = 'sqlite' | 'event' | 'memory';

export type KillPoint =
  | 'random'
  | 'commit'
  | 'snapshot'
  | 'register-dropped'
  | 'register-landed'
  | 'register-response'
  | 'catch-up'
  | 'startup';

export interface CrashCampaignOptions {
  /** `memory` is the test backend that forgets everything: the campaign must catch it. */
  backend: CrashBackend;
  /** Event backend: with a SQLite snapshot. */
  snapshot?: boolean;
  /**
   * Event backend: how recovery reads Hat (`catch_up`): `auto` (type-filtered time series),
   * `server` (every event of the server, the campaign's unrelated events too), or `alternate`
   * (by epoch; the default).
   */
  catchUp?: 'auto' | 'server' | 'alternate';
  kills: number;
  seed?: number;
  killsPerEpoch?: number;
  clients?: number;
  perClient?: number;
  targetModels?: number;
  /** Random kills land within this many ms after writes started flowing. */
  maxRandomDelayMs?: number;
  weights?: Partial<Record<KillPoint, number>>;
  /**
   * `random` (default): every kill point drawn by weight; `round-robin`: the points with a weight
   * above 0 in turn (a short run then covers each of them).
   */
  schedule?: 'random' | 'round-robin';
  /** Stop at the first violation (default true). */
  stopOnViolation?: boolean;
  log?: (line: string) => void;
}

export interface CrashSummary {
  backend: string;
  seed: number;
  kills: number;
  killsByPoint: Record<string, number>;
  /** Aimed kills whose moment did not come in time (killed at random instead). */
  missedAims: Record<string, number>;
  /** System calls the daemon was inside when an aimed kill hit. */
  syscallsHit: Record<string, number>;
  restarts: number;
  gracefulStops: number;
  /** Mean writes per SQLite commit (sqlite) or per register request (event), in the clean runs. */
  meanBatch: number | null;
  epochs: number;
  checks: number;
  attempts: number;
  acked: number;
  ackedByOp: Record<string, number>;
  uncertain: number;
  uncertainLanded: number;
  modelsChecked: number;
  idsChecked: number;
  violations: Violation[];
  problems: string[];
  durationMs: number;
}

const TOKEN = 'crash-campaign-token-6f1e';
const PREFIX = ['aimm', 'model'];
const NAME = 'crash';

function defaultWeights(backend: CrashBackend, snapshot: boolean): Record<KillPoint, number> {
  const none = {
    random: 0,
    commit: 0,
    snapshot: 0,
    'register-dropped': 0,
    'register-landed': 0,
    'register-response': 0,
    'catch-up': 0,
    startup: 0,
  };
  if (backend !== 'event')
    return { ...none, random: 4, commit: canAimAtSyscalls ? 4 : 0, startup: 2 };
  return {
    ...none,
    random: 3,
    'register-dropped': 1,
    'register-landed': 2,
    'register-response': 2,
    'catch-up': 2,
    snapshot: snapshot && canAimAtSyscalls ? 2 : 0,
    startup: 1,
  };
}

const RUNNING_POINTS: readonly KillPoint[] = [
  'random',
  'commit',
  'snapshot',
  'register-dropped',
  'register-landed',
  'register-response',
];

const START_POINTS: readonly KillPoint[] = ['startup', 'catch-up'];

/** Which kill point comes next: at a start (startup, catch-up, or none) and while running. */
class PointChooser {
  private cursor = 0;
  private readonly cycle: KillPoint[];

  constructor(
    private readonly rng: Rng,
    private readonly weights: Record<KillPoint, number>,
    private readonly schedule: 'random' | 'round-robin',
  ) {
    this.cycle = (Object.keys(weights) as KillPoint[]).filter((p) => weights[p] > 0);
  }

  /** A start point, or null for a plain start. */
  start(): KillPoint | null {
    if (this.schedule === 'round-robin') {
      const p = this.cycle[this.cursor % this.cycle.length] as KillPoint;
      if (!START_POINTS.includes(p)) return null;
      this.cursor++;
      return p;
    }
    const p = this.rng.weighted(this.weights);
    return START_POINTS.includes(p) ? p : null;
  }

  /** An aimed start point that did not happen: in turn, it is tried again at the next start. */
  missed(): void {
    if (this.schedule === 'round-robin') this.cursor--;
  }

  running(): KillPoint {
    if (this.schedule === 'round-robin') {
      const p = this.cycle[this.cursor % this.cycle.length] as KillPoint;
      if (!RUNNING_POINTS.includes(p)) return 'random';
      this.cursor++;
      return p;
    }
    const w = Object.fromEntries(RUNNING_POINTS.map((p) => [p, this.weights[p]]));
    return this.rng.weighted(w as Record<KillPoint, number>);
  }
}

/** The writer child process. */
class Writer {
  private readonly child: ChildProcess;
  private listeners: ((ev: WriterEvent) => void)[] = [];
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;

  constructor(readonly logFile: string) {
    this.child = fork(join(HERE, 'crash-writer.js'), [logFile], {
      execArgv: [], // not the test runner's flags
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    trackChild(this.child);
    this.child.on('message', (ev: WriterEvent) => {
      for (const l of [...this.listeners]) l(ev);
    });
    this.ready = this.next((e) => e.ev === 'ready').then(() => {});
    this.exited = new Promise((r) => this.child.once('exit', () => r()));
  }

  /** The next event matching `pred`. */
  next<E extends WriterEvent>(pred: (e: WriterEvent) => e is E): Promise<E>;
  next(pred: (e: WriterEvent) => boolean): Promise<WriterEvent>;
  next(pred: (e: WriterEvent) => boolean): Promise<WriterEvent> {
    return new Promise((resolve) => {
      const l = (ev: WriterEvent) => {
        if (!pred(ev)) return;
        this.listeners = this.listeners.filter((x) => x !== l);
        resolve(ev);
      };
      this.listeners.push(l);
    });
  }

  send(cmd: WriterCommand): void {
    this.child.send(cmd);
  }

  async exit(): Promise<void> {
    if (this.child.exitCode === null) this.child.send({ cmd: 'exit' } satisfies WriterCommand);
    await this.exited;
  }
}

type Idle = Extract<WriterEvent, { ev: 'idle' }>;

export async function runCrashCampaign(opts: CrashCampaignOptions): Promise<CrashSummary> {
  const t0 = Date.now();
  const seed = opts.seed ?? randomSeed();
  const rng = new Rng(seed);
  const say = opts.log ?? (() => {});
  const snapshot = opts.backend === 'event' && opts.snapshot === true;
  const weights = { ...defaultWeights(opts.backend, snapshot), ...opts.weights };
  const killsPerEpoch = opts.killsPerEpoch ?? (opts.backend === 'event' ? 100 : 250);
  const stopOnViolation = opts.stopOnViolation ?? true;
  const user = makeUser(rng);
  const secrets = [user.password, user.hash, TOKEN];
  const summary: CrashSummary = {
    backend: opts.backend + (opts.backend === 'event' ? (snapshot ? '+snapshot' : '') : ''),
    seed,
    kills: 0,
    killsByPoint: {},
    missedAims: {},
    syscallsHit: {},
    restarts: 0,
    gracefulStops: 0,
    meanBatch: null,
    epochs: 0,
    checks: 0,
    attempts: 0,
    acked: 0,
    ackedByOp: { create: 0, update: 0, delete: 0 },
    uncertain: 0,
    uncertainLanded: 0,
    modelsChecked: 0,
    idsChecked: 0,
    violations: [],
    problems: [],
    durationMs: 0,
  };
  const count = (rec: Record<string, number>, k: string) => {
    rec[k] = (rec[k] ?? 0) + 1;
  };
  /** How long the last start took until ready (startup kills aim within it). */
  let readyMs = 400;
  const chooser = new PointChooser(rng, weights, opts.schedule ?? 'random');
  const failed = () =>
    stopOnViolation && (summary.violations.length > 0 || summary.problems.length > 0);

  while (summary.kills < opts.kills && !failed()) {
    summary.epochs++;
    const epochKills = Math.min(killsPerEpoch, opts.kills - summary.kills);
    const { dir, cleanup } = tempDir('aimm-crash-');
    const peer: HatPeer | null =
      opts.backend === 'event' ? await startHatPeer({ serverToken: TOKEN, flushDelayMs: 5 }) : null;
    const hooks = peer === null ? null : new PeerHooks(peer, `aimm-store/${NAME}`);
    const catchUp =
      opts.catchUp === 'auto' || opts.catchUp === 'server'
        ? opts.catchUp
        : summary.epochs % 2 === 1
          ? 'auto'
          : 'server';
    const configFile = writeConfig(
      join(dir, 'config.json'),
      daemonConfig(opts.backend, snapshot, dir, peer, user.hash, catchUp),
    );
    const logFile = join(dir, 'writes.log');
    const writer = new Writer(logFile);
    await writer.ready;
    const checker = new CrashChecker();
    let logOffset = 0;
    let noise = 0;
    let recoveryQueries = 2;
    let daemon: Daemon | null = null;

    const ingest = () => {
      const r = readLog(logFile, logOffset);
      logOffset = r.offset;
      checker.ingest(r.entries);
    };
    const note = (d: Daemon) => {
      for (const p of d.problems)
        summary.problems.push(`${p}\nlast log lines:\n${d.recent.slice(-15).join('\n')}`);
      d.problems.length = 0;
    };
    const spawnDaemon = () => {
      summary.restarts++;
      return new Daemon(configFile, { secrets });
    };
    /** Waits for the daemon to die after a kill (a hang guard; SIGKILL cannot be ignored). */
    const reap = async (d: Daemon) => {
      const r = await Promise.race([d.exited, deadline(15_000, null)]);
      if (r === null) summary.problems.push(`daemon ${d.pid} did not die after SIGKILL`);
      note(d);
    };
    const killed = (point: KillPoint) => {
      summary.kills++;
      count(summary.killsByPoint, point);
    };

    /** Starts the daemon (maybe killing it during startup or catch-up); true once it is ready. */
    const start = async (): Promise<boolean> => {
      const point = chooser.start();
      if (point === 'catch-up' && peer !== null && hooks !== null) {
        // Unrelated traffic in Hat while the daemon is down: recovery has pages to read.
        const n = rng.int(40, 300);
        const events = [];
        for (let i = 0; i < n; i++)
          events.push({
            type: ['campaign', 'noise', String(++noise)],
            sourceTimestamp: null,
            payload: {
              kind: 'json' as const,
              text: JSON.stringify({ n: noise, pad: 'x'.repeat(rng.int(0, 400)) }),
            },
          });
        peer.register(events);
      }
      const d = spawnDaemon();
      daemon = d;
      const spawnedAt = Date.now();
      let readySeen = false;
      const queriesBefore = hooks?.queries ?? 0;
      if (point === 'catch-up' && hooks !== null) {
        // At one of the queries a recovery takes (as many as the last one took).
        void hooks.arm('query', rng.int(1, Math.max(1, recoveryQueries)), 'dropped', () =>
          d.kill(),
        );
      } else if (point === 'startup') {
        const delay = rng.int(0, Math.round(readyMs * 0.9));
        void sleep(delay).then(() => {
          if (!readySeen && d.alive) d.kill();
        });
      }
      const ok = await d.ready();
      readySeen = true;
      hooks?.disarm();
      if (!ok || !d.alive) {
        // Killed on purpose, or it exited on its own (a crash: reported by reap as a problem).
        await reap(d);
        daemon = null;
        if (d.expectedExit) killed(point ?? 'startup');
        return false;
      }
      if (point !== null) {
        count(summary.missedAims, point);
        chooser.missed();
      }
      readyMs = Date.now() - spawnedAt;
      if (hooks !== null) recoveryQueries = hooks.queries - queriesBefore;
      return true;
    };

    /** Sets the writer writing to `d`, from the models the checker knows to be live. */
    const runWriter = async (d: Daemon) => {
      writer.send({
        cmd: 'run',
        url: `ws://127.0.0.1:${await d.port('juggler')}/`,
        username: user.username,
        password: user.password,
        clients: opts.clients ?? 3,
        perClient: opts.perClient ?? 8,
        targetModels: opts.targetModels ?? 60,
        seed: rng.int(0, 2 ** 31),
        live: checker.baseline().live,
      });
    };

    const observe = async (d: Daemon): Promise<CheckReport> => {
      const port = await d.port('juggler');
      const client = await JugglerClient.connect(`ws://127.0.0.1:${port}/`, {
        username: user.username,
        password: user.password,
        pingDelay: null,
      });
      try {
        // Without a snapshot the default start (`latest_then_history`) serves lower bounds, marked
        // provisional, until the history is counted: the checker compares exact revisions.
        let metas = await client.list();
        const deadline = Date.now() + 60_000;
        while (metas.some((m) => m.revisionProvisional === true)) {
          if (Date.now() > deadline) throw new Error('revisions still provisional after 60 s');
          await new Promise((res) => setTimeout(res, 20));
          metas = await client.list();
        }
        const observed: ObservedModel[] = [];
        for (const m of metas) {
          const model = await client.get(m.instanceId);
          observed.push({
            instanceId: m.instanceId,
            modelType: m.modelType,
            revision: m.revision,
            sha256: m.sha256,
            size: m.size,
            bytesSha256: sha256(model.instance),
            bytesSize: model.instance.length,
          });
        }
        return checker.check(observed);
      } finally {
        await client.close();
      }
    };

    try {
      let epochDone = 0;
      while (epochDone < epochKills && !failed()) {
        const before = summary.kills;
        if (!(await start())) {
          epochDone += summary.kills - before;
          if (summary.kills === before) break; // the daemon failed to start: reported as a problem
          continue;
        }
        const d = daemon as unknown as Daemon;
        const http = await d.port('http');
        if (http !== null) {
          const rz = await httpGet(http, '/readyz').catch((e: Error) => ({
            status: 0,
            body: e.message,
          }));
          if (rz.status !== 200)
            summary.problems.push(`/readyz after ready: ${rz.status} ${rz.body}`);
        }
        const report = await observe(d);
        if (report.violations.length > 0)
          say(
            `violations after restart ${summary.restarts}: ${JSON.stringify(report.violations.slice(0, 5))}`,
          );
        if (failed()) break;

        // Writes flow; then a kill at a running point.
        const idle = writer.next((e): e is Idle => e.ev === 'idle');
        const writing = writer.next((e) => e.ev === 'writing');
        await runWriter(d);
        const flowing = await Promise.race([writing.then(() => true), idle.then(() => false)]);
        if (!flowing)
          summary.problems.push(`the writer could not write: ${JSON.stringify(await idle)}`);
        const point = flowing ? chooser.running() : 'random';
        await aimAndKill(point, d);
        killed(point);
        await reap(d);
        const end = await idle;
        if (end.ev === 'idle' && !/clos|ECONNRESET|socket|connect/i.test(end.reason))
          say(`writer run ended: ${end.reason}`);
        ingest();
        daemon = null;
        epochDone++;
        if (summary.kills % 25 === 0) say(progressLine(summary, checker, t0));
      }

      // End of epoch: a clean run, a graceful stop, one more restart and check.
      if (!failed() && (await startPlain())) {
        const d = daemon as unknown as Daemon;
        await observe(d);
        const idle = writer.next((e): e is Idle => e.ev === 'idle');
        const writing = writer.next((e) => e.ev === 'writing');
        await runWriter(d);
        await Promise.race([writing, idle]);
        await sleep(rng.int(20, 200));
        writer.send({ cmd: 'stop' });
        await idle;
        ingest();
        const http = await d.port('http');
        if (http !== null) {
          const m = (await httpGet(http, '/metrics')).body;
          const [writes, batches] =
            opts.backend === 'event'
              ? [
                  metricSum(m, 'aimm_store_event_register_events_total'),
                  metricSum(m, 'aimm_store_event_register_requests_total'),
                ]
              : [
                  metricSum(m, 'aimm_store_sqlite_writes_total'),
                  metricSum(m, 'aimm_store_sqlite_commits_total'),
                ];
          if (batches > 0) summary.meanBatch = Math.round((writes / batches) * 10) / 10;
        }
        const stopped = await d.stop('SIGTERM');
        summary.gracefulStops++;
        if (stopped.code !== 0) summary.problems.push(`graceful stop exited ${stopped.code}`);
        note(d);
        daemon = null;
        if (await startPlain()) {
          const d2 = daemon as unknown as Daemon;
          await observe(d2);
          await d2.stop('SIGTERM');
          note(d2);
        }
        daemon = null;
      }
    } finally {
      if (daemon !== null) {
        (daemon as Daemon).kill();
        await (daemon as Daemon).exited;
      }
      await writer.exit();
      await peer?.close();
      summary.checks += checker.stats.checks;
      summary.attempts += checker.stats.attempts;
      summary.acked += checker.stats.acked;
      for (const [k, v] of Object.entries(checker.stats.ackedByOp))
        summary.ackedByOp[k] = (summary.ackedByOp[k] ?? 0) + v;
      summary.uncertain += checker.stats.uncertain;
      summary.uncertainLanded += checker.stats.uncertainLanded;
      summary.modelsChecked += checker.stats.modelsChecked;
      summary.idsChecked += checker.stats.idsChecked;
      summary.violations.push(...checker.violations);
      if (!failed()) cleanup();
      else say(`kept the epoch's files for inspection: ${dir}`);
    }

    /** Starts without any kill; true when ready. */
    async function startPlain(): Promise<boolean> {
      const d = spawnDaemon();
      daemon = d;
      if (await d.ready()) return true;
      note(d);
      daemon = null;
      return false;
    }

    async function aimAndKill(point: KillPoint, d: Daemon): Promise<void> {
      const random = async () => {
        await sleep(rng.int(0, opts.maxRandomDelayMs ?? 300));
        d.kill();
      };
      if (point === 'commit' || point === 'snapshot') {
        await sleep(rng.int(0, 30));
        d.expectedExit = true;
        const r = await killInSyscall(
          d.pid,
          [SYSCALLS.pwrite64, SYSCALLS.fsync, SYSCALLS.fdatasync],
          3000,
        );
        if (r.hit !== null) count(summary.syscallsHit, SYSCALL_NAMES[r.hit] ?? String(r.hit));
        else {
          count(summary.missedAims, point);
          d.kill();
        }
        return;
      }
      if (point.startsWith('register-') && hooks !== null) {
        const moment = point.slice('register-'.length) as 'dropped' | 'landed' | 'response';
        const fired = hooks.arm('register', rng.int(1, 8), moment, () => d.kill());
        const r = await Promise.race([fired, deadline(3000, null)]);
        if (r === null) {
          hooks.disarm();
          count(summary.missedAims, point);
          d.kill();
        }
        return;
      }
      await random();
    }
  }
  summary.durationMs = Date.now() - t0;
  return summary;
}

function progressLine(s: CrashSummary, c: CrashChecker, t0: number): string {
  return `${s.backend}: ${s.kills} kills, ${s.acked + c.stats.acked} acked writes, ${s.violations.length + c.violations.length} violations, ${Math.round((Date.now() - t0) / 1000)} s`;
}

function daemonConfig(
  backend: CrashBackend,
  snapshot: boolean,
  dir: string,
  peer: HatPeer | null,
  passwordHash: string,
  catchUp: 'auto' | 'server',
): Record<string, unknown> {
  const control = [
    {
      module: 'aimm-store/controls/juggler',
      server: { host: '127.0.0.1', port: 0 },
      users: [{ username: 'campaign', password: passwordHash }],
    },
    { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } },
  ];
  const base = { name: NAME, control, log: { level: 'info' } };
  if (backend === 'sqlite')
    return {
      ...base,
      backend: { module: 'aimm-store/backends/sqlite', path: join(dir, 'data', 'models.db') },
    };
  if (backend === 'memory')
    return { ...base, backend: { module: join(SUPPORT, 'memory-backend.js') } };
  return {
    ...base,
    backend: {
      module: 'aimm-store/backends/event',
      model_prefix: PREFIX,
      catch_up_page_size: 32,
      catch_up: catchUp,
      reconnect: { min_delay_ms: 20, max_delay_ms: 200 },
      ...(snapshot ? { snapshot: { path: join(dir, 'data', 'snapshot.db') } } : {}),
    },
    hat: { eventer_server: { host: peer?.host, port: peer?.port }, client_token: TOKEN },
  };
}
