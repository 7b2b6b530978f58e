/**
 * `export`: every model of a backend into one archive (archive.ts), one model in memory at a time.
 * Models are read from the listing taken at the start; a model deleted meanwhile is skipped
 * (counted as vanished), one updated meanwhile is exported as it is when read.
 */
import type { Backend } from '../backend/types.js';
import { ARCHIVE_FORMAT, ARCHIVE_VERSION, ArchiveWriter } from './archive.js';
import { emptyReport, type ProgressFn, type TransferReport } from './report.js';

export async function exportModels(
  backend: Backend,
  path: string,
  source: { name: string; backend: string },
  progress: ProgressFn = () => {},
): Promise<TransferReport> {
  const report = emptyReport();
  const metas = await backend.getModels();
  const writer = await ArchiveWriter.create(path, {
    format: ARCHIVE_FORMAT,
    version: ARCHIVE_VERSION,
    created: new Date().toISOString(),
    source,
    models: metas.length,
  });
  try {
    for (const { instanceId } of metas) {
      const model = await backend.getModel(instanceId);
      if (model === null) {
        report.vanished++;
        continue;
      }
      await writer.addModel(
        {
          instance_id: model.instanceId,
          model_type: model.modelType,
          revision: model.revision,
          size: model.size,
          sha256: model.sha256,
          updated: model.updated,
        },
        model.instance,
      );
      report.created++;
      report.bytes += model.size;
      progress(report.created + report.vanished, report.bytes, metas.length);
    }
    await writer.finish();
  } catch (err) {
    await writer.abort();
    throw err;
  }
  report.verified = report.created; // every blob's hash is in the archive and checked on import
  return report;
}
