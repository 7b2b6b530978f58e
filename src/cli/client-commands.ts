/**
 * The client commands of `aimm-store` (Juggler, built on `aimm-store/client`):
 *   put --type T [--id N] [--expect-revision R] [--allow-empty] [FILE|-]
 *                                                           store; prints the model's metadata line
 *   get ID [-o FILE] | get ID --meta                        bytes to stdout/FILE, or metadata
 *   ls                                                      one metadata line per model
 *   rm ID [--expect-revision R]                             delete
 *   history ID [--after N] [--limit N]                      one line per kept revision
 *   rollback ID --to N [--expect-revision R]                a new revision with revision N's bytes
 *   watch                                                   one line per change until interrupted
 * Common: --address URL (ws://127.0.0.1:9950/), --user NAME (password from AIMM_STORE_PASSWORD),
 * --framing 0.7|0.6; for wss://: --ca FILE, --cert FILE (mutual TLS), --insecure (tls-options.ts). Exit codes: 0 ok, 1 failure, 2 usage. A stdout closed by its reader (`ls | head
 * -1`, `get 7 | head -c 10`) ends the output normally (exit 0, see output.ts).
 *
 * The output is the wire's snake_case JSON (`instance_id`, `model_type`, ...), the keys AIMM, the
 * Juggler API and the HTTP control use, so it pipes into the same tools; the TypeScript client's
 * objects are camelCase (`instanceId`, ...) as JavaScript APIs are. This module maps between them.
 */
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { HttpModelClient } from '../client/http-client.js';
import { AuthenticationError, DEFAULT_ADDRESS, RequestFailedError } from '../client/index.js';
import {
  type Common,
  commonOf,
  connect,
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  line,
  messageOf,
  metaLine,
  noMorePositionals,
  parseId,
  parseRevision,
  provisionalMark,
  putLine,
  UsageError,
  type Values,
  withClient,
} from './client-args.js';
import { history, rollback } from './history-commands.js';
import { guardStdout, isStdoutClosed, stdoutClosed, writeOut } from './output.js';
import { ByteProgress } from './progress.js';
import { parseArgsMessage } from './suggest.js';
import { TLS_OPTIONS, TLS_USAGE } from './tls-options.js';

const COMMON = `common options:
  --address URL    the daemon's Juggler address (default ${DEFAULT_ADDRESS}); for put and get
                   also the HTTP control's (http://HOST:9951/ or https://): raw bytes, streamed,
                   with a progress bar on a terminal (the way for large models)
  --user NAME      log in as NAME; the password is read from AIMM_STORE_PASSWORD (over HTTP:
                   Basic; or a bearer token from AIMM_STORE_TOKEN)
  --framing 0.7|0.6  Juggler framing to speak (default 0.7)
${TLS_USAGE}`;

const USAGE: Record<string, string> = {
  put: `usage: aimm-store put --type T [--id N] [--expect-revision R] [--allow-empty] [FILE|-]
Stores FILE as a new model, or as model N with --id; --expect-revision makes the update fail unless
model N is at revision R. Without FILE (or with -) the model is read from stdin; without FILE, stdin
must not be a terminal (pipe the bytes in, or give - to type them). An empty model (0 bytes) is
refused unless --allow-empty. Prints {"instance_id","model_type","revision","size","sha256"}.
`,
  get: `usage: aimm-store get ID [--revision N] [-o FILE]
       aimm-store get ID [--revision N] --meta
Writes model ID's bytes to stdout (or FILE), or prints its metadata as one JSON line. With
--revision N, that earlier revision (as long as the backend keeps it: see \`aimm-store history\`).
`,
  history: `usage: aimm-store history ID [--after N] [--limit N]
Prints one JSON line per revision of model ID the backend keeps, oldest first:
{"instance_id","model_type","revision","size","sha256","updated","deleted","origin","available",
"current"}. A deleted model keeps its history. --after N starts after revision N; --limit caps the
lines (default: all, read in pages).
`,
  rollback: `usage: aimm-store rollback ID --to N [--expect-revision R]
Stores revision N's bytes and type as a new revision of model ID, unless the model changed since
it was read (or is not at revision R with --expect-revision). Prints the new metadata as put does.
`,
  ls: `usage: aimm-store ls
Prints one JSON line of metadata per stored model, ascending by id.
`,
  rm: `usage: aimm-store rm ID [--expect-revision R]
Deletes model ID (ids are never reused). Prints {"instance_id","model_type","revision"}.
`,
  watch: `usage: aimm-store watch
Prints one JSON line per model change, {"change","instance_id","model_type","revision","origin"},
until interrupted (SIGINT/SIGTERM).
`,
};

const COMMON_OPTIONS = {
  address: { type: 'string' },
  user: { type: 'string' },
  framing: { type: 'string' },
  ...TLS_OPTIONS,
  help: { type: 'boolean', short: 'h' },
} as const;

const OPTIONS = {
  put: {
    type: { type: 'string' },
    id: { type: 'string' },
    'expect-revision': { type: 'string' },
    'allow-empty': { type: 'boolean' },
  },
  get: {
    output: { type: 'string', short: 'o' },
    meta: { type: 'boolean' },
    revision: { type: 'string' },
  },
  history: { after: { type: 'string' }, limit: { type: 'string' } },
  rollback: { to: { type: 'string' }, 'expect-revision': { type: 'string' } },
  ls: {},
  rm: { 'expect-revision': { type: 'string' } },
  watch: {},
} as const;

export async function run(command: string, argv: string[]): Promise<number> {
  guardStdout();
  const usage = `${USAGE[command] ?? ''}\n${COMMON}`;
  let values: Values;
  let positionals: string[];
  let common: Common;
  try {
    const options = OPTIONS[command as keyof typeof OPTIONS];
    if (options === undefined) throw new UsageError(`unknown command '${command}'`);
    const all = { ...COMMON_OPTIONS, ...options };
    let parsed: { values: unknown; positionals: string[] };
    try {
      parsed = parseArgs({ args: argv, options: all, allowPositionals: true, strict: true });
    } catch (err) {
      throw new UsageError(parseArgsMessage(err, Object.keys(all)));
    }
    values = parsed.values as Values;
    positionals = parsed.positionals;
    if (values.help === true) {
      await writeOut(usage);
      return EXIT_OK;
    }
    common = commonOf(values);
    if (common.tls?.rejectUnauthorized === false)
      process.stderr.write(
        `aimm-store ${command}: warning: --insecure: the server's certificate is not verified; ` +
          'anyone on the way can read and change what is sent (passwords, models)\n',
      );
  } catch (err) {
    process.stderr.write(`aimm-store ${command}: ${messageOf(err)}\n${usage}`);
    return EXIT_USAGE;
  }
  try {
    if (common.http !== undefined && command !== 'put' && command !== 'get')
      throw new UsageError(
        `${command} talks Juggler: give a ws:// or wss:// address (an http:// address serves put and get)`,
      );
    switch (command) {
      case 'put':
        return await put(common, values, positionals);
      case 'get':
        return await get(common, values, positionals);
      case 'ls':
        return await ls(common, positionals);
      case 'rm':
        return await rm(common, values, positionals);
      case 'history':
        return await history(common, values, positionals);
      case 'rollback':
        return await rollback(common, values, positionals);
      default:
        return await watch(common, positionals);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`aimm-store ${command}: ${err.message}\n${usage}`);
      return EXIT_USAGE;
    }
    process.stderr.write(`aimm-store ${command}: ${failureMessage(err)}\n`);
    return EXIT_FAILURE;
  }
}

/** A failure as the user should read it: with the way out where there is one. */
function failureMessage(err: unknown): string {
  if (err instanceof RequestFailedError && err.code === 'unauthorized')
    return 'the server requires a login: use --user NAME, with the password in AIMM_STORE_PASSWORD';
  if (err instanceof AuthenticationError)
    return `${err.message}: check the user and the password in AIMM_STORE_PASSWORD`;
  return messageOf(err);
}

/**
 * The model's bytes: FILE, or stdin for `-` or no FILE. Without FILE, stdin is read only when it is
 * not a terminal: `put --type T` typed alone must not wait silently for input.
 */
async function readInput(source: string | undefined): Promise<Buffer> {
  if (source === undefined && process.stdin.isTTY === true)
    throw new UsageError(
      'no FILE given and stdin is a terminal: give FILE, pipe the model in, or give - to type it',
    );
  if (source === undefined || source === '-') {
    if (process.stdin.isTTY === true)
      process.stderr.write(
        'aimm-store put: reading the model from the terminal; end with Ctrl-D\n',
      );
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }
  return readFile(source);
}

async function put(c: Common, values: Values, positionals: string[]): Promise<number> {
  noMorePositionals(positionals, 1);
  const modelType = values.type;
  if (typeof modelType !== 'string' || modelType === '')
    throw new UsageError('--type T is required');
  const instanceId = values.id === undefined ? undefined : parseId(String(values.id), '--id');
  const expectedRevision = parseRevision(values['expect-revision']);
  if (expectedRevision !== undefined && instanceId === undefined)
    throw new UsageError('--expect-revision needs --id (a new model has no revision yet)');
  if (c.http !== undefined && positionals[0] !== undefined && positionals[0] !== '-') {
    const file = positionals[0];
    if ((await stat(file)).size === 0 && values['allow-empty'] !== true)
      throw new UsageError(
        `the model is empty (0 bytes from ${file}): nothing to store; give --allow-empty to store an empty model`,
      );
    const progress = new ByteProgress('put');
    const meta = await c.http
      .put(
        modelType,
        { file },
        { instanceId, expectedRevision, onProgress: (d, t) => progress.update(d, t) },
      )
      .finally(() => progress.finish());
    line(putLine(meta));
    return EXIT_OK;
  }
  const bytes = await readInput(positionals[0]);
  if (bytes.length === 0 && values['allow-empty'] !== true)
    throw new UsageError(
      `the model is empty (0 bytes from ${positionals[0] === undefined || positionals[0] === '-' ? 'stdin' : positionals[0]}): ` +
        'nothing to store; give --allow-empty to store an empty model',
    );
  const meta =
    c.http === undefined
      ? await withClient(c, (client) =>
          client.put(modelType, bytes, { instanceId, expectedRevision }),
        )
      : await c.http.put(modelType, bytes, { instanceId, expectedRevision });
  line(putLine(meta));
  return EXIT_OK;
}

async function get(c: Common, values: Values, positionals: string[]): Promise<number> {
  noMorePositionals(positionals, 1);
  const id = parseId(positionals[0], 'ID');
  const revision =
    values.revision === undefined ? undefined : parseId(String(values.revision), '--revision');
  if (c.http !== undefined) return httpGet(c.http, id, revision, values);
  if (values.meta === true) {
    if (values.output !== undefined) throw new UsageError('--meta and -o cannot be combined');
    line(
      metaLine(
        await withClient(c, (client) =>
          revision === undefined ? client.getMeta(id) : client.getRevision(id, revision),
        ),
      ),
    );
    return EXIT_OK;
  }
  const model = await withClient(c, (client) =>
    revision === undefined ? client.get(id) : client.getRevision(id, revision),
  );
  if (typeof values.output === 'string') {
    await writeFile(values.output, model.instance);
  } else {
    await writeOut(model.instance);
  }
  return EXIT_OK;
}

/** `get` over HTTP: the bytes streamed to FILE or stdout, a progress bar for large ones. */
async function httpGet(
  http: HttpModelClient,
  id: number,
  revision: number | undefined,
  values: Values,
): Promise<number> {
  if (values.meta === true) {
    if (values.output !== undefined) throw new UsageError('--meta and -o cannot be combined');
    if (revision !== undefined)
      throw new UsageError('--meta with --revision needs a ws:// address (Juggler)');
    line(metaLine(await http.getMeta(id)));
    return EXIT_OK;
  }
  const progress = new ByteProgress('get');
  const onProgress = (d: number, t: number | null) => progress.update(d, t);
  try {
    if (typeof values.output === 'string') {
      // Into FILE.partial, renamed when complete: a cut-off download leaves no FILE.
      const partial = `${values.output}.partial`;
      await http.downloadToFile(id, partial, { revision, onProgress });
      await rename(partial, values.output);
    } else {
      await http.download(id, process.stdout, { revision, onProgress });
    }
  } finally {
    progress.finish();
  }
  return EXIT_OK;
}

async function ls(c: Common, positionals: string[]): Promise<number> {
  noMorePositionals(positionals, 0);
  const models = await withClient(c, (client) => client.list());
  for (const m of models) {
    if (isStdoutClosed()) break;
    line(metaLine(m));
  }
  return EXIT_OK;
}

async function rm(c: Common, values: Values, positionals: string[]): Promise<number> {
  noMorePositionals(positionals, 1);
  const id = parseId(positionals[0], 'ID');
  const expectedRevision = parseRevision(values['expect-revision']);
  const r = await withClient(c, (client) => client.remove(id, { expectedRevision }));
  line({
    instance_id: r.instanceId,
    model_type: r.modelType,
    revision: r.revision,
    ...provisionalMark(r),
  });
  return EXIT_OK;
}

async function watch(c: Common, positionals: string[]): Promise<number> {
  noMorePositionals(positionals, 0);
  const client = await connect(c);
  try {
    // A cheap request: tells the server our framing at once, and whether we may see changes
    // (without a login where one is needed, watch would silently print nothing).
    await client.request('get_instance', { instance_id: 1, meta_only: true }).catch((err) => {
      if (err instanceof RequestFailedError && err.code === 'unauthorized') throw err;
    });
    await client.whenSynced();
  } catch (err) {
    await client.close();
    throw err;
  }
  process.stderr.write(`aimm-store watch: watching ${c.address}\n`);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (code: number) => {
      if (stopping) return;
      stopping = true;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      sub.unsubscribe();
      void client.close().then(() => resolve(code));
    };
    const onSignal = () => stop(EXIT_OK);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    // A closed pipe (e.g. `watch | head -1`) ends the watch normally.
    void stdoutClosed.then(() => stop(EXIT_OK));
    const sub = client.watch().subscribe((ch) =>
      line({
        change: ch.change,
        instance_id: ch.instanceId,
        model_type: ch.modelType,
        revision: ch.revision,
        origin: ch.origin,
        ...provisionalMark(ch),
      }),
    );
    void client.closed.then((info) => {
      if (stopping) return;
      process.stderr.write(`aimm-store watch: ${info.message}\n`);
      stop(EXIT_FAILURE);
    });
  });
}
