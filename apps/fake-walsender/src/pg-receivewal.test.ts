import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createFakeWalsender, type FakeWalsenderOptions } from './server.js';

/**
 * The reference client as oracle: PostgreSQL 15's own pg_receivewal must stream from the fake
 * server, write exactly the generated WAL, follow its timeline switch, and fail where a real
 * server's behaviour makes it fail. Skipped without the Debian client tools; with
 * WAL_REQUIRE_CLIENT_TOOLS=1 (CI) their absence fails.
 */
const clientBin = process.env.WAL_PG_CLIENT_BIN ?? '/usr/lib/postgresql/15/bin';
const pgReceivewal = join(clientBin, 'pg_receivewal');
const available = existsSync(pgReceivewal);
const required = process.env.WAL_REQUIRE_CLIENT_TOOLS === '1';
const MB = 1024 * 1024;

const directories: string[] = [];
afterAll(async () => {
  await Promise.all(directories.map((directory) => rm(directory, { recursive: true, force: true })));
});

async function receive(
  options: FakeWalsenderOptions,
  arguments_: string[],
  prepare?: (directory: string) => Promise<void>,
): Promise<{
  code: number;
  stderr: string;
  directory: string;
  server: Awaited<ReturnType<typeof createFakeWalsender>>;
}> {
  const server = await createFakeWalsender(options);
  const directory = await mkdtemp(join(tmpdir(), 'fake-walsender-receivewal-'));
  directories.push(directory);
  await prepare?.(directory);
  try {
    const { code, stderr } = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(
        pgReceivewal,
        [
          '-D',
          directory,
          '-h',
          server.host,
          '-p',
          String(server.port),
          '-U',
          'replicator',
          '-w',
          '-v',
          ...arguments_,
        ],
        { timeout: 30_000, env: { ...process.env, PGPASSWORD: 'pw', PGSSLMODE: 'prefer' } },
        (error, _stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code ?? 1), stderr }),
      );
    });
    return { code, stderr, directory, server };
  } finally {
    await server.close();
  }
}

describe('PostgreSQL 15 pg_receivewal against the fake walsender', () => {
  if (!available) {
    if (required) {
      it(`needs ${pgReceivewal} (WAL_REQUIRE_CLIENT_TOOLS=1)`, () => {
        throw new Error(
          `WAL_REQUIRE_CLIENT_TOOLS=1 but ${pgReceivewal} does not exist; install postgresql-15 or set WAL_PG_CLIENT_BIN.`,
        );
      });
    } else {
      it.skip(`skipped: ${pgReceivewal} not found (set WAL_PG_CLIENT_BIN, or WAL_REQUIRE_CLIENT_TOOLS=1 to fail)`, () => {});
    }
    return;
  }

  it('happy over TLS + SCRAM: writes complete segments byte-equal to the generated WAL and a .partial', async () => {
    const { code, stderr, directory, server } = await receive(
      {
        scenario: 'happy',
        parameters: { segmentSizeMb: '1', version: '15' },
        tls: true,
        auth: { method: 'scram-sha-256', password: 'pw' },
      },
      ['--endpos', '0/380000', '-n'],
    );
    expect(stderr).toContain('starting log streaming at 0/100000 (timeline 1)');
    expect(code).toBe(0);
    expect((await readdir(directory)).sort()).toEqual([
      '000000010000000000000001',
      '000000010000000000000002',
      '000000010000000000000003.partial',
    ]);
    const generator = server.model.currentTimeline.generator;
    expect(
      (await readFile(join(directory, '000000010000000000000002'))).equals(generator.segmentBytes(2n)),
    ).toBe(true);
    const partial = await readFile(join(directory, '000000010000000000000003.partial'));
    expect(partial.length).toBe(MB);
    // pg_receivewal stops after the message that crosses endpos: everything up to there is the WAL.
    expect(partial.subarray(0, 0x80000).equals(generator.segmentBytes(3n).subarray(0, 0x80000))).toBe(true);
    expect(server.recorded.some((entry) => entry.message.type === 'SSLRequest')).toBe(true);
    expect(server.errors).toEqual([]);
  });

  it('timeline-switch: follows timeline 1 to its switch point, fetches the history, continues on 2', async () => {
    const { code, stderr, directory, server } = await receive(
      { scenario: 'timeline-switch', parameters: { segmentSizeMb: '1', version: '15' } },
      ['--endpos', '0/400000', '-n'],
      // A stored partial segment on timeline 1 makes pg_receivewal resume there (FindStreamingStart).
      (target) => writeFile(join(target, '000000010000000000000002.partial'), Buffer.alloc(MB)),
    );
    const switchLsn = server.model.timelines[0]!.endLsn!;
    expect(code).toBe(0);
    expect(stderr).toContain('switched to timeline 2 at');
    const files = (await readdir(directory)).sort();
    expect(files).toEqual([
      '000000010000000000000002.partial',
      '00000002.history',
      '000000020000000000000002',
      '000000020000000000000003',
      '000000020000000000000004.partial',
    ]);
    expect((await readFile(join(directory, '00000002.history'), 'utf8')).startsWith(`1\t0/`)).toBe(true);
    const newTimeline = server.model.timelines[1]!.generator;
    expect(
      (await readFile(join(directory, '000000020000000000000002'))).equals(newTimeline.segmentBytes(2n)),
    ).toBe(true);
    const old = await readFile(join(directory, '000000010000000000000002.partial'));
    const offset = Number(switchLsn % BigInt(MB));
    expect(old.subarray(0, offset).equals(newTimeline.segmentBytes(2n).subarray(0, offset))).toBe(true);
  });

  it('shutdown: answers the keepalive, then reports the stream terminated before the stop point', async () => {
    const { code, stderr, server } = await receive(
      { scenario: 'shutdown', parameters: { segmentSizeMb: '1', version: '15', reportedLsn: '0/100090' } },
      ['--endpos', '0/900000', '-n'],
    );
    expect(code).toBe(1);
    expect(stderr).toContain('replication stream was terminated before stop point');
    expect(server.recorded.some((entry) => entry.standby?.type === 'StandbyStatusUpdate')).toBe(true);
  });

  it('error-58P01: fails with the server error after CopyBothResponse', async () => {
    const { code, stderr } = await receive(
      { scenario: 'error-58P01', parameters: { segmentSizeMb: '1', version: '15' } },
      ['-n'],
    );
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /unexpected termination of replication stream: ERROR: {2}requested WAL segment 0000000100000000000000\w\w has already been removed/,
    );
  });

  it('error-55006: the slot exists but is active elsewhere; pg_receivewal reports the server error', async () => {
    const { code, stderr } = await receive(
      { scenario: 'error-55006', parameters: { segmentSizeMb: '1', version: '15' } },
      ['--slot', 'busy_slot', '-n'],
    );
    expect(code).toBe(1);
    expect(stderr).toContain('replication slot "busy_slot" is active for PID 4242');
  });

  it('start-at-timeline-end: the skipped COPY makes pg_receivewal fail (spec §3.1 5.3)', async () => {
    const { code, stderr } = await receive(
      { scenario: 'start-at-timeline-end', parameters: { segmentSizeMb: '1', version: '15' } },
      ['-n'],
      (target) => writeFile(join(target, '000000010000000000000002.partial'), Buffer.alloc(MB)),
    );
    expect(code).toBe(1);
    expect(stderr).toContain('could not send replication command "START_REPLICATION"');
  });

  it('error-28P01: reports the failed password authentication', async () => {
    const { code, stderr } = await receive({ scenario: 'error-28P01', parameters: { version: '15' } }, [
      '-n',
    ]);
    expect(code).toBe(1);
    expect(stderr).toContain('password authentication failed for user "replicator"');
  });

  it('malformed-unknown-copydata-type: pg_receivewal rejects the unknown streaming header', async () => {
    const { code, stderr } = await receive(
      { scenario: 'malformed-unknown-copydata-type', parameters: { segmentSizeMb: '1', version: '15' } },
      ['-n'],
    );
    expect(code).toBe(1);
    expect(stderr).toContain('unrecognized streaming header: "z"');
  });
});
