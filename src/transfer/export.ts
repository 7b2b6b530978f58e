/**
 * `export`: every model of a backend into one archive (archive.ts), one model in memory at a time.
 * The listing is read a page at a time (`listModels`, where the backend has it; the manifest's
 * count from a first pass over it); a model deleted meanwhile is skipped (counted as vanished), one
 * updated meanwhile is exported as it is when read, one created meanwhile may or may not be in.
 */
import { countModels, listModelPages } from '../backend/list-pages.js';
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
  const total = await countModels(backend);
  const writer = await ArchiveWriter.create(path, {
    format: ARCHIVE_FORMAT,
    version: ARCHIVE_VERSION,
    created: new Date().toISOString(),
    source,
    models: total,
  });
  try {
    for await (const page of listModelPages(backend))
      for (const { instanceId } of page) {
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
        progress(report.created + report.vanished, report.bytes, total);
      }
    await writer.finish();
  } catch (err) {
    await writer.abort();
    throw err;
  }
  report.verified = report.created; // every blob's hash is in the archive and checked on import
  return report;
}
