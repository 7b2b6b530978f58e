/** The final check of `import` and `migrate`: each placed model's bytes in the target, by SHA-256. */
import type { Backend } from '../backend/types.js';
import type { TransferReport } from './report.js';

export async function verifyTarget(
  target: Backend,
  placed: ReadonlyMap<number, string>,
  report: TransferReport,
): Promise<void> {
  const metas = new Map((await target.getModels()).map((m) => [m.instanceId, m]));
  for (const [id, sha256] of placed) {
    const m = metas.get(id);
    if (m !== undefined && m.sha256 === sha256) report.verified++;
    else {
      report.mismatched.push({
        instance_id: id,
        message:
          m === undefined
            ? `model ${id} is not in the target any more (deleted meanwhile?)`
            : `model ${id} in the target has sha256 ${m.sha256.slice(0, 12)}…, expected ${sha256.slice(0, 12)}… (written meanwhile?)`,
      });
    }
  }
}
