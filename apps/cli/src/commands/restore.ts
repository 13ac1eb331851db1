import { BaseCommand } from '../base-command.js';

/**
 * `wal restore` for oclif, which lists it in `wal --help`. bin/run.js runs every `wal restore`
 * line itself without loading oclif (src/restore.ts), `--help` and `wal help restore` included.
 */
export default class Restore extends BaseCommand {
  static override summary = 'Restore one WAL file from an archive: a restore_command.';
  static override description =
    "Finds FILE in the archive plain or compressed, writes it to PATH safely, and exits as PostgreSQL's restore_command contract requires.";
  static override strict = false;
  static override examples = ["restore_command = '<%= config.bin %> restore -D /var/lib/wal-archive %f %p'"];

  async run(): Promise<void> {
    this.parsed = true;
    const { restoreMain } = await import('../restore.js');
    this.exit(
      await restoreMain(this.argv, {
        program: `${this.config.bin} restore`,
        version: this.config.version,
        stdout: process.stdout,
        stderr: process.stderr,
      }),
    );
  }
}
