import { CommandLineError } from '../errors.js';

/**
 * A configuration file `wal daemon` refuses. The message starts with `FILE:LINE:` (as compilers
 * print it, so editors jump there), then the key, then what is wrong.
 */
export class DaemonConfigError extends CommandLineError {
  readonly file: string;
  readonly line: number | undefined;
  readonly key: string | undefined;

  constructor(
    file: string,
    line: number | undefined,
    key: string | undefined,
    problem: string,
    cause?: unknown,
  ) {
    const where = line === undefined ? file : `${file}:${line}`;
    super('WAL_ERR_CLI_DAEMON_CONFIG', `${where}: ${key === undefined ? '' : `${key}: `}${problem}`, {
      ...(cause === undefined ? {} : { cause }),
    });
    this.file = file;
    this.line = line;
    this.key = key;
  }
}
