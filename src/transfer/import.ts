/**
 * `import`: the models of an archive into a backend. Each model is checked (size, SHA-256) before
 * anything is written for it and placed with {@link ModelPlacer} (idempotent, never overwriting),
 * so an import is all-or-nothing per model and a re-run completes an interrupted one. Placed
 * models are checked in the target batch by batch ({@link BatchVerifier}); nothing is kept per
 * model, so memory does not grow with the archive's size. A damaged
 * archive stops the import at the damaged entry (the models before it are in) with its name.
 */
import type { Backend } from '../backend/types.js';
import { ArchiveReader } from './archive.js';
import { type IdMode, ModelPlacer } from './placer.js';
import { emptyReport, type ProgressFn, type TransferReport } from './report.js';
import { BatchVerifier } from './verify.js';
import { DEFAULT_WINDOW, Window } from './window.js';

export async function importModels(
  target: Backend,
  path: string,
  mode: IdMode,
  progress: ProgressFn = () => {},
): Promise<TransferReport> {
  const reader = await ArchiveReader.open(path);
  const report = emptyReport();
  const verifier = new BatchVerifier(target, report);
  try {
    const placer = await ModelPlacer.create(target, mode);
    const window = new Window(DEFAULT_WINDOW.items, DEFAULT_WINDOW.bytes);
    let done = 0;
    try {
      for await (const { meta, instance } of reader.models()) {
        await verifier.room();
        await window.start(
          instance.length,
          verifier.track(async (record) => {
            const p = await placer.place(meta.instance_id, meta.model_type, instance, meta.sha256);
            if (p.outcome === 'conflict') {
              report.conflicts.push({ instance_id: meta.instance_id, message: p.message });
            } else {
              report[p.outcome]++;
              if (p.outcome === 'created') report.bytes += instance.length;
              record(p.targetId, meta.sha256);
              if (p.targetId !== meta.instance_id)
                report.remapped[String(meta.instance_id)] = p.targetId;
            }
            done++;
            progress(done, report.bytes, reader.manifest.models);
          }),
        );
      }
    } finally {
      // Models already started finish (or fail) before the error of a damaged entry surfaces.
      await window.drain().catch(() => {});
    }
    await window.drain();
  } finally {
    await reader.close();
  }
  await verifier.finish();
  return report;
}
