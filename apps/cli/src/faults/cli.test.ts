import { errorFields, type Session } from '@wal/fake-walsender';
import {
  checkDirectory,
  cleanUp,
  expectAllStored,
  expectOneKeepaliveAnswer,
  FLUSH_LSN,
  HAPPY,
  lsnText,
  makeTarget,
  SEGMENT,
  shutDownFirstConnectionAt,
  startServer,
  statusUpdates,
  strayFiles,
  waitUntil,
} from '@wal/stream-faults';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cliIsBuilt, cliTarget, runCli, startCli } from './cli-process.js';

/**
 * `wal receive` (the built binary, bin/run.js over dist/) against the fake walsender: a
 * representative subset of the scenarios, checking exit codes, messages and the stored files. The
 * library suite (packages/stream-faults) covers every scenario; the CLI only adds flags, output and
 * exit codes (its retry delay is pg_receivewal's fixed 5 s, so only one case reconnects).
 */

afterEach(cleanUp);

beforeAll(() => {
  if (!cliIsBuilt()) {
    throw new Error('apps/cli/dist is missing: build the CLI first (npx tsc -b apps/cli, or pnpm run build)');
  }
});

describe('wal receive against the fake walsender', () => {
  it('happy path: -E -v streams every segment, exit 0, pg_receivewal messages', async () => {
    const server = await startServer('happy', HAPPY);
    const { directory } = makeTarget();
    const result = await runCli([...cliTarget(server, directory), '-E', lsnText(FLUSH_LSN - 1n), '-n', '-v']);
    expect(result.timedOut).toBe(false);
    expect(result.stderr).toContain('wal receive: starting log streaming at 0/100000 (timeline 1)');
    expect(result.stderr).toContain('wal receive: finished segment at 0/200000 (timeline 1)');
    expect(result.stderr).toContain('wal receive: finished segment at 0/400000 (timeline 1)');
    expect(result.stderr).toContain(
      `wal receive: stopped log streaming at ${lsnText(FLUSH_LSN)} (timeline 1)`,
    );
    expect(result.code).toBe(0);
    expectAllStored(directory, server);
    expect(server.errors).toEqual([]);
  });

  it('-s 0: the keepalive asking for a reply is answered; SIGINT then stops with exit 0', async () => {
    const server = await startServer('keepalive-reply', HAPPY);
    const { directory } = makeTarget();
    const cli = startCli([...cliTarget(server, directory), '-s', '0']);
    await waitUntil(() => statusUpdates(server).length > 0, 'the reply of wal receive');
    const answered = statusUpdates(server);
    cli.child.kill('SIGINT');
    const result = await cli.result;
    expectOneKeepaliveAnswer(answered);
    expect(result.code).toBe(0);
    expectAllStored(directory, server);
  });

  it('wrong password (28P01): exit 1 at once, the server message, never the password', async () => {
    const server = await startServer('error-28P01', HAPPY);
    const { directory } = makeTarget();
    const result = await runCli(cliTarget(server, directory), { env: { PGPASSWORD: 'hunter2-secret' } });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/wal receive: error: .*password authentication failed for user "postgres"/);
    expect(result.stderr).not.toContain('hunter2');
    expect(result.stderr).not.toContain('disconnected');
  });

  it('WAL already removed (58P01): exit 1 with the advice to use a slot, no retry', async () => {
    const server = await startServer('error-58P01', HAPPY);
    const { directory } = makeTarget();
    const result = await runCli(cliTarget(server, directory));
    expect(result.code).toBe(1);
    // The server's message as pg_receivewal prints it, the advice on a hint line of its own.
    expect(result.stderr).toMatch(
      /^wal receive: error: unexpected termination of replication stream: ERROR: {2}requested WAL segment 000000010000000000000001 has already been removed\nwal receive: hint: .*--slot/,
    );
    expect(server.connectionCount).toBeLessThanOrEqual(2);
  });

  it('slot active (55006) with -n: exit 1, "disconnected"', async () => {
    const server = await startServer('error-55006', HAPPY);
    const { directory } = makeTarget();
    const result = await runCli([...cliTarget(server, directory), '-S', 'busy', '-n']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('replication slot "busy" is active for PID 4242');
    expect(result.stderr.trimEnd().split('\n').at(-1)).toBe('wal receive: error: disconnected');
  });

  it('connection cut inside an XLogData payload with -n: exit 1, "disconnected", stored WAL intact', async () => {
    const server = await startServer('happy', HAPPY, {
      script: (session: Session) =>
        session.serveDefault({
          async onStream(request) {
            session.cutAtByte(session.connection.bytesSent + 3 * (30 + 128 * 1024) + 30 + 1000);
            await session.stream(request);
          },
        }),
    });
    const { directory } = makeTarget();
    const result = await runCli([...cliTarget(server, directory), '-n']);
    expect(result.code).toBe(1);
    expect(result.stderr.trimEnd().split('\n').at(-1)).toBe('wal receive: error: disconnected');
    const report = checkDirectory(directory, server);
    expect(report.problems).toEqual([]);
    // The three whole messages before the cut are stored.
    expect(report.segments).toHaveLength(1);
    expect(report.segments[0]!.dataLength).toBeGreaterThan(3 * 128 * 1024 - 64);
  });

  it.each([
    ['absurd-length', /payload of 2147483628 bytes/],
    ['data-start-back', /got WAL data at 0\/102000, expected 0\/104000/],
  ])('malformed (%s) with -n: exit 1 with a clear message', async (variant, message) => {
    const server = await startServer(`malformed-${variant}`, HAPPY);
    const { directory } = makeTarget();
    const result = await runCli([...cliTarget(server, directory), '-n']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(message);
    expect(checkDirectory(directory, server).problems).toEqual([]);
  });

  it('history file named ../00000002.history: exit 1 without retrying, nothing written outside', async () => {
    const server = await startServer('malformed-history-path-traversal', HAPPY);
    const { root, directory } = makeTarget();
    const result = await runCli(cliTarget(server, directory));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('server reported unexpected history file name for timeline 2');
    expect(result.stderr).not.toContain('waiting 5 seconds');
    expect(strayFiles(root)).toEqual([]);
    expect(checkDirectory(directory, server).histories).toEqual([]);
  });

  it("a server's NOTICE and ERROR with line breaks, CR and ESC: printed escaped, one line per field", async () => {
    const server = await startServer('happy', HAPPY, {
      script: (session: Session) =>
        session.serveDefault({
          async onQuery(_sql, command) {
            if (command.kind !== 'START_REPLICATION') return false;
            await session.send({
              type: 'NoticeResponse',
              fields: { severity: 'WARNING', code: '01000', message: 'careful\u001b[2J\rnow' },
            });
            await session.error(
              errorFields('XX000', 'broken\nwal receive: error: forged\r\u001b]0;pwned\u0007', {
                detail: 'line one\nline two',
              }),
            );
            return true;
          },
        }),
    });
    const { directory } = makeTarget();
    const result = await runCli([...cliTarget(server, directory), '-n']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('WARNING:  careful\\x1b[2J\\rnow\n');
    expect(result.stderr).toContain('broken\\nwal receive: error: forged\\r\\x1b]0;pwned\\x07');
    expect(result.stderr).toContain('line one\\nline two');
    // Nothing the server sent reaches the terminal raw, and it forged no line of ours.
    expect(result.stderr).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
    expect(result.stderr.split('\n').filter((line) => line.startsWith('wal receive: error: forged'))).toEqual(
      [],
    );
  });

  it('server shutdown (COPY 0 + close): waits 5 s, reconnects, continues with no gap, exit 0 at endpos', async () => {
    const stopAt = 3n * SEGMENT + 0x28000n;
    const server = await startServer('happy', HAPPY, {
      script: shutDownFirstConnectionAt(stopAt),
    });
    const { directory } = makeTarget();
    const result = await runCli([...cliTarget(server, directory), '-E', lsnText(FLUSH_LSN - 1n), '-v']);
    expect(result.stderr).toContain('replication stream was terminated before stop point');
    expect(result.stderr).toContain('wal receive: disconnected; waiting 5 seconds to try again');
    expect(result.stderr).toContain('wal receive: starting log streaming at 0/300000 (timeline 1)');
    expect(result.code).toBe(0);
    expectAllStored(directory, server);
    expect(server.errors).toEqual([]);
  }, 30_000);
});
