#!/usr/bin/env node
/**
 * The `aimm-store` command. Each command group lives in its own module, loaded on demand:
 * - `serve`, `check-config`: the daemon (serve.ts);
 * - `put`, `get`, `ls`, `rm`, `watch`: the Juggler client commands (client-commands.ts);
 * - `hat ...`: the Hat operator's tool (hat.ts).
 * Exit codes: 0 ok, 1 failure, 2 usage.
 */

const USAGE = `usage: aimm-store <command> [options]

daemon:
  serve [--conf FILE]              run the daemon (embedded default without --conf)
  check-config --conf FILE         validate a config file and exit

client (Juggler, --address ws://127.0.0.1:9950/ by default):
  put --type T [--id N] [--expect-revision R] [FILE|-]
  get ID [-o FILE] | get ID --meta
  ls
  rm ID
  watch

hat (--address host:port, 127.0.0.1:23012 by default):
  hat status | hat register ... | hat query ... | hat watch ...
  hat monitor [--watch] [--json]   a hat-monitor's components (--address host[:port], port 23010)
`;

type CommandModule = { run(command: string, argv: string[]): Promise<number> };

const commands: Record<string, () => Promise<CommandModule>> = {
  serve: () => import('./serve.js'),
  'check-config': () => import('./serve.js'),
  put: () => import('./client-commands.js'),
  get: () => import('./client-commands.js'),
  ls: () => import('./client-commands.js'),
  rm: () => import('./client-commands.js'),
  watch: () => import('./client-commands.js'),
  hat: () => import('./hat.js'),
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  const load = commands[command];
  if (load === undefined) {
    process.stderr.write(`aimm-store: unknown command '${command}'\n${USAGE}`);
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
