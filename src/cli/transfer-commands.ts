/**
 * `aimm-store export|import|migrate`: moving models between stores, working on the backends that
 * daemon config files describe (opened in this process: stop a daemon that holds a sqlite file
 * first; an event backend can be read while its daemon runs). One JSON report line on stdout at
 * the end; progress on stderr; backend logs (warnings and worse, `--verbose` for more) on stderr.
 * Exit codes: 0 done, 1 failure or conflicts/mismatches, 2 usage.
 */
import { parseArgs } from 'node:util';
import { type Logger, pino } from 'pino';
import type { Backend } from '../backend/types.js';
import { openConfiguredBackend } from '../daemon/open-backend.js';
import { exportModels } from '../transfer/export.js';
import { importModels } from '../transfer/import.js';
import { migrateModels } from '../transfer/migrate.js';
import type { IdMode } from '../transfer/placer.js';
import type { TransferReport } from '../transfer/report.js';
import { writeLine } from './output.js';
import { Progress } from './progress.js';
import { parseArgsMessage } from './suggest.js';

const USAGE: Record<string, string> = {
  export: `usage: aimm-store export --conf FILE -o ARCHIVE [--verbose]
Writes every model of the store FILE (a daemon config: its backend and hat sections) into ARCHIVE,
one tar file (docs/export-format.md): metadata and raw bytes per model, with SHA-256 checksums.
The archive appears under its name only once complete (ARCHIVE.partial until then).
`,
  import: `usage: aimm-store import --conf FILE ARCHIVE [--remap] [--verbose]
Stores the models of ARCHIVE in the store FILE. Ids are kept (--remap: the store allocates new
ones); a model the store already has (same type and bytes) is skipped, so running it again after
an interruption completes it; an id holding other bytes is a conflict: reported, never overwritten.
`,
  migrate: `usage: aimm-store migrate --from FILE --to FILE [--remap] [--verbose]
Copies every model of the store FROM into the store TO (daemon config files), model by model, as
import does (ids kept, idempotent, never overwriting; run it again to resume), then checks every
model's SHA-256 in TO. E.g. AIMM's sqlite file into a Hat event backend, or one Hat prefix to another.
`,
};

const OPTIONS = {
  export: { conf: { type: 'string' }, output: { type: 'string', short: 'o' } },
  import: { conf: { type: 'string' }, remap: { type: 'boolean' } },
  migrate: { from: { type: 'string' }, to: { type: 'string' }, remap: { type: 'boolean' } },
} as const;

const COMMON_OPTIONS = {
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
} as const;

class UsageError extends Error {}

export async function run(command: string, argv: string[]): Promise<number> {
  const usage = USAGE[command] ?? '';
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    const options = OPTIONS[command as keyof typeof OPTIONS];
    if (options === undefined) throw new UsageError(`unknown command '${command}'`);
    const all = { ...COMMON_OPTIONS, ...options };
    try {
      const parsed = parseArgs({ args: argv, options: all, allowPositionals: true, strict: true });
      values = parsed.values as typeof values;
      positionals = parsed.positionals;
    } catch (err) {
      throw new UsageError(parseArgsMessage(err, Object.keys(all)));
    }
    if (values.help === true) {
      process.stdout.write(usage);
      return 0;
    }
  } catch (err) {
    process.stderr.write(`aimm-store ${command}: ${(err as Error).message}\n${usage}`);
    return 2;
  }
  const logger = pino(
    { level: values.verbose === true ? 'info' : 'warn', base: { name: `aimm-store ${command}` } },
    pino.destination({ dest: 2, sync: true }),
  );
  const opened: Backend[] = [];
  const progress = new Progress(command);
  try {
    const report = await runCommand(command, values, positionals, logger, opened, (d, b, t) =>
      progress.update(d, b, t),
    );
    progress.finish();
    writeLine(JSON.stringify(report));
    const clean = report.conflicts.length === 0 && report.mismatched.length === 0;
    for (const c of [...report.conflicts, ...report.mismatched]) {
      process.stderr.write(`aimm-store ${command}: model ${c.instance_id}: ${c.message}\n`);
    }
    return clean ? 0 : 1;
  } catch (err) {
    progress.finish();
    if (err instanceof UsageError) {
      process.stderr.write(`aimm-store ${command}: ${err.message}\n${usage}`);
      return 2;
    }
    process.stderr.write(`aimm-store ${command}: ${(err as Error).message}\n`);
    return 1;
  } finally {
    for (const b of opened) await b.close().catch(() => {});
  }
}

async function runCommand(
  command: string,
  values: Record<string, string | boolean | undefined>,
  positionals: string[],
  logger: Logger,
  opened: Backend[],
  progress: (done: number, bytes: number, total: number | null) => void,
): Promise<TransferReport> {
  const need = (key: string, what: string): string => {
    const v = values[key];
    if (typeof v !== 'string' || v === '') throw new UsageError(`${what} is required`);
    return v;
  };
  const mode: IdMode = values.remap === true ? 'remap' : 'keep';
  const open = async (file: string) => {
    const o = await openConfiguredBackend(file, logger);
    opened.push(o.backend);
    return o;
  };
  if (command === 'export') {
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const conf = need('conf', '--conf FILE');
    const output = need('output', '-o ARCHIVE');
    const src = await open(conf);
    return exportModels(src.backend, output, { name: src.name, backend: src.module }, progress);
  }
  if (command === 'import') {
    const conf = need('conf', '--conf FILE');
    if (positionals.length !== 1) throw new UsageError('give exactly one ARCHIVE');
    const dst = await open(conf);
    return importModels(dst.backend, positionals[0] as string, mode, progress);
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const from = need('from', '--from FILE');
  const to = need('to', '--to FILE');
  const src = await open(from);
  const dst = await open(to);
  return migrateModels(src.backend, dst.backend, mode, progress);
}
