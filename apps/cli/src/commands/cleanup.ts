import { BaseCommand } from '../base-command.js';

/**
 * `wal cleanup` for oclif, which lists it in `wal --help`. bin/run.js runs every `wal cleanup`
 * line itself without loading oclif (src/cleanup.ts), `--help` included.
 */
export default class Cleanup extends BaseCommand {
  static override summary = 'Remove older WAL files from an archive: an archive_cleanup_command.';
  static override description =
    "pg_archivecleanup's rules on wal receive's archive: removes every segment (plain, .gz, .lz4, .zst, .partial) whose segment number is before OLDEST_KEPT_WALFILE's, whatever its timeline; history files stay. The archive is a directory or s3://BUCKET/PREFIX. -n lists instead of removing; -x EXT works as in pg_archivecleanup.";
  static override strict = false;
  static override examples = [
    "archive_cleanup_command = '<%= config.bin %> cleanup -D /var/lib/wal-archive %r'",
    '<%= config.bin %> cleanup -n -D /var/lib/wal-archive 000000010000000000000010.00000020.backup',
    "archive_cleanup_command = 'AWS_PROFILE=archive <%= config.bin %> cleanup -D s3://wal-archive/main %r'",
  ];

  async run(): Promise<void> {
    this.parsed = true;
    const { cleanupMain } = await import('../cleanup.js');
    this.exit(
      await cleanupMain(this.argv, {
        program: `${this.config.bin} cleanup`,
        version: this.config.version,
        stdout: process.stdout,
        stderr: process.stderr,
      }),
    );
  }
}
