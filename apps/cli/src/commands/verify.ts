import { Errors, Flags } from '@oclif/core';
import { BaseCommand } from '../base-command.js';
import {
  EXIT_FAILED,
  EXIT_PROBLEMS,
  EXIT_SOUND,
  verifyReportJson,
  verifyReportText,
} from '../verify-report.js';

/** `wal verify`: options, one `verifyArchive` call, the report, an exit status. */
export default class Verify extends BaseCommand {
  static override summary =
    'Check that an archive holds every byte recovery needs, and that it is sound WAL.';
  static override description =
    'Walks the archive the way recovery picks files across timelines, checks the history files, and reads every needed segment (plain, .gz, .lz4, .zst, the final .partial): page headers, long headers, the record chain and the CRC-32C of every record. Exit status 0: sound; 2: problems found, each listed; 1: could not verify.';
  static override examples = [
    '<%= config.bin %> verify -D /var/lib/wal-archive',
    '<%= config.bin %> verify -D s3://wal-archive/db1',
    '<%= config.bin %> verify -D /var/lib/wal-archive --from 000000010000000000000010 --timeline 2 --json',
  ];
  static override flags = {
    directory: Flags.string({
      char: 'D',
      summary: 'The archive: a directory, or s3://BUCKET/PREFIX (configured from the AWS environment).',
      required: true,
    }),
    from: Flags.string({ summary: 'Where recovery must be able to begin: a WAL file name or an LSN.' }),
    to: Flags.string({ summary: 'Where recovery must be able to get to: a WAL file name or an LSN.' }),
    timeline: Flags.integer({ summary: 'The timeline to recover to (default: the newest).', min: 1 }),
    json: Flags.boolean({ summary: 'Print one JSON document instead of text.' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Verify);
    const { verifyArchive } = await import('@wal/verify');
    const report = await verifyArchive({
      archive: flags.directory,
      from: flags.from,
      to: flags.to,
      timeline: flags.timeline,
    });
    process.stdout.write(flags.json ? verifyReportJson(report) : verifyReportText(report, this.program));
    this.exit(report.sound ? EXIT_SOUND : EXIT_PROBLEMS);
  }

  /** Bad arguments are "could not verify" (1), not oclif's usage status 2, which means "problems found". */
  protected override async catch(error: Error & { exitCode?: number }): Promise<unknown> {
    if (error instanceof Errors.CLIError && !(error instanceof Errors.ExitError)) {
      process.stderr.write(
        `${this.program}: error: ${error.message}\n${this.program}: hint: Try "${this.config.bin} help verify" for more information.\n`,
      );
      this.exit(EXIT_FAILED);
    }
    return super.catch(error);
  }
}
