/**
 * `aimm-store serve [--conf FILE]` and `aimm-store check-config --conf FILE` (the daemon's commands;
 * the work is in src/daemon/run.ts). Exit codes: 0 ok, 1 failure, 2 usage or configuration errors.
 */
import { closest } from '../common/suggest.js';
import { checkConfigCommand, EXIT_CONFIG, serve } from '../daemon/run.js';

const USAGE = `usage: aimm-store serve [--conf FILE]
       aimm-store check-config --conf FILE

serve without --conf runs the embedded default: the sqlite backend at ./data/aimm-store.db,
Juggler on 127.0.0.1:9950 and HTTP on 127.0.0.1:9951.
`;

export async function run(command: string, argv: string[]): Promise<number> {
  const parsed = parseArgs(argv);
  if (parsed === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (typeof parsed === 'string') {
    process.stderr.write(`aimm-store ${command}: ${parsed}\n${USAGE}`);
    return EXIT_CONFIG;
  }
  if (command === 'check-config') {
    if (parsed.conf === undefined) {
      process.stderr.write(`aimm-store check-config: --conf FILE is required\n${USAGE}`);
      return EXIT_CONFIG;
    }
    return checkConfigCommand(parsed.conf);
  }
  return serve(parsed.conf);
}

/** `--conf FILE`, `--conf=FILE`, `-c FILE`, `--help`; anything else is a usage error (a string). */
export function parseArgs(argv: readonly string[]): { conf?: string } | 'help' | string {
  let conf: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') return 'help';
    let value: string | undefined;
    if (arg === '--conf' || arg === '-c') {
      value = argv[++i];
      if (value === undefined || value === '') return `${arg} needs a file`;
    } else if (arg.startsWith('--conf=')) {
      value = arg.slice('--conf='.length);
      if (value === '') return '--conf needs a file';
    } else if (arg.startsWith('-')) {
      const name = arg.split('=', 1)[0] as string;
      const near = closest(name, ['--conf', '--help']);
      return near === null
        ? `unknown option ${name} (options: --conf FILE, --help)`
        : `unknown option ${name}; did you mean ${near}?`;
    } else {
      return `unexpected argument '${arg}' (give the config file as --conf ${arg})`;
    }
    if (conf !== undefined) return '--conf given twice';
    conf = value;
  }
  return conf === undefined ? {} : { conf };
}
