/** What `export`, `import` and `migrate` did, as they report it (one JSON line at the end). */
export interface TransferReport {
  /** Models written to the target (or the archive, for export). */
  created: number;
  /** Models the target already had (same type and bytes): skipped. */
  present: number;
  /** Models skipped because the target holds other bytes under the id (nothing written). */
  conflicts: { instance_id: number; message: string }[];
  /** Models gone from the source between its listing and their read (deleted meanwhile). */
  vanished: number;
  /** Instance bytes moved. */
  bytes: number;
  /** After the run: models whose bytes in the target were checked against the source's SHA-256. */
  verified: number;
  /** Models whose target bytes did not match at the end (changed meanwhile by someone else). */
  mismatched: { instance_id: number; message: string }[];
  /** Source id → target id, where they differ (`--remap`). */
  remapped: Record<string, number>;
}

export function emptyReport(): TransferReport {
  return {
    created: 0,
    present: 0,
    conflicts: [],
    vanished: 0,
    bytes: 0,
    verified: 0,
    mismatched: [],
    remapped: {},
  };
}

/** Progress callback: models done so far, their bytes, and the total expected (null: unknown). */
export type ProgressFn = (done: number, bytes: number, total: number | null) => void;
