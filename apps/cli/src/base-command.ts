import { Command, Errors } from '@oclif/core';
import { Logger } from './log.js';
import { wantsJson } from './receive-options.js';
import { reportError } from './report-error.js';

/**
 * Every command's errors end here. Our own errors (WalError and its subclasses) print the way
 * PostgreSQL's client tools print theirs: `wal receive: error: …`, then `detail:` and `hint:`
 * lines, a suggestion for the error's code when the error brings no hint, one JSON object per
 * line with --json; then exit 1, as pg_receivewal does for any failure. oclif's own errors (flag
 * parsing of commands that use oclif flags) keep oclif's wording and exit code.
 */
export abstract class BaseCommand extends Command {
  private cachedLogger: Logger | undefined;

  /** What starts every stderr line: `wal receive`, like pg_receivewal's progname. */
  protected get program(): string {
    return this.id ? `${this.config.bin} ${this.id.replaceAll(':', ' ')}` : this.config.bin;
  }

  protected get logger(): Logger {
    this.cachedLogger ??= new Logger({
      program: this.program,
      output: process.stderr,
      json: wantsJson(this.argv),
    });
    return this.cachedLogger;
  }

  protected override async catch(
    error: Error & { exitCode?: number; oclif?: { exit?: number } },
  ): Promise<unknown> {
    if (error instanceof Errors.ExitError) throw error;
    if (error instanceof Errors.CLIError) return super.catch(error);
    reportError(this.logger, error);
    this.exit(1);
    return undefined;
  }
}
