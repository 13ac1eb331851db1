import { encodePrimaryKeepalive, encodeXLogDataHeader, toPostgresTimestamp, WalError } from '@wal/protocol';
import { resultSet, TypeOid } from '../commands.js';
import { ServerModel } from '../model.js';
import type { Session, StreamRequest } from '../script.js';
import { commonServer, type Scenario, type ScenarioFactory } from './scenario.js';

type Misbehaviour = (session: Session, request: StreamRequest) => Promise<void>;

/** Bytes of one frame: code, Int32 length (payload + 4), payload. */
function frame(code: string, payload: Buffer, lengthOverride?: number): Buffer {
  const header = Buffer.allocUnsafe(5);
  header[0] = code.charCodeAt(0);
  header.writeInt32BE(lengthOverride ?? payload.length + 4, 1);
  return Buffer.concat([header, payload]);
}

function xlogData(dataStart: bigint, walEnd: bigint, data: Buffer): Buffer {
  const payload = Buffer.allocUnsafe(25 + data.length);
  encodeXLogDataHeader(payload, 0, { dataStart, walEnd, sendTime: toPostgresTimestamp() });
  data.copy(payload, 25);
  return payload;
}

/** Send the first WAL chunk normally (from the start point, one page), return where it ended. */
async function firstPage(session: Session, request: StreamRequest): Promise<bigint> {
  const end = request.startLsn + 8192n;
  await session.sendWal(request.startLsn, end, { timeline: request.timeline, walEnd: request.endLsn });
  return end;
}

/** Misbehaviours inside COPY; after each the server closes the connection (a real one would be gone too). */
const inCopy: Record<string, [string, Misbehaviour]> = {
  'keepalive-short': [
    "a 'k' keepalive of 17 bytes instead of 18",
    (session) =>
      session.sendCopyData(
        encodePrimaryKeepalive({ walEnd: 0n, sendTime: 0n, replyRequested: false }).subarray(0, 17),
      ),
  ],
  'keepalive-long': [
    "a 'k' keepalive of 19 bytes",
    (session) =>
      session.sendCopyData(
        Buffer.concat([
          encodePrimaryKeepalive({ walEnd: 0n, sendTime: 0n, replyRequested: false }),
          Buffer.from([0]),
        ]),
      ),
  ],
  'xlogdata-short': [
    "a 'w' message of 20 bytes, shorter than its 25-byte header",
    (session, request) =>
      session.sendCopyData(xlogData(request.startLsn, request.endLsn, Buffer.alloc(0)).subarray(0, 20)),
  ],
  'unknown-copydata-type': [
    "a CopyData whose first byte is 'z', no replication message type",
    (session) => session.sendCopyData(Buffer.concat([Buffer.from('z'), Buffer.alloc(17)])),
  ],
  'unknown-message': [
    "a backend message of unknown type 'j' inside COPY",
    (session) => session.sendRaw(frame('j', Buffer.from([0, 0, 0, 0]))),
  ],
  'truncated-header': [
    'the first 3 bytes of a CopyData frame header, then EOF',
    (session, request) =>
      session.sendRaw(frame('d', xlogData(request.startLsn, request.endLsn, Buffer.alloc(8))).subarray(0, 3)),
  ],
  'truncated-message': [
    'a CopyData frame announcing 8217 bytes, 100 of them sent, then EOF',
    async (session, request) => {
      const data = request.timeline.generator.read(request.startLsn, request.startLsn + 8192n);
      await session.sendRaw(frame('d', xlogData(request.startLsn, request.endLsn, data)).subarray(0, 100));
    },
  ],
  'absurd-length': [
    'a CopyData frame whose length field says 0x7FFFFFF0 bytes',
    (session) => session.sendRaw(frame('d', Buffer.from('w'), 0x7ffffff0)),
  ],
  'negative-length': [
    'a CopyData frame whose length field is 2 (less than the 4 bytes of the field itself)',
    (session) => session.sendRaw(frame('d', Buffer.alloc(0), 2)),
  ],
  'data-start-ahead': [
    'after the first page, an XLogData whose dataStart skips a page',
    async (session, request) => {
      const end = await firstPage(session, request);
      const data = request.timeline.generator.read(end + 8192n, end + 16384n);
      await session.sendCopyData(xlogData(end + 8192n, request.endLsn, data));
    },
  ],
  'data-start-back': [
    'after the first two pages, an XLogData whose dataStart goes back one page',
    async (session, request) => {
      const end = await firstPage(session, request);
      await session.sendWal(end, end + 8192n, { timeline: request.timeline, walEnd: request.endLsn });
      const data = request.timeline.generator.read(end, end + 8192n);
      await session.sendCopyData(xlogData(end, request.endLsn, data));
    },
  ],
  'wal-end-before-data-start': [
    'an XLogData whose walEnd is lower than its dataStart',
    async (session, request) => {
      const data = request.timeline.generator.read(request.startLsn, request.startLsn + 8192n);
      await session.sendCopyData(xlogData(request.startLsn, request.startLsn - 8192n, data));
    },
  ],
};

function inCopyScenario(variant: string, description: string, misbehave: Misbehaviour): ScenarioFactory {
  return (parameters) => ({
    name: `malformed-${variant}`,
    description,
    server: commonServer(parameters),
    run: (session) =>
      session.serveDefault({
        async onStream(request) {
          await misbehave(session, request);
          await session.stall(Number(parameters.stallMs ?? 200));
          session.close();
        },
      }),
  });
}

/** TIMELINE_HISTORY answered with a bad file name or content; the server is on timeline 2. */
function historyScenario(variant: 'history-path-traversal' | 'history-not-history'): ScenarioFactory {
  return (parameters) => {
    const base = commonServer(parameters);
    const segment = BigInt(base.segmentSize!);
    return {
      name: `malformed-${variant}`,
      description:
        variant === 'history-path-traversal'
          ? "TIMELINE_HISTORY answers with file name '../00000002.history'"
          : 'TIMELINE_HISTORY answers with binary content that is no history file',
      server: { ...base, timelines: [{ timeline: 1, switchAt: segment + segment / 2n }, { timeline: 2 }] },
      run: (session) =>
        session.serveDefault({
          async onQuery(_sql, command) {
            if (command.kind !== 'TIMELINE_HISTORY') return false;
            const history = session.model.historyFile(command.timeline);
            const fileName =
              variant === 'history-path-traversal'
                ? `../${history?.fileName ?? '00000002.history'}`
                : history?.fileName;
            const content =
              variant === 'history-path-traversal'
                ? (history?.content ?? Buffer.from(''))
                : Buffer.from([0, 1, 2, 0xff, 0xfe, 10]);
            const frames = resultSet(
              [
                { name: 'filename', typeOid: TypeOid.text, typeModifier: 0 },
                { name: 'content', typeOid: TypeOid.text, typeModifier: 0 },
              ],
              [[fileName ?? '', content]],
              'TIMELINE_HISTORY',
            );
            for (const bytes of frames) await session.sendRaw(bytes);
            await session.send({ type: 'ReadyForQuery', transactionStatus: 'I' });
            return true;
          },
        }),
    };
  };
}

/**
 * system-id-changes: the first connection streams one page and closes; every later connection is
 * served by a server with another system identifier (its WAL carries that id too).
 */
const systemIdChanges: ScenarioFactory = (parameters) => {
  const server = commonServer(parameters);
  let other: ServerModel | undefined;
  return {
    name: 'malformed-system-id-changes',
    description: 'connection 1 streams a page and closes; later connections report another system identifier',
    server,
    async run(session) {
      if (session.connectionIndex > 1) {
        other ??= new ServerModel({ ...server, systemId: session.model.systemId + 1n });
        session.model = other;
        await session.serveDefault();
        return;
      }
      await session.serveDefault({
        async onStream(request) {
          await firstPage(session, request);
          session.close();
        },
      });
    },
  };
};

export const malformedScenarios: Record<string, ScenarioFactory> = {
  ...Object.fromEntries(
    Object.entries(inCopy).map(([variant, [description, misbehave]]) => [
      `malformed-${variant}`,
      inCopyScenario(variant, description, misbehave),
    ]),
  ),
  'malformed-history-path-traversal': historyScenario('history-path-traversal'),
  'malformed-history-not-history': historyScenario('history-not-history'),
  'malformed-system-id-changes': systemIdChanges,
};

/** `malformed` with `variant=<name>`: the same scenarios under one name. */
export const malformed: ScenarioFactory = (parameters): Scenario => {
  const variant = parameters.variant ?? '';
  const factory = malformedScenarios[`malformed-${variant}`];
  if (factory === undefined) {
    const known = Object.keys(malformedScenarios).map((name) => name.slice('malformed-'.length));
    throw new WalError(
      'WAL_ERR_FAKE_OPTIONS',
      `Unknown malformed variant "${variant}"; known: ${known.join(', ')}.`,
    );
  }
  return factory(parameters);
};
