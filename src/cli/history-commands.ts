/**
 * `aimm-store history ID` and `aimm-store rollback ID --to N` (Juggler `get_history` and
 * `rollback_instance`): a model's kept revisions, one JSON line each, and a rollback as a new
 * revision with compare-and-set.
 */
import type { RevisionInfo } from '../client/index.js';
import {
  type Common,
  EXIT_OK,
  line,
  noMorePositionals,
  parseId,
  parseRevision,
  UsageError,
  type Values,
  withClient,
} from './client-args.js';
import { isStdoutClosed } from './output.js';

export async function history(c: Common, values: Values, positionals: string[]): Promise<number> {
  noMorePositionals(positionals, 1);
  const id = parseId(positionals[0], 'ID');
  let after = values.after === undefined ? 0 : (parseRevision(values.after, '--after') ?? 0);
  let left =
    values.limit === undefined
      ? Number.POSITIVE_INFINITY
      : parseId(String(values.limit), '--limit');
  await withClient(c, async (client) => {
    // Pages of 1000 so a model with many revisions streams out as it is read.
    while (left > 0 && !isStdoutClosed()) {
      const page = await client.history(id, { after, limit: Math.min(left, 1000) });
      for (const r of page) line(revisionLine(r));
      const last = page.at(-1);
      if (last === undefined || page.length < Math.min(left, 1000)) break;
      after = last.revision;
      left -= page.length;
    }
  });
  return EXIT_OK;
}

export async function rollback(c: Common, values: Values, positionals: string[]): Promise<number> {
  noMorePositionals(positionals, 1);
  const id = parseId(positionals[0], 'ID');
  if (values.to === undefined) throw new UsageError('--to N is required');
  const to = parseId(String(values.to), '--to');
  const expectedRevision = parseRevision(values['expect-revision']);
  const meta = await withClient(c, (client) => client.rollback(id, to, { expectedRevision }));
  line({
    instance_id: meta.instanceId,
    model_type: meta.modelType,
    revision: meta.revision,
    size: meta.size,
    sha256: meta.sha256,
  });
  return EXIT_OK;
}

function revisionLine(r: RevisionInfo): Record<string, unknown> {
  return {
    instance_id: r.instanceId,
    model_type: r.modelType,
    revision: r.revision,
    size: r.size,
    sha256: r.sha256,
    updated: r.updated,
    deleted: r.deleted,
    origin: r.origin,
    available: r.available,
    current: r.current,
  };
}
