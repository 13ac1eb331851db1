import { Logger } from './log.js';
import { receiveHelpText, receiveVersionText } from './receive-help.js';
import { parseReceiveCommandLine, wantsJson } from './receive-options.js';
import type { ReceiveEnvironment } from './receive-run.js';
import { reportError } from './report-error.js';

export interface ReceiveMainIo {
  /** `wal receive`: starts every stderr line and names the command in the help hint. */
  readonly program: string;
  readonly version: string;
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean };
  /** Replaces collaborators of the run (tests); the logger is made here from the command line. */
  readonly environment?: Omit<ReceiveEnvironment, 'logger'>;
}

/**
 * `wal receive ARGS…` from argv to exit code: help, version, refusals of the command line and
 * the run itself. The oclif command only calls this and exits with its result.
 */
export async function receiveMain(argv: readonly string[], io: ReceiveMainIo): Promise<number> {
  const logger = new Logger({ program: io.program, output: io.stderr, json: wantsJson(argv) });
  let commandLine: ReturnType<typeof parseReceiveCommandLine>;
  try {
    commandLine = parseReceiveCommandLine(argv);
  } catch (error) {
    reportError(logger, error);
    return 1;
  }
  switch (commandLine.kind) {
    case 'help':
      io.stdout.write(receiveHelpText(io.program));
      return 0;
    case 'version':
      io.stdout.write(receiveVersionText(io.version, io.program));
      return 0;
    case 'run': {
      // Loaded only to run: --version, -? and refusals of the command line need none of the client
      // (connection, stream, sink).
      const { runReceive } = await import('./receive-run.js');
      return runReceive(commandLine.options, { ...io.environment, logger });
    }
  }
}
