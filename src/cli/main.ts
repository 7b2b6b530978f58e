#!/usr/bin/env node
import { packageVersion } from '../common/version.js';
/**
 * The `aimm-store` command. Each command group lives in its own module, loaded on demand:
 * - `serve`, `check-config`: the daemon (serve.ts);
 * - `put`, `get`, `ls`, `rm`, `watch`: the Juggler client commands (client-commands.ts);
 * - `hat ...`: the Hat operator's tool (hat.ts);
 * - `token create`, `hash-password`: credentials for the controls' config (token.ts);
 * - `version` (`--version`, `-V`): versions (version.ts).
 * Exit codes: 0 ok, 1 failure, 2 usage. A stdout closed by its reader (`aimm-store ls | head -1`)
 * is the normal end of the output, not a failure (output.ts).
 */
import { writeOut } from './output.js';
import { closest } from './suggest.js';

function usage(): string {
  return `aimm-store ${packageVersion()}: model-persistence daemon for Hat installations

usage: aimm-store <command> [options]      (aimm-store <command> --help for a command's usage)

daemon:
  serve [--conf FILE]              run the daemon (embedded default without --conf)
  check-config --conf FILE         validate a config file and exit

credentials:
  token create --role read|write --name NAME [--file FILE]
                                   a bearer token for the HTTP control's tokens_file
  hash-password                    SHA-256 hex of a password (AIMM_STORE_PASSWORD, prompt or stdin)

client (Juggler, --address ws://127.0.0.1:9950/ by default, or wss://… with --ca FILE;
        --user NAME to log in):
  put --type T [--id N] [--expect-revision R] [--allow-empty] [FILE|-]
  get ID [--revision N] [-o FILE] | get ID [--revision N] --meta
  ls
  rm ID [--expect-revision R]
  history ID [--after N] [--limit N]
  rollback ID --to N [--expect-revision R]
  watch

moving stores (daemon config files; the store is opened by the command itself):
  export --conf FILE -o ARCHIVE    every model into one archive (tar, checksummed)
  import --conf FILE ARCHIVE [--remap]
  migrate --from FILE --to FILE [--remap]   e.g. AIMM's sqlite file into a Hat event backend

hat (--address host:port, 127.0.0.1:23012 by default):
  hat status | hat register ... | hat query ... | hat watch ...
  hat monitor [--watch] [--json]   a hat-monitor's components (--address host[:port], port 23010)

version (or --version, -V)         aimm-store, Node, better-sqlite3 and SQLite versions
`;
}

type CommandModule = { run(command: string, argv: string[]): Promise<number> };

const commands: Record<string, () => Promise<CommandModule>> = {
  serve: () => import('./serve.js'),
  'check-config': () => import('./serve.js'),
  put: () => import('./client-commands.js'),
  get: () => import('./client-commands.js'),
  ls: () => import('./client-commands.js'),
  rm: () => import('./client-commands.js'),
  history: () => import('./client-commands.js'),
  rollback: () => import('./client-commands.js'),
  export: () => import('./transfer-commands.js'),
  import: () => import('./transfer-commands.js'),
  migrate: () => import('./transfer-commands.js'),
  watch: () => import('./client-commands.js'),
  hat: () => import('./hat.js'),
  token: () => import('./token.js'),
  'hash-password': () => import('./token.js'),
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    await writeOut(usage());
    return command === undefined ? 2 : 0;
  }
  if (command === 'version' || command === '--version' || command === '-V') {
    if (rest.length > 0) {
      process.stderr.write(`aimm-store version: unexpected argument '${rest[0] as string}'\n`);
      return 2;
    }
    const { versionText } = await import('./version.js');
    await writeOut(versionText());
    return 0;
  }
  const load = commands[command];
  if (load === undefined) {
    const names = [...Object.keys(commands), 'version', 'help'];
    const hint = command.startsWith('-') ? null : closest(command, names);
    const what = command.startsWith('-') ? 'option' : 'command';
    process.stderr.write(
      `aimm-store: unknown ${what} '${command}'${hint === null ? '' : `; did you mean ${hint}?`}\n${usage()}`,
    );
    return 2;
  }
  const mod = await load();
  return mod.run(command, rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`aimm-store: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
