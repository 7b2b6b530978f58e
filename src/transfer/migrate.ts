/**
 * `migrate`: every model of one backend into another, streamed model by model (one in memory at a
 * time) with {@link ModelPlacer}: idempotent and never overwriting, so running it again after an
 * interruption (even a kill -9) resumes it, and the end state equals an uninterrupted run's. The
 * source is read one model after another while up to {@link DEFAULT_WINDOW} placements run at once
 * (bounded by count and bytes). Ends by checking every model's SHA-256 in the target.
 */
import type { Backend } from '../backend/types.js';
import { type IdMode, ModelPlacer } from './placer.js';
import { emptyReport, type ProgressFn, type TransferReport } from './report.js';
import { verifyTarget } from './verify.js';
import { DEFAULT_WINDOW, Window } from './window.js';

export async function migrateModels(
  source: Backend,
  target: Backend,
  mode: IdMode,
  progress: ProgressFn = () => {},
): Promise<TransferReport> {
  const report = emptyReport();
  const metas = await source.getModels();
  const placer = await ModelPlacer.create(target, mode);
  const placed = new Map<number, string>();
  const window = new Window(DEFAULT_WINDOW.items, DEFAULT_WINDOW.bytes);
  let done = 0;
  const finished = () => {
    done++;
    progress(done, report.bytes, metas.length);
  };
  for (const { instanceId } of metas) {
    const model = await source.getModel(instanceId);
    if (model === null) {
      report.vanished++;
      finished();
      continue;
    }
    await window.start(model.size, async () => {
      const p = await placer.place(instanceId, model.modelType, model.instance, model.sha256);
      if (p.outcome === 'conflict') {
        report.conflicts.push({ instance_id: instanceId, message: p.message });
      } else {
        report[p.outcome]++;
        if (p.outcome === 'created') report.bytes += model.size;
        placed.set(p.targetId, model.sha256);
        if (p.targetId !== instanceId) report.remapped[String(instanceId)] = p.targetId;
      }
      finished();
    });
  }
  await window.drain();
  await verifyTarget(target, placed, report);
  return report;
}
