import { readFileSync } from 'node:fs';
import { neverAnswering, type Script } from '@wal/fake-walsender';
import {
  checkDirectory,
  cleanUp,
  HAPPY,
  MEGABYTE,
  makeTarget,
  SEGMENT,
  shutDownFirstConnectionAt,
  startServer,
  waitUntil,
} from '@wal/stream-faults';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cliIsBuilt, cliTarget, startCli } from './cli-process.js';

/**
 * `wal receive` against a stalled or hostile server (issue 11): every wait for the server ends
 * on SIGINT/SIGTERM and on --receive-timeout, and a server that never reads our replies cannot
 * hold the exit. Without connect_timeout (PGCONNECT_TIMEOUT=0), so nothing but the receiver's own
 * bounds can end a wait.
 */

afterEach(cleanUp);

beforeAll(() => {
  if (!cliIsBuilt()) {
    throw new Error('apps/cli/dist is missing: build the CLI first (npx tsc -b apps/cli, or pnpm run build)');
  }
});

const NO_CONNECT_TIMEOUT = { env: { PGCONNECT_TIMEOUT: '0' }, limitMs: 30_000 };

/** Connection 1 streams until the server shuts down; later ones stop answering after the startup packet. */
function reconnectsStall(stalls: { count: number }): Script {
  const first = shutDownFirstConnectionAt(SEGMENT + SEGMENT / 2n);
  return async (session) => {
    if (session.connectionIndex === 1) return first(session);
    await session.acceptStartup();
    stalls.count += 1;
    await session.stall();
  };
}

describe('wal receive against a server that stalls', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    'a reconnect whose startup is never answered: %s ends it with exit 0',
    async (signal) => {
      const stalls = { count: 0 };
      const server = await startServer('happy', HAPPY, { script: reconnectsStall(stalls) });
      const { directory } = makeTarget();
      const cli = startCli([...cliTarget(server, directory), '-v'], NO_CONNECT_TIMEOUT);
      await waitUntil(() => stalls.count > 0, 'the reconnect to stall', 20_000);
      cli.child.kill(signal);
      const result = await cli.result;
      expect(result.timedOut).toBe(false);
      expect(result.code).toBe(0);
      expect(result.stderr).toMatch(/wal receive: received interrupt signal, exiting\n$/);
    },
    40_000,
  );

  it('--create-slot whose command is never answered: SIGTERM ends it with exit 1, saying so', async () => {
    const seen = { count: 0 };
    const server = await startServer('happy', HAPPY, {
      script: neverAnswering('CREATE_REPLICATION_SLOT', seen),
    });
    const cli = startCli(
      [
        '-h',
        server.host,
        '-p',
        String(server.port),
        '-U',
        'postgres',
        '-w',
        '--create-slot',
        '-S',
        'stalled',
      ],
      NO_CONNECT_TIMEOUT,
    );
    await waitUntil(() => seen.count > 0, 'CREATE_REPLICATION_SLOT');
    cli.child.kill('SIGTERM');
    const result = await cli.result;
    expect(result.timedOut).toBe(false);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'wal receive: error: could not send replication command "CREATE_REPLICATION_SLOT "stalled" PHYSICAL": ' +
        "stopped while waiting for the server's answer to CREATE_REPLICATION_SLOT\n",
    );
  });

  it.each([
    ['a stream', [] as string[], 0, ''],
    [
      '--drop-slot',
      ['--drop-slot', '-S', 'stalled'],
      1,
      "wal receive: error: stopped while waiting for the server's answer to IDENTIFY_SYSTEM\n",
    ],
  ] as const)(
    '%s whose IDENTIFY_SYSTEM is never answered: SIGTERM ends it',
    async (_case, args, code, stderr) => {
      const seen = { count: 0 };
      const server = await startServer('happy', HAPPY, { script: neverAnswering('IDENTIFY_SYSTEM', seen) });
      const { directory } = makeTarget();
      const cli = startCli([...cliTarget(server, directory), ...args], NO_CONNECT_TIMEOUT);
      await waitUntil(() => seen.count > 0, 'IDENTIFY_SYSTEM');
      cli.child.kill('SIGTERM');
      const result = await cli.result;
      expect(result.timedOut).toBe(false);
      expect(result.signal).toBeNull();
      expect(result.code).toBe(code);
      expect(result.stderr).toBe(stderr);
    },
  );

  it("--receive-timeout bounds the first connection's commands: IDENTIFY_SYSTEM never answered, exit 1", async () => {
    const seen = { count: 0 };
    const server = await startServer('happy', HAPPY, { script: neverAnswering('IDENTIFY_SYSTEM', seen) });
    const { directory } = makeTarget();
    const result = await startCli(
      [...cliTarget(server, directory), '--receive-timeout', '1'],
      NO_CONNECT_TIMEOUT,
    ).result;
    expect(result.timedOut).toBe(false);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'wal receive: error: no answer from the server to IDENTIFY_SYSTEM within 1000 ms\n',
    );
  }, 30_000);

  it('--receive-timeout bounds a reconnect whose startup is never answered: retried like any failure', async () => {
    const stalls = { count: 0 };
    const server = await startServer('happy', HAPPY, { script: reconnectsStall(stalls) });
    const { directory } = makeTarget();
    const cli = startCli([...cliTarget(server, directory), '--receive-timeout', '1'], NO_CONNECT_TIMEOUT);
    await waitUntil(() => stalls.count > 0, 'the reconnect to stall', 20_000);
    await waitUntil(() => stalls.count > 1, 'the timed-out reconnect to be retried', 20_000);
    cli.child.kill('SIGTERM');
    const retried = await cli.result;
    expect(retried.code).toBe(0);
    expect(retried.stderr).toMatch(
      /wal receive: error: the server did not complete the connection within 1000 ms\nwal receive: disconnected; waiting \d+ seconds to try again\n/,
    );
  }, 40_000);
});

/** Resident memory of process `pid` in bytes (Linux /proc), 0 once it is gone. */
function residentBytes(pid: number | undefined): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

describe('wal receive against a server that floods keepalives and never reads', () => {
  it('stays small while the server stalls, and SIGTERM ends it with exit 0 and the WAL received kept', async () => {
    const flood = { sent: 0, blockedSince: undefined as number | undefined };
    const server = await startServer('happy', HAPPY, {
      script: (session) =>
        session.serveDefault({
          async onStream(request) {
            await session.sendWal(request.startLsn, request.startLsn + SEGMENT / 2n, {
              timeline: request.timeline,
            });
            await session.floodReplyRequests(flood);
          },
        }),
    });
    const { directory } = makeTarget();
    const cli = startCli([...cliTarget(server, directory), '-v'], { ...NO_CONNECT_TIMEOUT, limitMs: 90_000 });
    let mostResident = 0;
    // Until the server cannot send any more (the receiver stopped reading), or the receiver grew far
    // beyond what a bounded one needs (it queues a reply per keepalive: about 1 GB in 20 s).
    await waitUntil(
      () => {
        mostResident = Math.max(mostResident, residentBytes(cli.child.pid));
        const since = flood.blockedSince;
        return mostResident > 400 * MEGABYTE || (since !== undefined && Date.now() - since > 1000);
      },
      'the flooding server to stall',
      60_000,
    );
    expect(flood.sent).toBeGreaterThan(1000);
    expect(mostResident).toBeLessThan(400 * MEGABYTE);
    cli.child.kill('SIGTERM');
    const result = await cli.result;
    expect(result.timedOut).toBe(false);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/wal receive: received interrupt signal, exiting\n$/);
    const stored = checkDirectory(directory, server);
    expect(stored.problems).toEqual([]);
    expect(stored.segments).toMatchObject([{ partial: true }]);
    expect(stored.segments[0]!.dataLength).toBeGreaterThan(Number(SEGMENT / 4n));
  }, 120_000);
});
