/**
 * Where applied model state lives: metadata always in memory (see state.ts), instance bytes either in
 * memory (no snapshot) or in the SQLite snapshot. A store applies one commit atomically.
 */
import type { EventRef } from './event-ref.js';

/** Everything known about one instance id (also for deleted ones: ids are never reused). */
export interface ModelEntry {
  instanceId: number;
  /** The last model type (kept for tombstones). */
  modelType: string;
  /** Number of events applied for this id (create = 1, each update or tombstone +1). */
  revision: number;
  size: number;
  sha256: string;
  /** ISO-8601 server timestamp of the last event. */
  updated: string;
  deleted: boolean;
  /** The last applied event of this id. */
  event: EventRef;
}

export interface StoreCommit {
  /** New state of the ids that changed, with the bytes for live models (null for tombstones). */
  upserts: { entry: ModelEntry; instance: Uint8Array | null }[];
  /** Highest applied (or scanned) event, or null to leave it. */
  checkpoint: EventRef | null;
  /** Highest instance id known. */
  highWater: number;
  /**
   * Sets (true) or clears (false) the "revisions provisional" mark of `full_replay:
   * latest_then_history` (a snapshot keeps it, so a restart before completion replays again).
   */
  revisionsProvisional?: boolean;
}

export interface ModelStore {
  /** Applies one commit atomically (throws and changes nothing on failure). */
  commit(commit: StoreCommit): void;
  /** Bytes of a live model, or null. */
  readInstance(instanceId: number): Uint8Array | null;
  /** Bytes `start` to `end` (exclusive) of a live model (a copy), or null. */
  readRange(instanceId: number, start: number, end: number): Uint8Array | null;
  /** Forgets every model and the checkpoint (keeps the high-water mark). */
  clearModels(): void;
}

/** The store without a snapshot: bytes in a Map. */
export class MemoryStore implements ModelStore {
  private readonly blobs = new Map<number, Uint8Array>();

  commit(commit: StoreCommit): void {
    for (const { entry, instance } of commit.upserts) {
      if (instance === null || entry.deleted) this.blobs.delete(entry.instanceId);
      else this.blobs.set(entry.instanceId, instance);
    }
  }

  readInstance(instanceId: number): Uint8Array | null {
    return this.blobs.get(instanceId) ?? null;
  }

  readRange(instanceId: number, start: number, end: number): Uint8Array | null {
    const b = this.blobs.get(instanceId);
    return b === undefined ? null : Uint8Array.prototype.slice.call(b, start, end);
  }

  clearModels(): void {
    this.blobs.clear();
  }
}
