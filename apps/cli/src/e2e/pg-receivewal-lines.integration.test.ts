import { describe, expect, it } from 'vitest';
import {
  describeRun,
  flushLsn,
  generateWal,
  insertLsn,
  lsnToText,
  MEGABYTE,
  pgReceivewalComparison,
  type RunResult,
  runPgReceivewal,
  runReceive,
  startPgReceivewal,
  startReceive,
  useSuiteServer,
  waitForFile,
} from './harness.js';

/**
 * What `wal receive` prints on stderr, line for line against PostgreSQL 15's pg_receivewal run
 * with the same arguments on the same server: `not renaming "….partial", segment is not complete`
 * without -v; `starting log streaming at …` also when -E lies before the start; `stopped log
 * streaming at …` twice at an end position, as pg_receivewal says it when it decides to stop and
 * again when the server ended COPY; the server's NOTICEs as libpq prints them (a slot name of 70
 * characters is truncated to 63, and the server says so). Control characters in the server's
 * text are the one deliberate difference: escaped (ADR 0006). The program names differ (`wal
 * receive: ` and `pg_receivewal: `), so lines are compared after them; NOTICE lines have none.
 *
 * Determinism: both runs start at the segment of the server's flush position, with all WAL up to
 * past the end position flushed, so the walsender cuts both streams into the same messages and
 * both stop after the same one. Should the server write WAL of its own between them, the flush
 * position moves, and the pair is run again.
 */

const { version: VERSION, runnable } = pgReceivewalComparison('line comparison');

/** The line without the program name, so the two programs' lines compare. */
function withoutProgram(stderr: string): string {
  return stderr.replace(/^(?:pg_receivewal|wal receive): /gm, 'PROGRAM: ');
}

describe.skipIf(!runnable)(`wal receive prints what pg_receivewal ${VERSION} prints`, () => {
  const suite = useSuiteServer({ version: VERSION, prefix: 'lines', table: 'lines' });
  let run = 0;

  /**
   * pg_receivewal, then wal receive, each into a new directory with `args` (`DIR` is replaced by
   * it); again while the server's flush position moved meanwhile. Both must exit with `code`.
   */
  async function both(args: readonly string[], code = 0): Promise<{ pg: RunResult; wal: RunResult }> {
    const { cluster } = suite;
    for (let attempt = 1; ; attempt++) {
      const before = await flushLsn(cluster);
      run += 1;
      const withDirectory = (name: string) =>
        args.map((argument) => (argument === 'DIR' ? suite.directory(`${name}${run}`) : argument));
      const pg = await runPgReceivewal(cluster, withDirectory('pg'));
      const wal = await runReceive(cluster, withDirectory('wal'));
      expect(pg.code, `pg_receivewal ${args.join(' ')}: ${describeRun(pg)}`).toBe(code);
      expect(wal.code, `wal receive ${args.join(' ')}: ${describeRun(wal)}`).toBe(code);
      if ((await flushLsn(cluster)) === before) return { pg, wal };
      if (attempt >= 3) throw new Error('the server kept writing WAL of its own during three pairs of runs');
    }
  }

  /** An end position about 300 kB into the WAL from now, with flushed WAL past it. */
  async function endPositionAhead(): Promise<string> {
    const { cluster } = suite;
    await generateWal(cluster, 'lines', 300 * 1024);
    const end = await insertLsn(cluster);
    await generateWal(cluster, 'lines', 64 * 1024);
    expect(await flushLsn(cluster)).toBeGreaterThan(end);
    // Not at a segment boundary: the .partial is kept, and both programs say so.
    expect(end % BigInt(MEGABYTE)).not.toBe(0n);
    return lsnToText(end);
  }

  it('-E inside a segment, without -v: only "not renaming …, segment is not complete"', async () => {
    const end = await endPositionAhead();
    const { pg, wal } = await both(['--directory', 'DIR', '--endpos', end, '--no-loop']);
    expect(pg.stderr).toMatch(
      /^pg_receivewal: not renaming "[0-9A-F]{24}\.partial", segment is not complete\n$/,
    );
    expect(withoutProgram(wal.stderr)).toBe(withoutProgram(pg.stderr));
  }, 60_000);

  it('-E with -v: starting, stopped, not renaming, stopped again', async () => {
    const end = await endPositionAhead();
    const { pg, wal } = await both(['--directory', 'DIR', '--endpos', end, '--no-loop', '--verbose']);
    expect(pg.stderr.match(/stopped log streaming at/g)).toHaveLength(2);
    expect(withoutProgram(wal.stderr)).toBe(withoutProgram(pg.stderr));
  }, 60_000);

  it('-E before the start point, with -v: starting log streaming, then stopped there, once', async () => {
    const { pg, wal } = await both(['--directory', 'DIR', '--endpos', '0/10', '--no-loop', '--verbose']);
    expect(pg.stderr).toMatch(
      /^pg_receivewal: starting log streaming at .*\npg_receivewal: stopped log streaming at /,
    );
    expect(withoutProgram(wal.stderr)).toBe(withoutProgram(pg.stderr));
  }, 60_000);

  it('SIGINT while streaming, with -v: interrupt, not renaming, interrupt again, exit 0', async () => {
    const { cluster } = suite;
    const stderr: Record<'pg' | 'wal', string> = { pg: '', wal: '' };
    for (const program of ['pg', 'wal'] as const) {
      run += 1;
      const directory = suite.directory(`signal-${program}${run}`);
      const args = ['--directory', directory, '--verbose'];
      const receiver = program === 'pg' ? startPgReceivewal(cluster, args) : startReceive(cluster, args);
      // COPY runs once the segment file is open.
      await waitForFile(directory, /\.partial$/);
      receiver.signal('SIGINT');
      const result = await receiver.wait(30_000);
      expect(result.code, describeRun(result)).toBe(0);
      // Where each started depends on the WAL the server wrote meanwhile: compare without it.
      stderr[program] = withoutProgram(result.stderr)
        .replace(/ at [0-9A-F]+\/[0-9A-F]+ /g, ' at X/X ')
        .replace(/"[0-9A-F]{24}\.partial"/g, '"SEGMENT.partial"');
    }
    expect(stderr.pg).toMatch(
      /^PROGRAM: starting log streaming at .*\nPROGRAM: received interrupt signal, exiting\nPROGRAM: not renaming "SEGMENT\.partial", segment is not complete\nPROGRAM: received interrupt signal, exiting\n$/,
    );
    expect(stderr.wal).toBe(stderr.pg);
  }, 60_000);

  it("control characters in the server's error text are printed escaped, where pg_receivewal prints them raw", async () => {
    const { cluster } = suite;
    // The server quotes the slot name in its error; a quoted identifier may hold any character.
    const slot = 'x\ny\u001b[31mz';
    const args = (name: string) => ['--directory', suite.directory(name), '--create-slot', '--slot', slot];
    const pg = await runPgReceivewal(cluster, args(`escape-pg${++run}`));
    const wal = await runReceive(cluster, args(`escape-wal${run}`));
    expect(pg.code, describeRun(pg)).toBe(1);
    expect(wal.code, describeRun(wal)).toBe(1);
    // The oracle: the server did send them, and pg_receivewal passes them on.
    expect(pg.stderr).toContain('ERROR:  replication slot name "x\ny\u001b[31mz" contains invalid character');
    expect(wal.stderr).toContain(
      'ERROR:  replication slot name "x\\ny\\x1b[31mz" contains invalid character',
    );
    expect(wal.stderr).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
  }, 60_000);

  it("a 70-character slot name: the server's NOTICE that it is truncated, for every command that names it", async () => {
    const slot = 's'.repeat(70);
    const { cluster } = suite;
    const end = await endPositionAhead();
    const actions = [['--create-slot'], ['--endpos', end], ['--drop-slot']];
    let outputs: Record<'pg' | 'wal', string[]>;
    for (let attempt = 1; ; attempt++) {
      const before = await flushLsn(cluster);
      // One program after the other with the same slot, so the NOTICE texts are the same.
      outputs = { pg: [], wal: [] };
      for (const program of ['pg', 'wal'] as const) {
        for (const action of actions) {
          run += 1;
          const args = ['--directory', suite.directory(`slot-${program}${run}`), '--slot', slot, '--no-loop'];
          const result = await (program === 'pg' ? runPgReceivewal : runReceive)(cluster, [
            ...args,
            ...action,
            '--verbose',
          ]);
          expect(result.code, `${program} ${action.join(' ')}: ${describeRun(result)}`).toBe(0);
          outputs[program].push(withoutProgram(result.stderr));
        }
      }
      if ((await flushLsn(cluster)) === before) break;
      if (attempt >= 3) throw new Error('the server kept writing WAL of its own during three rounds of runs');
    }
    const truncated = `NOTICE:  identifier "${slot}" will be truncated to "${slot.slice(0, 63)}"\n`;
    expect(outputs.pg[0]).toContain(truncated);
    // READ_REPLICATION_SLOT and START_REPLICATION name it.
    expect(outputs.pg[1]!.split(truncated)).toHaveLength(3);
    expect(outputs.pg[2]).toContain(truncated);
    expect(outputs.wal).toEqual(outputs.pg);
  }, 90_000);
});
