/**
 * The crash campaign's judge. It replays the writer's append-only log (see crash-log.ts) and, after
 * every restart, compares what the daemon serves (list + get of every model) with it.
 *
 * What is known for sure about an id ("confirmed") is its last acknowledged write — or, after a
 * check, what the restarted daemon served (a later crash may not take that back either). The writer
 * keeps at most one write per id in flight and makes every update and delete a compare-and-set on
 * the confirmed revision, so an unacknowledged ("uncertain") write can only have landed as exactly
 * revision confirmed+1 with its own bytes (or, for a delete, as the model's absence). Every write's
 * bytes are unique, so a model that appears out of nowhere can only be an uncertain create.
 *
 * Asserted on every acknowledgement:
 * - a create's id was never seen before (live, deleted or served) and is above every id seen
 *   before the current run of the daemon; its revision is 1;
 * - an update or delete lands on exactly the expected revision + 1;
 * - the daemon reports the sha256 of the bytes that were sent.
 * Asserted after every restart, for every id ever acknowledged:
 * - a deleted model stays deleted;
 * - a live model is present, at its confirmed revision with its confirmed bytes, or at confirmed+1
 *   with the bytes of the uncertain update (or absent after an uncertain delete) — never lower
 *   (a revision going backwards), never other bytes;
 * - a served model's bytes hash to the sha256 and size its metadata reports;
 * - every model the daemon serves is explained: acknowledged, or an uncertain create (revision 1,
 *   its bytes, an id above every id seen before that run).
 */
import type { LogEntry, WriteOp } from './crash-log.js';

export interface ObservedModel {
  instanceId: number;
  modelType: string;
  revision: number;
  /** sha256 from the model's metadata (list). */
  sha256: string;
  size: number;
  /** sha256 and length of the bytes `get` returned. */
  bytesSha256: string;
  bytesSize: number;
}

export type ViolationKind =
  | 'lost'
  | 'resurrected'
  | 'wrong_bytes'
  | 'revision_backwards'
  | 'unexplained_revision'
  | 'phantom'
  | 'id_reused'
  | 'bad_ack'
  | 'corrupt_read'
  | 'error_response';

export interface Violation {
  kind: ViolationKind;
  id: number | null;
  detail: string;
}

interface Confirmed {
  revision: number;
  sha256: string | null;
  modelType: string | null;
  deleted: boolean;
}

interface Attempt {
  s: number;
  op: WriteOp;
  id?: number;
  er?: number;
  h?: string;
  mt?: string;
  state: 'pending' | 'acked' | 'failed';
}

export interface CheckReport {
  /** Models the daemon served and that were compared. */
  modelsChecked: number;
  /** Ids whose confirmed state (live or deleted) was verified. */
  idsChecked: number;
  uncertain: number;
  uncertainLanded: number;
  violations: Violation[];
}

export class CrashChecker {
  readonly confirmed = new Map<number, Confirmed>();
  readonly violations: Violation[] = [];
  /** The highest id ever seen (acknowledged or served), deleted ones included. */
  maxId = 0;
  /** `maxId` when the current run of the daemon started (new ids must be above it). */
  private runStartMaxId = 0;
  private readonly attempts = new Map<number, Attempt>();
  readonly stats = {
    attempts: 0,
    acked: 0,
    ackedByOp: { create: 0, update: 0, delete: 0 } as Record<WriteOp, number>,
    failed: 0,
    checks: 0,
    modelsChecked: 0,
    idsChecked: 0,
    uncertain: 0,
    uncertainLanded: 0,
  };

  private violate(kind: ViolationKind, id: number | null, detail: string): void {
    this.violations.push({ kind, id, detail });
  }

  /** Applies log entries (in file order). */
  ingest(entries: readonly LogEntry[]): void {
    for (const e of entries) {
      if (e.t === 'a') {
        this.stats.attempts++;
        this.attempts.set(e.s, { ...e, state: 'pending' });
        continue;
      }
      const a = this.attempts.get(e.s);
      if (a === undefined) {
        this.violate('bad_ack', null, `log entry for unknown attempt ${e.s}`);
        continue;
      }
      if (e.t === 'f') {
        a.state = 'failed';
        this.stats.failed++;
        this.violate('error_response', a.id ?? null, `${a.op} #${e.s} failed: ${e.e}`);
        continue;
      }
      a.state = 'acked';
      this.stats.acked++;
      this.stats.ackedByOp[a.op]++;
      this.applyAck(a, e);
    }
  }

  private applyAck(a: Attempt, k: Extract<LogEntry, { t: 'k' }>): void {
    const where = `${a.op} #${a.s} of id ${k.id}`;
    if (a.op !== 'delete' && k.h !== a.h)
      this.violate('bad_ack', k.id, `${where}: daemon reported sha256 ${k.h}, sent ${a.h}`);
    if (a.op !== 'delete' && k.mt !== a.mt)
      this.violate('bad_ack', k.id, `${where}: daemon reported type ${k.mt}, sent ${a.mt}`);
    if (a.op === 'create') {
      if (this.confirmed.has(k.id))
        this.violate('id_reused', k.id, `${where}: the id was already used`);
      else if (k.id <= this.runStartMaxId)
        this.violate(
          'id_reused',
          k.id,
          `${where}: not above ${this.runStartMaxId}, the highest id seen before this run`,
        );
      if (k.r !== 1) this.violate('bad_ack', k.id, `${where}: revision ${k.r}, expected 1`);
      this.confirmed.set(k.id, {
        revision: k.r,
        sha256: k.h ?? null,
        modelType: k.mt ?? null,
        deleted: false,
      });
      this.maxId = Math.max(this.maxId, k.id);
      return;
    }
    const c = this.confirmed.get(k.id);
    if (a.id !== k.id) this.violate('bad_ack', k.id, `${where}: sent for id ${a.id}`);
    if (c === undefined || c.deleted || c.revision !== a.er) {
      this.violate(
        'bad_ack',
        k.id,
        `${where}: acknowledged on expected revision ${a.er}, but the confirmed state is ${JSON.stringify(c)}`,
      );
    }
    const expected = (a.er ?? 0) + 1;
    if (k.r !== expected)
      this.violate('bad_ack', k.id, `${where}: revision ${k.r}, expected ${expected}`);
    this.confirmed.set(k.id, {
      revision: k.r,
      sha256: a.op === 'delete' ? null : (k.h ?? null),
      modelType: a.op === 'delete' ? null : (k.mt ?? null),
      deleted: a.op === 'delete',
    });
  }

  /**
   * Compares what a freshly restarted daemon serves with everything confirmed; resolves the
   * uncertain writes (landed or not) and starts a new run.
   */
  check(observed: readonly ObservedModel[]): CheckReport {
    const before = this.violations.length;
    const byId = new Map<number, ObservedModel>();
    for (const o of observed) {
      if (byId.has(o.instanceId)) this.violate('corrupt_read', o.instanceId, 'listed twice');
      byId.set(o.instanceId, o);
      if (o.bytesSha256 !== o.sha256 || o.bytesSize !== o.size)
        this.violate(
          'corrupt_read',
          o.instanceId,
          `bytes hash to ${o.bytesSha256} (${o.bytesSize} B), metadata says ${o.sha256} (${o.size} B)`,
        );
    }
    const uncertainById = new Map<number, Attempt>();
    const uncertainCreates = new Map<string, Attempt>();
    let uncertain = 0;
    for (const a of this.attempts.values()) {
      if (a.state === 'acked') continue;
      uncertain++;
      if (a.op === 'create') uncertainCreates.set(a.h ?? '', a);
      else if (a.id !== undefined) uncertainById.set(a.id, a);
    }
    let landed = 0;
    let idsChecked = 0;

    for (const [id, c] of this.confirmed) {
      idsChecked++;
      const o = byId.get(id);
      const u = uncertainById.get(id);
      byId.delete(id);
      if (c.deleted) {
        if (o !== undefined)
          this.violate(
            'resurrected',
            id,
            `deleted at revision ${c.revision}, served at ${o.revision}`,
          );
        continue;
      }
      if (o === undefined) {
        if (u?.op === 'delete' && u.er === c.revision) {
          landed++;
          this.confirmed.set(id, {
            revision: c.revision + 1,
            sha256: null,
            modelType: null,
            deleted: true,
          });
        } else {
          this.violate('lost', id, `confirmed at revision ${c.revision} (${c.sha256}), not served`);
        }
        continue;
      }
      if (o.revision === c.revision) {
        if (o.sha256 !== c.sha256 || o.modelType !== c.modelType)
          this.violate(
            'wrong_bytes',
            id,
            `revision ${c.revision}: ${o.sha256} (${o.modelType}), confirmed ${c.sha256} (${c.modelType})`,
          );
      } else if (o.revision === c.revision + 1 && u?.op === 'update' && u.er === c.revision) {
        if (o.sha256 !== u.h || o.modelType !== u.mt)
          this.violate(
            'wrong_bytes',
            id,
            `revision ${o.revision}: ${o.sha256} (${o.modelType}), the uncertain update sent ${u.h} (${u.mt})`,
          );
        else landed++;
      } else if (o.revision < c.revision) {
        this.violate(
          'revision_backwards',
          id,
          `served at revision ${o.revision}, confirmed ${c.revision}`,
        );
      } else {
        this.violate(
          'unexplained_revision',
          id,
          `served at revision ${o.revision}, confirmed ${c.revision}, uncertain write: ${u === undefined ? 'none' : `${u.op} on ${u.er}`}`,
        );
      }
      this.confirmed.set(id, {
        revision: o.revision,
        sha256: o.sha256,
        modelType: o.modelType,
        deleted: false,
      });
    }

    for (const o of byId.values()) {
      const u = uncertainCreates.get(o.sha256);
      if (
        u !== undefined &&
        o.revision === 1 &&
        o.modelType === u.mt &&
        o.instanceId > this.runStartMaxId
      ) {
        uncertainCreates.delete(o.sha256);
        landed++;
      } else {
        this.violate(
          'phantom',
          o.instanceId,
          `served at revision ${o.revision} (${o.sha256}) but never acknowledged${u === undefined ? '' : ' (an uncertain create matches its bytes but not its revision or id)'}`,
        );
      }
      this.confirmed.set(o.instanceId, {
        revision: o.revision,
        sha256: o.sha256,
        modelType: o.modelType,
        deleted: false,
      });
    }

    for (const id of this.confirmed.keys()) this.maxId = Math.max(this.maxId, id);
    this.runStartMaxId = this.maxId;
    this.attempts.clear();
    this.stats.checks++;
    this.stats.modelsChecked += observed.length;
    this.stats.idsChecked += idsChecked;
    this.stats.uncertain += uncertain;
    this.stats.uncertainLanded += landed;
    return {
      modelsChecked: observed.length,
      idsChecked,
      uncertain,
      uncertainLanded: landed,
      violations: this.violations.slice(before),
    };
  }

  /** What the writer may build on: live ids with their confirmed revisions. */
  baseline(): { live: [number, number][]; maxId: number } {
    const live: [number, number][] = [];
    for (const [id, c] of this.confirmed) if (!c.deleted) live.push([id, c.revision]);
    return { live, maxId: this.maxId };
  }
}
