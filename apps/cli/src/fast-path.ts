/**
 * `wal receive` starts without oclif (ADR 0005, "Start-up without oclif"): loading oclif and its
 * dependencies costs about 20 MiB of RSS and a quarter of a second of CPU before the first byte,
 * and the command does not use oclif's parser anyway. This module is the first one bin/run.js
 * loads, so it imports nothing.
 */

/**
 * The arguments for `wal receive`'s own entry point, or `undefined` when oclif must take the
 * command line: any other command, no command, or `--help` before `--` (oclif answers that one
 * anywhere on the line, before a command runs, and prints the same text through src/help.ts).
 */
export function receiveFastPathArguments(argv: readonly string[]): string[] | undefined {
  if (argv[0] !== 'receive') return undefined;
  const rest = argv.slice(1);
  for (const argument of rest) {
    if (argument === '--') break;
    if (argument === '--help') return undefined;
  }
  return rest;
}
