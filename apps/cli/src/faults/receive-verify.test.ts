import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  cleanUp,
  HAPPY,
  lsnText,
  MEGABYTE,
  makeTarget,
  onFirstConnection,
  SEGMENT,
  segmentName,
  startServer,
  statusUpdates,
} from '@wal/stream-faults';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cliIsBuilt, cliTarget, runCli } from './cli-process.js';

/**
 * `wal receive --verify` against the fake walsender sending one corrupt record (a flipped bit in
 * its body) in the second segment, after good WAL: the receiver must stop with
 * WAL_ERR_VERIFY_CORRUPT_WAL naming that record's LSN, keep every byte before it, and never
 * report a flush position past it. Without --verify it stores the corrupt record as
 * pg_receivewal does.
 */

afterEach(cleanUp);

beforeAll(() => {
  if (!cliIsBuilt()) throw new Error('apps/cli/dist is missing: build the CLI first');
});

interface Corrupt {
  /** The corrupt record's LSN. */
  lsn: bigint;
}

/** Streams good WAL up to the corrupt record's page, then 16 pages with a flipped bit in that record. */
function corruptStream(corrupt: Corrupt) {
  return onFirstConnection((session) => ({
    async onStream(request) {
      const generator = request.timeline.generator;
      const record = generator
        .recordsBetween(2n * SEGMENT + 300_000n, 3n * SEGMENT)
        .find(
          (candidate) =>
            (candidate.lsn % 8192n) + BigInt(candidate.totalLength) < 8192n && candidate.totalLength > 40,
        )!;
      corrupt.lsn = record.lsn;
      const page = record.lsn - (record.lsn % 8192n);
      await session.sendWal(request.startLsn, page, { timeline: request.timeline, walEnd: request.endLsn });
      const bytes = Buffer.from(generator.read(page, page + 16n * 8192n));
      const at = Number(record.lsn - page) + 30;
      bytes.writeUInt8(bytes.readUInt8(at) ^ 0x08, at);
      await session.sendXLogData(page, bytes, request.endLsn);
      await session.keepalive({ replyRequested: true, walEnd: page + 16n * 8192n });
      await session.stall(15_000);
    },
  }));
}

describe('wal receive --verify', () => {
  it('stops at a corrupt record with a coded error naming its LSN, keeping the WAL before it', async () => {
    const corrupt: Corrupt = { lsn: 0n };
    const server = await startServer('happy', HAPPY, { script: corruptStream(corrupt) });
    const { directory } = makeTarget();
    const result = await runCli([...cliTarget(server, directory), '--verify', '-n', '-s', '1']);
    expect(result.timedOut).toBe(false);
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain(`wal receive: error: received WAL is corrupt at ${lsnText(corrupt.lsn)}`);
    const good = server.model.timeline(1)!.generator;
    expect(readFileSync(join(directory, segmentName(1, 1n, MEGABYTE)))).toEqual(good.segmentBytes(1n));
    const partial = readFileSync(join(directory, segmentName(1, 2n, MEGABYTE, true)));
    const kept = Number(corrupt.lsn - 2n * SEGMENT);
    expect(partial.subarray(0, kept).equals(good.segmentBytes(2n).subarray(0, kept))).toBe(true);
    expect(partial.subarray(kept).every((byte) => byte === 0)).toBe(true);
    const flushed = statusUpdates(server).map((update) => update.flushLsn);
    expect(flushed.length).toBeGreaterThan(0);
    expect(flushed.every((lsn) => lsn <= corrupt.lsn)).toBe(true);
  }, 30_000);

  it('without --verify stores the corrupt record, as pg_receivewal does', async () => {
    const corrupt: Corrupt = { lsn: 0n };
    const server = await startServer('happy', HAPPY, { script: corruptStream(corrupt) });
    const { directory } = makeTarget();
    const result = await runCli([...cliTarget(server, directory), '-n', '-s', '1'], { limitMs: 5_000 });
    expect(result.stderr).not.toContain('corrupt');
    const partial = readFileSync(join(directory, segmentName(1, 2n, MEGABYTE, true)));
    const at = Number(corrupt.lsn - 2n * SEGMENT) + 30;
    const good = server.model.timeline(1)!.generator.segmentBytes(2n);
    expect(partial[at]).toBe(good[at]! ^ 0x08);
  }, 30_000);
});
