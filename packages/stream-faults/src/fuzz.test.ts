import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFakeWalsender, type FakeWalsender, type Session } from '@wal/fake-walsender';
import { DirectorySink } from '@wal/sink-fs';
import { type ReceiveEvent, receiveWal } from '@wal/stream';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkDirectory,
  connectTo,
  isCodedWalError,
  MEGABYTE,
  SEGMENT,
  segmentName,
  strayFiles,
} from './harness.js';

/**
 * Fuzzing the receiver with mutated server conversations. Each run is a happy conversation of the
 * fake walsender (startup, commands, COPY with WAL in random chunk sizes and keepalives) whose first
 * connection gets 1-3 byte mutations — flip, overwrite, insert, delete, or a cut of the connection —
 * anywhere in what the server sends except the WAL bytes themselves and the framing of XLogData
 * messages (their length field; no insert or delete in their header), so that the server's WAL
 * generator stays the oracle of what must be stored (see mutateOutput). Later connections are clean, so a receiver that
 * recovers must end with every byte of WAL stored.
 *
 * Invariants of every run: the receiver ends with success or a coded WalError (never another
 * exception), within its time limits (receiveTimeoutMs inside COPY, an overall limit around it),
 * writes nothing outside its directory, and every stored segment is the server's bytes (complete
 * ones exactly, `.partial` ones as a prefix plus zeros). A run that succeeds stored all WAL.
 *
 * CI runs a fixed seed and a bounded count; `WAL_FUZZ_RUNS=20000 WAL_FUZZ_SEED=… pnpm fuzz` runs
 * longer (any seed; a failure prints the seed and the shrunk counterexample to replay).
 */

const RUNS = Number(process.env.WAL_FUZZ_RUNS ?? 200);
const SEED = Number(process.env.WAL_FUZZ_SEED ?? 20_261_122);
/** Per run: the receiver's own timeout inside COPY, and the overall limit that declares a hang. */
const RECEIVE_TIMEOUT_MS = 300;
const RUN_LIMIT_MS = 5_000;

/** Most runs stay inside segment 1; every few runs cross into segment 2 (rename + new file). */
const SHORT_FLUSH_LSN = SEGMENT + 0x30000n;
const LONG_FLUSH_LSN = 2n * SEGMENT + 0x8000n;

type MutationKind = 'flip' | 'overwrite' | 'insert' | 'delete' | 'cut';
interface Mutation {
  /** Offset among the mutable bytes the server sends on the connection (WAL payloads excluded). */
  offset: number;
  kind: MutationKind;
  value: number;
  length: number;
}
interface Plan {
  mutations: Mutation[];
  /** XLogData chunk sizes in pages, cycled. */
  chunkPages: number[];
  /** After which chunks a keepalive goes out, and whether it asks for a reply. */
  keepalives: { afterChunk: number; replyRequested: boolean }[];
  long: boolean;
}

const mutationArbitrary: fc.Arbitrary<Mutation> = fc.record({
  // The startup and command answers are ~1.5 kB; XLogData/keepalive headers follow.
  offset: fc.oneof(fc.nat(1600), fc.nat(4000)),
  kind: fc.constantFrom<MutationKind>('flip', 'flip', 'overwrite', 'insert', 'delete', 'cut'),
  value: fc.nat(255),
  length: fc.integer({ min: 1, max: 4 }),
});

const planArbitrary: fc.Arbitrary<Plan> = fc.record({
  mutations: fc.array(mutationArbitrary, { minLength: 1, maxLength: 3 }),
  chunkPages: fc.array(fc.integer({ min: 1, max: 16 }), { minLength: 1, maxLength: 4 }),
  keepalives: fc.array(fc.record({ afterChunk: fc.nat(12), replyRequested: fc.boolean() }), { maxLength: 3 }),
  long: fc.nat(7).map((value) => value === 0),
});

/** Applies `mutations` to the mutable bytes written on one connection of the fake server. */
function mutateOutput(connection: Session['connection'], mutations: Mutation[]): void {
  const pending = [...mutations].sort((left, right) => left.offset - right.offset);
  let mutableOffset = 0;
  const write = connection.write.bind(connection);
  const mutate = (bytes: Buffer, xlogDataHeader = false): Buffer => {
    const start = mutableOffset;
    mutableOffset += bytes.length;
    let output = bytes;
    let shift = 0;
    while (pending.length > 0 && pending[0]!.offset < start + bytes.length) {
      const mutation = pending.shift()!;
      let at = mutation.offset - start + shift;
      let kind = mutation.kind;
      if (xlogDataHeader) {
        // A changed frame length or a byte inserted/deleted here would make WAL bytes of one frame
        // and header bytes of the next trade places: the receiver would store "WAL" the server
        // never generated, which no receiver that does not parse WAL pages can notice (pg_receivewal
        // cannot either). Only such length-preserving changes of the other fields are made here.
        if (at >= 1 && at <= 4) at += 4;
        if (kind === 'insert' || kind === 'delete') kind = 'flip';
      }
      if (output === bytes) output = Buffer.from(bytes);
      switch (kind) {
        case 'flip':
          output[at] = output[at]! ^ (1 << (mutation.value % 8));
          break;
        case 'overwrite':
          output[at] = mutation.value;
          break;
        case 'insert':
          output = Buffer.concat([
            output.subarray(0, at),
            Buffer.alloc(mutation.length, mutation.value),
            output.subarray(at),
          ]);
          shift += mutation.length;
          break;
        case 'delete':
          output = Buffer.concat([output.subarray(0, at), output.subarray(at + mutation.length)]);
          shift -= Math.min(mutation.length, output.length - at);
          break;
        case 'cut':
          connection.cutAtByte(connection.bytesSent + at);
          break;
      }
    }
    return output;
  };
  connection.write = (bytes: Buffer) => write(mutate(bytes));
  connection.writeMany = async (buffers: Buffer[]) => {
    // sendXLogData writes [30-byte header ('d', length, 'w', …), WAL bytes]: the WAL stays as it is.
    const walPayload = buffers.length === 2 && buffers[0]!.length === 30 && buffers[0]![5] === 0x77;
    for (const [index, buffer] of buffers.entries()) {
      await write(walPayload && index === 1 ? buffer : mutate(buffer, walPayload));
    }
  };
}

let server: FakeWalsender;
/** The plan of the run in progress, and the first connection index that belongs to it. */
let current: { plan: Plan; firstConnection: number } | undefined;

beforeAll(async () => {
  server = await createFakeWalsender({
    scenario: 'happy',
    parameters: { segmentSizeMb: '1', reportedLsn: '0/100090', flushLsn: `0/${LONG_FLUSH_LSN.toString(16)}` },
    timeoutMs: 2_000,
    script: async (session) => {
      const run = current;
      if (run === undefined) return;
      const mutated = session.connectionIndex === run.firstConnection;
      if (mutated) mutateOutput(session.connection, run.plan.mutations);
      const flushLsn = run.plan.long ? LONG_FLUSH_LSN : SHORT_FLUSH_LSN;
      await session.serveDefault({
        async onStream(request) {
          let position = request.startLsn;
          let chunk = 0;
          while (position < flushLsn) {
            const pages = run.plan.chunkPages[chunk % run.plan.chunkPages.length]!;
            const end =
              position + BigInt(pages * 8192) < flushLsn ? position + BigInt(pages * 8192) : flushLsn;
            await session.sendWal(position, end, { timeline: request.timeline, walEnd: flushLsn });
            for (const keepalive of run.plan.keepalives) {
              if (keepalive.afterChunk === chunk)
                await session.keepalive({ replyRequested: keepalive.replyRequested });
            }
            position = end;
            chunk += 1;
          }
          await session.finishCopy(RUN_LIMIT_MS);
        },
      });
    },
  });
});

afterAll(async () => {
  current = undefined;
  await server?.close();
});

interface Outcome {
  error: unknown;
  hung: boolean;
  lastEvent: ReceiveEvent | undefined;
}

async function runOnce(plan: Plan): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'wal-fuzz-'));
  const directory = join(root, 'wal');
  mkdirSync(directory);
  current = { plan, firstConnection: server.connectionCount + 1 };
  if (process.env.WAL_FUZZ_DEBUG) console.log(JSON.stringify(plan));
  const limit = new AbortController();
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    limit.abort();
  }, RUN_LIMIT_MS);
  const outcome: Outcome = { error: undefined, hung: false, lastEvent: undefined };
  const flushLsn = plan.long ? LONG_FLUSH_LSN : SHORT_FLUSH_LSN;
  try {
    for await (const event of receiveWal({
      connect: connectTo(
        server,
        { sslmode: 'disable', connect_timeout: '2' },
        {
          signal: limit.signal,
          ...(process.env.WAL_FUZZ_DEBUG ? { trace: (line: string) => console.log(line) } : {}),
        },
      ),
      sink: new DirectorySink({ directory, sync: false }),
      endLsn: flushLsn - 1n,
      statusIntervalMs: 0,
      receiveTimeoutMs: RECEIVE_TIMEOUT_MS,
      reconnectDelayMs: 0,
      signal: limit.signal,
    })) {
      outcome.lastEvent = event;
      if (process.env.WAL_FUZZ_DEBUG) console.log(event);
      // A mutated answer may make every connection fail the same retryable way (a changed slot or
      // timeline is remembered): a few reconnects show recovery is attempted; then stop.
      if (event.type === 'disconnected' && server.connectionCount - current.firstConnection > 4) break;
    }
  } catch (error) {
    outcome.error = error;
  } finally {
    clearTimeout(timer);
    outcome.hung = hung;
  }
  try {
    expect(outcome.hung, `hung after ${JSON.stringify(outcome.lastEvent?.type)}`).toBe(false);
    if (outcome.error !== undefined) {
      expect(isCodedWalError(outcome.error), `not a coded WalError: ${String(outcome.error)}`).toBe(true);
    }
    expect(strayFiles(root)).toEqual([]);
    const report = checkDirectory(directory, server);
    expect(report.problems).toEqual([]);
    if (outcome.error === undefined && outcome.lastEvent?.type === 'stopped') {
      // Recovered: every byte of WAL is stored.
      expect(outcome.lastEvent).toMatchObject({ reason: 'endpos', lsn: flushLsn });
      const last = report.segments.at(-1)!;
      expect(last.name).toBe(segmentName(1, flushLsn / SEGMENT, MEGABYTE, true));
      const expected = server.model
        .timeline(1)!
        .generator.segmentFile(flushLsn / SEGMENT, { endLsn: flushLsn });
      expect(expected.subarray(last.dataLength).every((byte) => byte === 0)).toBe(true);
      if (plan.long)
        expect(report.segments.map((segment) => segment.name)[0]).toBe(segmentName(1, 1n, MEGABYTE));
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

describe('fuzz: mutated server conversations', () => {
  // Replays one plan printed by a failure: WAL_FUZZ_PLAN='{"mutations":[…],…}'.
  it.runIf(process.env.WAL_FUZZ_PLAN !== undefined)(
    'replays WAL_FUZZ_PLAN',
    async () => {
      await runOnce(JSON.parse(process.env.WAL_FUZZ_PLAN!) as Plan);
    },
    60_000,
  );

  it(`${RUNS} runs (seed ${SEED}): coded errors or success, no hang, no stray or corrupt file`, async () => {
    await fc.assert(
      fc.asyncProperty(planArbitrary, async (plan) => {
        await runOnce(plan);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: process.env.WAL_FUZZ_SHRINK === undefined },
    );
  }, 600_000);
});
