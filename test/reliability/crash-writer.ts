/**
 * The crash campaign's writer: a child process (forked, IPC) that drives concurrent creates,
 * updates and deletes through the daemon's real interface (the Juggler client, several
 * connections, several writes in flight on each) and logs every attempt and every
 * acknowledgement to an append-only file before counting it (crash-log.ts).
 *
 * Rules that make the log checkable (crash-checker.ts): at most one write per id in flight; every
 * update and delete is a compare-and-set on the revision the writer was told or acknowledged; every
 * write's bytes are unique (a sequence number and random bytes); after an error response or a lost
 * connection the id is not written again in this run (its state is uncertain until the next check).
 *
 * Usage: `node crash-writer.js LOG_FILE` with an IPC channel; commands in crash-log.ts.
 */
import { RequestFailedError } from '../../src/client/connection.js';
import { JugglerClient } from '../../src/client/index.js';
import { AppendLog, type WriteOp, type WriterCommand, type WriterEvent } from './crash-log.js';
import { Rng, sha256 } from './support.js';

const TYPES = ['plugins.sklearn.SVC', 'text.Model', 'nn.Ünïcødé/模型', 'a "quoted" \\ type\n'];

type RunCommand = Extract<WriterCommand, { cmd: 'run' }>;

function send(ev: WriterEvent): void {
  process.send?.(ev);
}

class Run {
  private readonly rng: Rng;
  /** Live ids not being written, with their revisions. */
  private readonly free = new Map<number, number>();
  private liveCount: number;
  private stopping = false;
  private firstAck = true;
  attempts = 0;
  acked = 0;
  failed = 0;
  reason = 'stopped';

  constructor(
    private readonly cmd: RunCommand,
    private readonly log: AppendLog,
    private readonly seq: { next: number },
  ) {
    this.rng = new Rng(cmd.seed);
    for (const [id, rev] of cmd.live) this.free.set(id, rev);
    this.liveCount = this.free.size;
  }

  stop(): void {
    this.stopping = true;
  }

  async execute(): Promise<void> {
    const clients: JugglerClient[] = [];
    try {
      for (let i = 0; i < this.cmd.clients; i++) {
        clients.push(
          await JugglerClient.connect(this.cmd.url, {
            ...(this.cmd.username === null
              ? {}
              : { username: this.cmd.username, password: this.cmd.password ?? '' }),
            connectTimeout: 5000,
            pingDelay: null,
          }),
        );
      }
      const workers: Promise<void>[] = [];
      for (const c of clients)
        for (let j = 0; j < this.cmd.perClient; j++) workers.push(this.worker(c));
      await Promise.all(workers);
    } catch (err) {
      this.reason = (err as Error).message;
    } finally {
      await Promise.all(clients.map((c) => c.close().catch(() => {})));
    }
  }

  private chooseOp(): WriteOp {
    const target = this.cmd.targetModels;
    if (this.free.size === 0) return 'create';
    const live = this.liveCount;
    const pCreate = live < target / 2 ? 0.6 : live > target * 1.5 ? 0.05 : 0.25;
    const pDelete = live > target ? 0.3 : 0.1;
    const x = this.rng.next();
    if (x < pCreate) return 'create';
    if (x < pCreate + pDelete) return 'delete';
    return 'update';
  }

  private takeFree(): [number, number] {
    const i = this.rng.int(0, this.free.size - 1);
    let k = 0;
    for (const entry of this.free) {
      if (k++ === i) {
        this.free.delete(entry[0]);
        return entry;
      }
    }
    throw new Error('no free id');
  }

  private payload(s: number): Buffer {
    const r = this.rng.next();
    const size =
      r < 0.9
        ? this.rng.int(0, 2048)
        : r < 0.98
          ? this.rng.int(2048, 65536)
          : this.rng.int(65536, 524288);
    const b = this.rng.bytes(Math.max(size, 16));
    b.writeDoubleLE(s, 0); // unique per write, whatever the random bytes
    return size < 16 ? b.subarray(0, 16) : b;
  }

  private async worker(client: JugglerClient): Promise<void> {
    while (!this.stopping) {
      const op = this.chooseOp();
      const s = this.seq.next++;
      const modelType = this.rng.pick(TYPES);
      let id: number | undefined;
      let er: number | undefined;
      if (op !== 'create') [id, er] = this.takeFree();
      const bytes = op === 'delete' ? null : this.payload(s);
      const h = bytes === null ? undefined : sha256(bytes);
      this.log.append({
        t: 'a',
        s,
        op,
        ...(id === undefined ? {} : { id, er }),
        ...(bytes === null ? {} : { h, n: bytes.length, mt: modelType }),
      });
      this.attempts++;
      if (op === 'create') this.liveCount++;
      try {
        if (op === 'delete') {
          const r = await client.remove(id as number, { expectedRevision: er as number });
          this.log.append({ t: 'k', s, id: r.instanceId, r: r.revision, ack: r.ack });
          this.liveCount--;
        } else {
          const meta = await client.put(
            modelType,
            bytes as Buffer,
            op === 'update' ? { instanceId: id as number, expectedRevision: er as number } : {},
          );
          this.log.append({
            t: 'k',
            s,
            id: meta.instanceId,
            r: meta.revision,
            h: meta.sha256,
            mt: meta.modelType,
            ack: meta.ack,
          });
          this.free.set(meta.instanceId, meta.revision);
        }
        this.acked++;
        if (this.firstAck) {
          this.firstAck = false;
          send({ ev: 'writing' });
        } else if (this.acked % 200 === 0) {
          send({ ev: 'progress', attempts: this.attempts, acked: this.acked });
        }
      } catch (err) {
        if (err instanceof RequestFailedError) {
          this.log.append({ t: 'f', s, e: err.message.slice(0, 300) });
          this.failed++;
          continue; // the id stays out of `free`: uncertain until the next check
        }
        // The connection is gone (the daemon was killed): this write is uncertain.
        this.reason = (err as Error).message;
        return;
      }
    }
  }
}

function main(): void {
  const logFile = process.argv[2];
  if (logFile === undefined || process.send === undefined) {
    process.stderr.write('usage: crash-writer.js LOG_FILE (forked with an IPC channel)\n');
    process.exit(2);
  }
  const log = new AppendLog(logFile);
  const seq = { next: 1 };
  let current: Run | null = null;
  process.on('message', (cmd: WriterCommand) => {
    if (cmd.cmd === 'exit') {
      log.close();
      process.exit(0);
    } else if (cmd.cmd === 'stop') {
      current?.stop();
    } else if (cmd.cmd === 'run') {
      if (current !== null) return;
      const run = new Run(cmd, log, seq);
      current = run;
      void run.execute().then(() => {
        current = null;
        send({
          ev: 'idle',
          attempts: run.attempts,
          acked: run.acked,
          failed: run.failed,
          reason: run.reason,
        });
      });
    }
  });
  send({ ev: 'ready' });
}

main();
