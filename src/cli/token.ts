/**
 * `aimm-store token create --role read|write --name NAME [--file FILE]`: makes a bearer token for
 * the HTTP control's `tokens_file`, prints it once on stdout and appends its hash line to FILE
 * (created with mode 0600 if missing; the file must be valid and the name unused). Without
 * --file it prints the line to add on stderr.
 *
 * `aimm-store hash-password`: the SHA-256 hex of a password, the form both controls' `users`
 * hold. The password comes from AIMM_STORE_PASSWORD, a prompt on a terminal, or stdin.
 *
 * Exit codes: 0 ok, 1 failure, 2 usage.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { hashPassword } from '../controls/juggler/auth.js';
import { ROLES, type Role } from '../controls/roles.js';
import {
  generateToken,
  hashToken,
  parseTokens,
  TokensFileError,
  tokenLine,
  validTokenName,
} from '../controls/tokens.js';
import { writeOut } from './output.js';
import { readSecret } from './password.js';
import { parseArgsMessage } from './suggest.js';

const TOKEN_USAGE = `usage: aimm-store token create --role read|write --name NAME [--file FILE]
Makes a bearer token for the HTTP control, prints it once on stdout and appends
'SHA256HEX ROLE NAME' to FILE (the control's tokens_file; created 0600 if missing). Without --file
the line to add is printed on stderr. Names: 1-64 of A-Z a-z 0-9 . _ @ : + -, unique in the file.
`;

const HASH_USAGE = `usage: aimm-store hash-password
Prints the SHA-256 hex of a password, the form of 'password' in a control's users. The password
comes from AIMM_STORE_PASSWORD, else a prompt (no echo) on a terminal, else stdin (one trailing
newline dropped).
`;

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

export async function run(command: string, argv: string[]): Promise<number> {
  return command === 'hash-password' ? hashPasswordCommand(argv) : tokenCommand(argv);
}

async function hashPasswordCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    await writeOut(HASH_USAGE);
    return EXIT_OK;
  }
  if (argv.length > 0) {
    process.stderr.write(
      `aimm-store hash-password: unexpected argument '${argv[0] as string}' (the password is never an argument)\n${HASH_USAGE}`,
    );
    return EXIT_USAGE;
  }
  let password: string;
  try {
    password = await readSecret('AIMM_STORE_PASSWORD', 'password: ');
  } catch (err) {
    process.stderr.write(`aimm-store hash-password: ${(err as Error).message}\n`);
    return EXIT_FAILURE;
  }
  if (password === '') {
    process.stderr.write('aimm-store hash-password: the password is empty\n');
    return EXIT_FAILURE;
  }
  await writeOut(`${hashPassword(password)}\n`);
  return EXIT_OK;
}

const OPTIONS = {
  role: { type: 'string' },
  name: { type: 'string' },
  file: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function tokenCommand(argv: string[]): Promise<number> {
  const usage = (message: string) => {
    process.stderr.write(`aimm-store token: ${message}\n${TOKEN_USAGE}`);
    return EXIT_USAGE;
  };
  let values: { role?: string; name?: string; file?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    }));
  } catch (err) {
    return usage(parseArgsMessage(err, Object.keys(OPTIONS)));
  }
  if (values.help === true) {
    await writeOut(TOKEN_USAGE);
    return EXIT_OK;
  }
  if (positionals[0] !== 'create' || positionals.length > 1)
    return usage(
      positionals.length === 0
        ? 'a subcommand is required (create)'
        : `unknown subcommand '${positionals.join(' ')}' (create)`,
    );
  const role = values.role;
  if (role === undefined || !(ROLES as readonly string[]).includes(role))
    return usage(`--role must be read or write${role === undefined ? '' : `, not '${role}'`}`);
  const name = values.name;
  if (name === undefined) return usage('--name NAME is required');
  if (!validTokenName(name))
    return usage(`--name must be 1-64 characters of A-Z a-z 0-9 . _ @ : + -, not '${name}'`);

  const token = generateToken();
  const line = tokenLine({ hash: hashToken(token), role: role as Role, name });
  const file = values.file;
  if (file === undefined) {
    await writeOut(`${token}\n`);
    process.stderr.write(`add this line to the HTTP control's tokens_file:\n${line}\n`);
    return EXIT_OK;
  }
  try {
    let text = '';
    if (existsSync(file)) {
      text = readFileSync(file, 'utf8');
      const entries = parseTokens(text, file);
      if (entries.some((e) => e.name === name))
        throw new TokensFileError(`${file}: the name '${name}' is already used`, file);
    }
    const sep = text === '' || text.endsWith('\n') ? '' : '\n';
    appendFileSync(file, `${sep}${line}\n`, { mode: 0o600 });
  } catch (err) {
    process.stderr.write(`aimm-store token create: ${(err as Error).message}\n`);
    return EXIT_FAILURE;
  }
  await writeOut(`${token}\n`);
  process.stderr.write(
    `token '${name}' (${role}) added to ${file}; the daemon reads it on the next request with a token. ` +
      'The token is shown only now.\n',
  );
  return EXIT_OK;
}
