/**
 * `migrate`: every model of one backend into another, streamed model by model (one in memory at a
 * time) with {@link ModelPlacer}: idempotent and never overwriting, so running it again after an
 * interruption (even a kill -9) resumes it, and the end state equals an uninterrupted run's. The
 * source is listed a page at a time (`listModels`, where the backend has it) and read one model
 * after another while up to {@link DEFAULT_WINDOW} placements run at once (bounded by count and
 * bytes); each batch of placed models has its SHA-256 checked in the target as soon as it is
 * placed ({@link BatchVerifier}). So the migrate's own memory does not grow with the number of
 * models (a target or source that keeps every model in memory does, by itself).
 */
import { countModels, listModelPages } from '../backend/list-pages.js';
import type { Backend } from '../backend/types.js';
import { type IdMode, ModelPlacer } from './placer.js';
import { emptyReport, type ProgressFn, type TransferReport } from './report.js';
import { BatchVerifier } from './verify.js';
import { DEFAULT_WINDOW, Window } from './window.js';

export async function migrateModels(
  source: Backend,
  target: Backend,
  mode: IdMode,
  progress: ProgressFn = () => {},
): Promise<TransferReport> {
  const report = emptyReport();
  const total = await countModels(source);
  const placer = await ModelPlacer.create(target, mode);
  const verifier = new BatchVerifier(target, report);
  const window = new Window(DEFAULT_WINDOW.items, DEFAULT_WINDOW.bytes);
  let done = 0;
  const finished = () => {
    done++;
    progress(done, report.bytes, total);
  };
  try {
    for await (const page of listModelPages(source)) {
      for (const { instanceId } of page) {
        const model = await source.getModel(instanceId);
        if (model === null) {
          report.vanished++;
          finished();
          continue;
        }
        await verifier.room();
        await window.start(
          model.size,
          verifier.track(async (record) => {
            const p = await placer.place(instanceId, model.modelType, model.instance, model.sha256);
            if (p.outcome === 'conflict') {
              report.conflicts.push({ instance_id: instanceId, message: p.message });
            } else {
              report[p.outcome]++;
              if (p.outcome === 'created') report.bytes += model.size;
              record(p.targetId, model.sha256);
              if (p.targetId !== instanceId) report.remapped[String(instanceId)] = p.targetId;
            }
            finished();
          }),
        );
      }
    }
  } finally {
    // Placements already started finish (or fail) before an error surfaces.
    await window.drain().catch(() => {});
  }
  await window.drain();
  await verifier.finish();
  return report;
}
