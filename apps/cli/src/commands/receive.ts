import { BaseCommand } from '../base-command.js';

/**
 * `wal receive` for oclif, which lists it and prints `wal receive --help` (through src/help.ts).
 * bin/run.js runs every other `wal receive` line itself without loading oclif; everything the
 * command does is in src/receive.ts, read by our getopt_long work-alike rather than oclif's flags.
 */
export default class Receive extends BaseCommand {
  static override summary = 'Stream write-ahead log into a directory (pg_receivewal compatible).';
  static override description =
    'Connects over the replication protocol and writes WAL segment files the way pg_receivewal does.';
  static override strict = false;
  static override examples = [
    '<%= config.bin %> receive -D /var/lib/wal-archive -h db1 -U replicator -S archive -v',
    '<%= config.bin %> receive -D ./wal --endpos=0/3000000 --no-loop -Z lz4',
    '<%= config.bin %> receive --slot=archive --create-slot -d "host=db1 user=replicator"',
  ];

  async run(): Promise<void> {
    // Our own parser reads argv; tell oclif so it does not warn about an unparsed command.
    this.parsed = true;
    // Loaded on use: oclif imports every command module to list them.
    const { receiveMain } = await import('../receive.js');
    const exitCode = await receiveMain(this.argv, {
      program: this.program,
      version: this.config.version,
      stdout: process.stdout,
      stderr: process.stderr,
    });
    this.exit(exitCode);
  }
}
