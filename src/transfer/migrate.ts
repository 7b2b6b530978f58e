/**
 * `migrate`: every model of one backend into another, streamed model by model (one in memory at a
 * time) with {@link ModelPlacer}: idempotent and never overwriting, so running it again after an
 * interruption (even a kill -9) resumes it, and the end state equals an uninterrupted run's. Ends
 * by checking every model's SHA-256 in the target.
 */
import type { Backend } from '../backend/types.js';
import { type IdMode, ModelPlacer } from './placer.js';
import { emptyReport, type ProgressFn, type TransferReport } from './report.js';
import { verifyTarget } from './verify.js';

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
  let done = 0;
  for (const { instanceId } of metas) {
    const model = await source.getModel(instanceId);
    done++;
    if (model === null) {
      report.vanished++;
    } else {
      const p = await placer.place(instanceId, model.modelType, model.instance, model.sha256);
      if (p.outcome === 'conflict') {
        report.conflicts.push({ instance_id: instanceId, message: p.message });
      } else {
        report[p.outcome]++;
        if (p.outcome === 'created') report.bytes += model.size;
        placed.set(p.targetId, model.sha256);
        if (p.targetId !== instanceId) report.remapped[String(instanceId)] = p.targetId;
      }
    }
    progress(done, report.bytes, metas.length);
  }
  await verifyTarget(target, placed, report);
  return report;
}
