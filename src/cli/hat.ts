// Placeholder until this command group is implemented.
export async function run(command: string, _argv: string[]): Promise<number> {
  process.stderr.write(`aimm-store: ${command} is not implemented yet\n`);
  return 1;
}
