import { WalError } from '@wal/protocol';

/**
 * A command line `wal receive` refuses, with pg_receivewal's wording. `hint` says whether the
 * report ends with `Try "wal receive --help" for more information.`: pg_receivewal adds it to the
 * checks of its option loop and post-parse checks, but not to its `pg_fatal` ones (`-s`, `-E`,
 * `-Z`), and we keep that difference so scripts matching its stderr keep matching.
 */
export class CommandLineError extends WalError {
  readonly hint: boolean;
  readonly detail: string | undefined;

  constructor(
    code: `WAL_ERR_CLI_${string}`,
    message: string,
    options: { hint?: boolean; detail?: string; cause?: unknown } = {},
  ) {
    super(code, message, options.cause === undefined ? {} : { cause: options.cause });
    this.hint = options.hint ?? false;
    this.detail = options.detail;
  }
}

/**
 * A getopt complaint (`unrecognized option '--bogus'`): printed bare, without a level word, as
 * glibc does, then the hint line.
 */
export class UnknownOptionError extends CommandLineError {
  constructor(message: string) {
    super('WAL_ERR_CLI_UNKNOWN_OPTION', message, { hint: true });
  }
}
