import { parseArgs } from 'node:util';
import { Logger, reportError } from '@wal/cli';
import { isSupportedVersion, SUPPORTED_VERSIONS } from '@wal/pg-cluster';
import { runDemo } from './demo.js';

const PROGRAM = 'wal demo';
const USAGE = `Usage: pnpm demo [--server-version=${SUPPORTED_VERSIONS[0]}..${SUPPORTED_VERSIONS.at(-1)}]

Starts a throwaway PostgreSQL (18 by default) from the embedded binaries, streams some of its WAL
with the \`wal receive\` code, lists the files, then removes everything.
`;

/** The demo's command line: `--server-version=N` and `--help`; exit status 0 or 1, like `wal`. */
async function main(args: string[]): Promise<number> {
  const logger = new Logger({ program: PROGRAM, output: process.stderr });
  try {
    const { values } = parseArgs({
      args,
      options: { 'server-version': { type: 'string', default: '18' }, help: { type: 'boolean' } },
    });
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    const text = values['server-version'];
    const version = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!isSupportedVersion(version)) {
      throw new Error(
        `invalid server version "${text}": use one of ${SUPPORTED_VERSIONS.join(', ')}, the versions whose binaries are embedded`,
      );
    }
    await runDemo(version);
    return 0;
  } catch (error) {
    reportError(logger, error);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
