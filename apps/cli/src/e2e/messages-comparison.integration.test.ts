import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CLI_BIN,
  clusterEnvironment,
  generateWal,
  pgReceivewalComparison,
  pgReceivewalPath,
  RunningProcess,
  type RunResult,
  scalar,
  useSuiteServer,
  waitUntil,
} from './harness.js';

/**
 * `wal receive` installed under the name `pg_receivewal` (a symlink to bin/run.js, found on PATH)
 * against PostgreSQL 15's own pg_receivewal, found on PATH the same way: for each situation both
 * run with LC_ALL=C and must write the same stderr, byte for byte, and exit with the same status.
 * Situations: refused command lines, slots that are missing or already there, users and
 * passwords the server refuses, directories that are missing or no directory, connection
 * failures, replication command errors with the server's HINT, a stream the server ends, a full
 * disk and a compressed file that is a directory.
 *
 * Both programs are run by their name through PATH, as a shell runs them: glibc's getopt starts
 * its complaints with argv[0], which is then the bare name for both.
 */

const { version: VERSION, runnable } = pgReceivewalComparison('message comparison');

/** Mounts a tmpfs of `size` at `directory`; false where this machine does not let us (not root). */
function mountTmpfs(directory: string, size: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', directory], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const REPLICATOR = 'replicator';
const PASSWORD = 'correct horse';
const NO_REPLICATION = 'no_replication';

type Program = 'pg_receivewal' | 'wal';

/** A situation: the arguments, and the environment both programs get beside the cluster's. */
interface Situation {
  readonly args: readonly string[];
  readonly env?: Record<string, string>;
}

describe.skipIf(!runnable)(`wal receive as pg_receivewal: messages of PostgreSQL ${VERSION}'s`, () => {
  const suite = useSuiteServer({
    version: VERSION,
    prefix: 'messages',
    table: 'filler',
    users: [
      { name: REPLICATOR, password: PASSWORD, replication: true },
      { name: NO_REPLICATION, password: PASSWORD, replication: false },
    ],
    hba: [
      `host replication ${REPLICATOR} 127.0.0.1/32 scram-sha-256`,
      'host all all 127.0.0.1/32 trust',
      'host replication all 127.0.0.1/32 trust',
      'local all all trust',
    ],
  });

  /** One directory per program holding a `pg_receivewal` symlink: ours to bin/run.js, theirs to theirs. */
  const pathDirectories = new Map<Program, string>();
  function pathDirectory(program: Program): string {
    let directory = pathDirectories.get(program);
    if (directory === undefined) {
      directory = join(suite.base, `path_${program}`);
      mkdirSync(directory);
      const target = program === 'wal' ? CLI_BIN : pgReceivewalPath();
      if (target === undefined) throw new Error('pg_receivewal is missing (WAL_REQUIRE_CLIENT_TOOLS=1)');
      symlinkSync(target, join(directory, 'pg_receivewal'));
      pathDirectories.set(program, directory);
    }
    return directory;
  }

  function start(program: Program, situation: Situation): RunningProcess {
    // bin/run.js starts with `#!/usr/bin/env node`: the node running the tests is on PATH too.
    const path = [pathDirectory(program), dirname(process.execPath), process.env.PATH ?? ''].join(':');
    const env = clusterEnvironment(suite.cluster, { LC_ALL: 'C', ...situation.env, PATH: path });
    return new RunningProcess(
      'pg_receivewal',
      situation.args,
      env,
      `${program}: pg_receivewal ${situation.args.join(' ')}`,
    );
  }

  async function run(program: Program, situation: Situation): Promise<RunResult> {
    return await start(program, situation).wait(45_000);
  }

  /** Runs both programs (each with `prepare`'s arguments for it) and expects the same stderr and status. */
  async function expectSame(prepare: (program: Program) => Situation): Promise<RunResult> {
    const theirs = await run('pg_receivewal', prepare('pg_receivewal'));
    const ours = await run('wal', prepare('wal'));
    expect({ stderr: ours.stderr, code: ours.code }).toEqual({ stderr: theirs.stderr, code: theirs.code });
    return theirs;
  }

  /** A fresh directory per program and situation. */
  function directoryFor(name: string, program: Program): string {
    return suite.directory(`${name}_${program}`);
  }

  it.each([
    ['an unknown long option', ['--bogus']],
    ['an unknown short option', ['-x']],
    ['a missing value', ['-D']],
    ['a missing value of a long option', ['--directory']],
    ['a value for an option without one', ['--no-loop=1']],
    ['an ambiguous prefix', ['--h']],
    ['--help after the first argument', ['-D', '.', '--help']],
    ['--version after the first argument', ['-D', '.', '--version']],
    ['an operand', ['-D', '.', 'extra']],
    ['both slot actions', ['--create-slot', '--drop-slot', '-S', 'a']],
    ['--create-slot without a slot', ['--create-slot']],
    ['--synchronous with --no-sync', ['-D', '.', '--synchronous', '--no-sync']],
    ['no directory', []],
    ['an end position that does not parse', ['-D', '.', '-E', 'xyz']],
    ['a status interval that is no number', ['-D', '.', '-s', 'abc']],
    ['a status interval out of range', ['-D', '.', '-s', '-1']],
    ['a gzip level out of range', ['-D', '.', '-Z', 'gzip:20']],
    ['a level for no compression', ['-D', '.', '--compress', 'none:1']],
    ['an unknown compression method', ['-D', '.', '-Z', 'bogus']],
    ['zstd', ['-D', '.', '-Z', 'zstd']],
    ['a connection option that does not exist', ['-D', '.', '-d', 'bogus=1']],
    ['a port that is no number', ['-D', '.', '-d', 'port=abc']],
  ] as const)('a refused command line: %s', async (_what, args) => {
    const result = await expectSame(() => ({ args }));
    expect(result.code).toBe(1);
  });

  it('a directory that does not exist, and a file given as the directory', async () => {
    await expectSame(() => ({ args: ['-D', join(suite.base, 'missing'), '-n'] }));
    const file = join(suite.base, 'a_file');
    writeFileSync(file, 'x');
    await expectSame(() => ({ args: ['-D', file, '-n'] }));
  });

  it('a slot that does not exist, streaming and dropping', async () => {
    const streamed = await expectSame((program) => ({
      args: ['-D', directoryFor('missing_slot', program), '-S', 'no_such_slot', '-n'],
    }));
    expect(streamed.stderr).toMatch(/replication slot "no_such_slot" does not exist/);
    const dropped = await expectSame(() => ({ args: ['--drop-slot', '-S', 'no_such_slot'] }));
    expect(dropped.stderr).toMatch(/DROP_REPLICATION_SLOT/);
  });

  it('--create-slot of a slot that exists, and of a name the server refuses with a HINT', async () => {
    await suite.cluster.sql("SELECT pg_create_physical_replication_slot('taken')");
    const taken = await expectSame(() => ({ args: ['--create-slot', '-S', 'taken'] }));
    expect(taken.stderr).toMatch(/ERROR: {2}replication slot "taken" already exists/);
    const invalid = await expectSame(() => ({ args: ['--create-slot', '-S', 'Not Valid'] }));
    expect(invalid.stderr).toMatch(/\nHINT: {2}/);
  });

  it('a slot another client streams from: START_REPLICATION refused', async () => {
    const { cluster } = suite;
    await cluster.sql("SELECT pg_create_physical_replication_slot('held')");
    const holder = start('pg_receivewal', {
      args: ['-D', suite.directory('held_holder'), '-S', 'held', '-n', '-d', 'application_name=holder'],
    });
    await waitUntil(
      async () =>
        (await scalar(cluster, "SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'held'")) !==
        null,
      { description: 'the slot held by a streaming pg_receivewal' },
    );
    const result = await expectSame((program) => ({
      args: ['-D', directoryFor('held', program), '-S', 'held', '-n'],
    }));
    expect(result.stderr).toMatch(
      /^pg_receivewal: error: could not send replication command "START_REPLICATION": ERROR: {2}replication slot "held" is active for PID \d+\n/,
    );
    holder.signal('SIGTERM');
    await holder.wait(30_000);
  });

  it.each([
    ['a user that does not exist', ['-U', 'nobody'], {}],
    ['a user without REPLICATION', ['-U', NO_REPLICATION], {}],
    ['a wrong password', ['-U', REPLICATOR, '-w'], { PGPASSWORD: 'wrong password' }],
    ['no password with -w', ['-U', REPLICATOR, '-w'], {}],
  ] as const)('the server refuses the connection: %s', async (name, args, env) => {
    const result = await expectSame((program) => ({
      args: ['-D', directoryFor(name.replaceAll(' ', '_'), program), '-n', ...args],
      env,
    }));
    expect(result.stderr).toMatch(
      /^pg_receivewal: error: connection to server at "127\.0\.0\.1", port \d+ failed: /,
    );
  });

  it('nothing listens at the port, and a host name that does not resolve', async () => {
    const refused = await expectSame((program) => ({
      args: ['-D', directoryFor('refused', program), '-n', '-p', '1'],
    }));
    expect(refused.stderr).toMatch(/failed: Connection refused\n\tIs the server running/);
    await expectSame((program) => ({
      args: ['-D', directoryFor('unresolved', program), '-n', '-h', 'no-such-host.invalid'],
    }));
    // libpq reports every host it tried, one after the other.
    const hosts = await expectSame((program) => ({
      args: ['-D', directoryFor('two_hosts', program), '-n', '-d', 'host=127.0.0.1,127.0.0.1 port=1,2'],
    }));
    expect(hosts.stderr).toMatch(
      /port 1 failed: .*\n.*\nconnection to server at "127\.0\.0\.1", port 2 failed: /,
    );
    await expectSame((program) => ({
      args: ['-D', directoryFor('no_socket', program), '-n', '-h', join(suite.base, 'no_socket_here')],
    }));
  });

  it('SSL required of a server without SSL', async () => {
    const result = await expectSame((program) => ({
      args: ['-D', directoryFor('ssl_required', program), '-n', '-d', 'sslmode=require'],
    }));
    expect(result.stderr).toMatch(/failed: server does not support SSL, but SSL was required\n$/);
  });

  /** Starts `program` streaming, waits for its walsender and hands the walsender's pid to `end`. */
  async function streamAndEnd(
    name: string,
    program: Program,
    end: (walsenderPid: number) => Promise<void>,
  ): Promise<RunResult> {
    const applicationName = `${name}_${program}`;
    const receiver = start(program, {
      args: ['-D', directoryFor(name, program), '-n', '-d', `application_name=${applicationName}`],
    });
    let pid: string | null = null;
    await waitUntil(
      async () => {
        if (receiver.exited) throw new Error(`${receiver.description} exited:\n${receiver.stderr}`);
        pid = await scalar(
          suite.cluster,
          `SELECT pid FROM pg_stat_replication WHERE application_name = '${applicationName}' AND state = 'streaming'`,
        );
        return pid !== null;
      },
      { description: `${applicationName} streaming` },
    );
    await end(Number(pid));
    return await receiver.wait(30_000);
  }

  /**
   * Issue 11's informational lines (`not renaming "…partial", segment is not complete`) are tested
   * with the rest of them; here only the error lines are compared.
   */
  const errorLines = (stderr: string): string =>
    stderr
      .split(/(?=^pg_receivewal: )/m)
      .filter((line) => !line.startsWith('pg_receivewal: not renaming '))
      .join('');

  it('the server ends the stream with an error: unexpected termination of replication stream', async () => {
    const terminate = async (pid: number): Promise<void> => {
      await suite.cluster.sql(`SELECT pg_terminate_backend(${pid})`);
    };
    const theirs = await streamAndEnd('terminated', 'pg_receivewal', terminate);
    const ours = await streamAndEnd('terminated', 'wal', terminate);
    expect(ours.code).toBe(theirs.code);
    expect(errorLines(ours.stderr)).toBe(errorLines(theirs.stderr));
    expect(theirs.stderr).toMatch(
      /pg_receivewal: error: unexpected termination of replication stream: FATAL: {2}terminating connection/,
    );
  });

  it('the connection breaks while streaming: could not receive data from WAL stream', async () => {
    const { cluster } = suite;
    const crash = async (pid: number): Promise<void> => {
      process.kill(pid, 'SIGKILL');
    };
    const serverBack = async (): Promise<void> => {
      // The postmaster restarts after a backend was killed.
      await waitUntil(
        async () =>
          await cluster.sql('SELECT 1').then(
            () => true,
            () => false,
          ),
        {
          timeoutMs: 60_000,
          description: 'the server back after the crash restart',
        },
      );
    };
    const theirs = await streamAndEnd('crashed', 'pg_receivewal', crash);
    await serverBack();
    const ours = await streamAndEnd('crashed', 'wal', crash);
    await serverBack();
    expect(ours.code).toBe(theirs.code);
    expect(errorLines(ours.stderr)).toBe(errorLines(theirs.stderr));
    expect(theirs.stderr).toMatch(
      /pg_receivewal: error: could not receive data from WAL stream: server closed the connection unexpectedly\n/,
    );
  }, 120_000);

  it.each(['fast', 'immediate'] as const)(
    'the server shuts down (%s) while streaming',
    async (mode) => {
      const { cluster } = suite;
      const shutDown = async (): Promise<void> => {
        await cluster.shutdown(mode);
      };
      const results: RunResult[] = [];
      for (const program of ['pg_receivewal', 'wal'] as const) {
        try {
          results.push(await streamAndEnd(`shutdown_${mode}`, program, shutDown));
        } finally {
          await cluster.start();
        }
      }
      const [theirs, ours] = results as [RunResult, RunResult];
      expect(ours.code).toBe(theirs.code);
      expect(errorLines(ours.stderr)).toBe(errorLines(theirs.stderr));
    },
    120_000,
  );

  /**
   * A full disk (a 3 MiB tmpfs for three 1 MiB segments and more WAL than that): both pad a new
   * segment with zeros when they open it, so both fail opening the fourth. Each streams through a
   * slot of its own, both made by one statement, so both start at the same segment and name the
   * same file. With -n both end there; without it both say they wait, and the stderr up to that
   * line is compared (the retry itself differs: ADR 0006 item 3).
   */
  it.for<[label: string, noLoop: boolean]>([
    ['with -n', true],
    ['without -n', false],
  ])(
    'a full disk (%s): "No space left on device"',
    { timeout: 120_000 },
    async ([label, noLoop], context) => {
      const { cluster } = suite;
      const prefix = noLoop ? 'full' : 'full_loop';
      const slots = { pg_receivewal: `${prefix}_theirs`, wal: `${prefix}_ours` } as const;
      await cluster.sql(
        `SELECT pg_create_physical_replication_slot('${slots.pg_receivewal}', true), pg_create_physical_replication_slot('${slots.wal}', true)`,
      );
      try {
        const restartLsns = await cluster.sql(
          `SELECT DISTINCT restart_lsn FROM pg_replication_slots WHERE slot_name IN ('${slots.pg_receivewal}', '${slots.wal}')`,
        );
        expect(restartLsns).toHaveLength(1);
        await generateWal(cluster, 'filler', 4 * 1024 * 1024);
        await cluster.sql('SELECT pg_switch_wal()');
        const results = new Map<Program, RunResult>();
        for (const program of ['pg_receivewal', 'wal'] as const) {
          const directory = directoryFor(prefix, program);
          if (!mountTmpfs(directory, '3m')) {
            context.skip('cannot mount a tmpfs here (needs root)');
            return;
          }
          try {
            const args = ['-D', directory, '-S', slots[program], ...(noLoop ? ['-n'] : [])];
            results.set(program, await fillDisk(program, args, noLoop));
          } finally {
            execFileSync('umount', ['-l', directory]);
          }
        }
        const theirs = results.get('pg_receivewal')!;
        const ours = results.get('wal')!;
        expect(theirs.stderr, label).toMatch(
          /^pg_receivewal: error: could not open write-ahead log file "[0-9A-F]{24}\.partial": No space left on device\npg_receivewal: /,
        );
        expect(theirs.stderr.split('\n')[1]).toBe(
          noLoop
            ? 'pg_receivewal: error: disconnected'
            : 'pg_receivewal: disconnected; waiting 5 seconds to try again',
        );
        expect({ stderr: ours.stderr, code: ours.code }).toEqual({
          stderr: theirs.stderr,
          code: theirs.code,
        });
      } finally {
        // A killed receiver's walsender may hold its slot for a moment.
        await waitUntil(
          async () =>
            (await scalar(
              cluster,
              `SELECT count(*) FROM pg_replication_slots WHERE active AND slot_name IN ('${slots.pg_receivewal}', '${slots.wal}')`,
            )) === '0',
          { description: `slots ${slots.pg_receivewal} and ${slots.wal} released` },
        );
        for (const slot of Object.values(slots)) {
          await cluster.sql(`SELECT pg_drop_replication_slot('${slot}')`);
        }
      }
    },
  );

  /**
   * Runs `program` until it exits (-n), or until it says it waits to try again, then kills it and
   * keeps its stderr up to that line (the exit status is then the kill's, the same for both).
   */
  async function fillDisk(program: Program, args: readonly string[], noLoop: boolean): Promise<RunResult> {
    if (noLoop) return await run(program, { args });
    const receiver = start(program, { args });
    const waiting = /^pg_receivewal: disconnected; waiting \d+ seconds to try again\n/m;
    await receiver.waitForStderr(waiting);
    const result = await receiver.killHard();
    const match = waiting.exec(result.stderr)!;
    return { ...result, stderr: result.stderr.slice(0, match.index + match[0].length) };
  }

  /**
   * A directory under the name of a complete compressed segment: the resume scan cannot read it.
   * Both run on the same directory, since the message names its path; neither writes.
   */
  it.each([
    ['.gz', 'could not read compressed file'],
    ['.lz4', 'could not read file'],
  ])('a compressed file (%s) that is a directory: %s', async (suffix, words) => {
    const directory = suite.directory(`directory_named${suffix.replace('.', '_')}`);
    const path = join(directory, `000000010000000000000001${suffix}`);
    mkdirSync(path);
    const theirs = await expectSame(() => ({ args: ['-D', directory] }));
    expect(theirs.stderr).toBe(`pg_receivewal: error: ${words} "${path}": Is a directory\n`);
    expect(theirs.code).toBe(1);
  });
});
