import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../errors.js';
import { int8, int32, int64, payload } from '../testing/naive-bytes.js';
import { decodeHotStandbyFeedback, encodeHotStandbyFeedback } from './hot-standby-feedback.js';
import { decodePrimaryKeepalive, encodePrimaryKeepalive } from './primary-keepalive.js';
import { encodePrimaryStatusUpdate } from './primary-status-update.js';
import { decodeReplicationMessage, decodeStandbyMessage } from './replication-message.js';
import { decodeRequestPrimaryStatus, encodeRequestPrimaryStatus } from './request-primary-status.js';
import {
  decodeStandbyStatusUpdate,
  encodeStandbyStatusUpdate,
  type StandbyStatusUpdate,
  writeStandbyStatusUpdateFrame,
} from './standby-status-update.js';
import { decodeXLogData, encodeXLogData, encodeXLogDataHeader } from './xlog-data.js';

function expectProtocolError(action: () => unknown, code: string, text: string | RegExp): void {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ProtocolError);
  expect((caught as ProtocolError).code).toBe(code);
  expect((caught as ProtocolError).message).toMatch(text);
}

const lsn = fc.bigInt({ min: 0n, max: 0xffffffffffffffffn });
const timestamp = fc.bigInt({ min: -0x8000000000000000n, max: 0x7fffffffffffffffn });
const uint32 = fc.integer({ min: 0, max: 0xffffffff });

describe('XLogData (w)', () => {
  const bytes = payload([0x77], int64(0x1_6b374d848n), int64(0x1_6b3750000n), int64(-5n), [0xaa, 0xbb, 0xcc]);

  it('decodes independently built bytes, data as a view', () => {
    const decoded = decodeReplicationMessage(bytes);
    expect(decoded).toEqual({
      type: 'XLogData',
      dataStart: 0x1_6b374d848n,
      walEnd: 0x1_6b3750000n,
      sendTime: -5n,
      data: Buffer.from([0xaa, 0xbb, 0xcc]),
    });
    expect(decoded.type === 'XLogData' && decoded.data.buffer === bytes.buffer).toBe(true);
  });

  it('encodes to the same bytes, whole or header-in-place', () => {
    const header = { dataStart: 0x1_6b374d848n, walEnd: 0x1_6b3750000n, sendTime: -5n };
    expect(encodeXLogData({ ...header, data: Buffer.from([0xaa, 0xbb, 0xcc]) })).toEqual(bytes);
    const target = Buffer.alloc(30, 0xff);
    expect(encodeXLogDataHeader(target, 2, header)).toBe(27);
    expect(target.subarray(2, 27)).toEqual(bytes.subarray(0, 25));
    expect(target[1]).toBe(0xff);
    expect(target[27]).toBe(0xff);
  });

  it('accepts an empty data part and rejects a header shorter than 25 bytes', () => {
    expect(decodeXLogData(bytes.subarray(0, 25)).data.length).toBe(0);
    expectProtocolError(
      () => decodeReplicationMessage(bytes.subarray(0, 24)),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      'XLogData must be at least 25 bytes, got 24',
    );
  });

  it('round-trips (fast-check)', () => {
    fc.assert(
      fc.property(
        lsn,
        lsn,
        timestamp,
        fc.uint8Array({ maxLength: 100 }),
        (dataStart, walEnd, sendTime, data) => {
          const decoded = decodeXLogData(encodeXLogData({ dataStart, walEnd, sendTime, data }));
          expect(decoded).toEqual({ type: 'XLogData', dataStart, walEnd, sendTime, data: Buffer.from(data) });
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('PrimaryKeepalive (k)', () => {
  const bytes = payload([0x6b], int64(0x3_00000028n), int64(800_000_000_000_000n), int8(1));

  it('decodes and encodes independently built bytes', () => {
    const decoded = {
      type: 'PrimaryKeepalive',
      walEnd: 0x3_00000028n,
      sendTime: 800_000_000_000_000n,
      replyRequested: true,
    };
    expect(decodeReplicationMessage(bytes)).toEqual(decoded);
    expect(
      encodePrimaryKeepalive({ walEnd: 0x3_00000028n, sendTime: 800_000_000_000_000n, replyRequested: true }),
    ).toEqual(bytes);
  });

  it('must be exactly 18 bytes', () => {
    expectProtocolError(
      () => decodeReplicationMessage(bytes.subarray(0, 12)),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      'PrimaryKeepalive must be 18 bytes, got 12',
    );
    expectProtocolError(
      () => decodeReplicationMessage(Buffer.concat([bytes, Buffer.from([0])])),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      'PrimaryKeepalive must be 18 bytes, got 19',
    );
  });

  it('rejects a replyRequested byte other than 0 or 1', () => {
    const bad = Buffer.from(bytes);
    bad[17] = 2;
    expectProtocolError(
      () => decodePrimaryKeepalive(bad),
      'WAL_ERR_PROTOCOL_INVALID_FIELD',
      /replyRequested must be 0 or 1, got 2/,
    );
  });

  it('round-trips (fast-check)', () => {
    fc.assert(
      fc.property(lsn, timestamp, fc.boolean(), (walEnd, sendTime, replyRequested) => {
        expect(decodePrimaryKeepalive(encodePrimaryKeepalive({ walEnd, sendTime, replyRequested }))).toEqual({
          type: 'PrimaryKeepalive',
          walEnd,
          sendTime,
          replyRequested,
        });
      }),
      { numRuns: 300 },
    );
  });
});

describe('PrimaryStatusUpdate (s, PostgreSQL 19)', () => {
  it('decodes and encodes independently built bytes, exactly 33 bytes', () => {
    const bytes = payload([0x73], int64(0x10n), int64((1n << 32n) | 700n), int64(900n), int64(123n));
    const fields = {
      latestWalWriteLsn: 0x10n,
      oldestXidInCommit: (1n << 32n) | 700n,
      nextXid: 900n,
      sendTime: 123n,
    };
    expect(decodeReplicationMessage(bytes)).toEqual({ type: 'PrimaryStatusUpdate', ...fields });
    expect(encodePrimaryStatusUpdate(fields)).toEqual(bytes);
    expectProtocolError(
      () => decodeReplicationMessage(bytes.subarray(0, 32)),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      'PrimaryStatusUpdate must be 33 bytes, got 32',
    );
  });
});

describe('decodeReplicationMessage', () => {
  it('rejects an empty payload and unknown types', () => {
    expectProtocolError(
      () => decodeReplicationMessage(Buffer.alloc(0)),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /at least 1 byte, got 0/,
    );
    expectProtocolError(
      () => decodeReplicationMessage(Buffer.from([0x72])),
      'WAL_ERR_PROTOCOL_UNKNOWN_MESSAGE',
      /Invalid replication message type 'r'/,
    );
  });
});

describe('StandbyStatusUpdate (r)', () => {
  const status: StandbyStatusUpdate = {
    writeLsn: 0x1_00000100n,
    flushLsn: 0x1_00000080n,
    applyLsn: 0n,
    sendTime: 781_000_000_000_000n,
    replyRequested: false,
  };
  const bytes = payload(
    [0x72],
    int64(0x1_00000100n),
    int64(0x1_00000080n),
    int64(0n),
    int64(781_000_000_000_000n),
    [0],
  );

  it('encodes the 34-byte payload and decodes it back', () => {
    expect(encodeStandbyStatusUpdate(status)).toEqual(bytes);
    expect(decodeStandbyStatusUpdate(bytes)).toEqual(status);
    expect(decodeStandbyMessage(bytes)).toEqual({ type: 'StandbyStatusUpdate', ...status });
  });

  it('writes the whole 39-byte CopyData frame into a preallocated buffer', () => {
    const target = Buffer.alloc(64, 0xee);
    const frame = writeStandbyStatusUpdateFrame(target, status);
    expect(frame).toEqual(Buffer.concat([Buffer.from([0x64, ...int32(38)]), bytes]));
    expect(frame.buffer).toBe(target.buffer);
    expect(frame.byteOffset).toBe(target.byteOffset);
    expect(target[39]).toBe(0xee);
    const second = writeStandbyStatusUpdateFrame(target, { ...status, replyRequested: true });
    expect(second[38]).toBe(1);
  });

  it('refuses a target shorter than 39 bytes and invalid LSNs', () => {
    expectProtocolError(
      () => writeStandbyStatusUpdateFrame(Buffer.alloc(38), status),
      'WAL_ERR_PROTOCOL_INVALID_VALUE',
      /39-byte buffer, got 38/,
    );
    expectProtocolError(
      () => encodeStandbyStatusUpdate({ ...status, flushLsn: -1n }),
      'WAL_ERR_PROTOCOL_INVALID_VALUE',
      /flushLsn must be an unsigned 64-bit bigint/,
    );
    expectProtocolError(
      () => encodeStandbyStatusUpdate({ ...status, sendTime: 1n << 63n }),
      'WAL_ERR_PROTOCOL_INVALID_VALUE',
      /sendTime/,
    );
  });

  it('must be exactly 34 bytes', () => {
    expectProtocolError(
      () => decodeStandbyStatusUpdate(bytes.subarray(0, 33)),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      'StandbyStatusUpdate must be 34 bytes, got 33',
    );
  });

  it('round-trips (fast-check)', () => {
    fc.assert(
      fc.property(
        lsn,
        lsn,
        lsn,
        timestamp,
        fc.boolean(),
        (writeLsn, flushLsn, applyLsn, sendTime, replyRequested) => {
          const value = { writeLsn, flushLsn, applyLsn, sendTime, replyRequested };
          expect(decodeStandbyStatusUpdate(encodeStandbyStatusUpdate(value))).toEqual(value);
          expect(
            decodeStandbyStatusUpdate(writeStandbyStatusUpdateFrame(Buffer.alloc(39), value).subarray(5)),
          ).toEqual(value);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('HotStandbyFeedback (h)', () => {
  it('encodes and decodes independently built 25-byte payloads', () => {
    const feedback = { sendTime: 42n, xmin: 0xfffffff0, xminEpoch: 1, catalogXmin: 0, catalogXminEpoch: 0 };
    const bytes = payload([0x68], int64(42n), int32(0xfffffff0), int32(1), int32(0), int32(0));
    expect(encodeHotStandbyFeedback(feedback)).toEqual(bytes);
    expect(decodeHotStandbyFeedback(bytes)).toEqual(feedback);
    expect(decodeStandbyMessage(bytes)).toEqual({ type: 'HotStandbyFeedback', ...feedback });
    expectProtocolError(
      () => decodeHotStandbyFeedback(bytes.subarray(0, 24)),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      'HotStandbyFeedback must be 25 bytes, got 24',
    );
    expectProtocolError(
      () => encodeHotStandbyFeedback({ ...feedback, xmin: -1 }),
      'WAL_ERR_PROTOCOL_INVALID_VALUE',
      /xmin must be an unsigned 32-bit integer/,
    );
  });

  it('round-trips (fast-check)', () => {
    fc.assert(
      fc.property(
        timestamp,
        uint32,
        uint32,
        uint32,
        uint32,
        (sendTime, xmin, xminEpoch, catalogXmin, catalogXminEpoch) => {
          const value = { sendTime, xmin, xminEpoch, catalogXmin, catalogXminEpoch };
          expect(decodeHotStandbyFeedback(encodeHotStandbyFeedback(value))).toEqual(value);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('RequestPrimaryStatus (p, PostgreSQL 19)', () => {
  it('encodes and decodes the 9-byte payload', () => {
    const bytes = payload([0x70], int64(77n));
    expect(encodeRequestPrimaryStatus({ sendTime: 77n })).toEqual(bytes);
    expect(decodeRequestPrimaryStatus(bytes)).toEqual({ sendTime: 77n });
    expect(decodeStandbyMessage(bytes)).toEqual({ type: 'RequestPrimaryStatus', sendTime: 77n });
    expectProtocolError(
      () => decodeStandbyMessage(bytes.subarray(0, 8)),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      'RequestPrimaryStatus must be 9 bytes, got 8',
    );
  });

  it('rejects unknown standby message types', () => {
    expectProtocolError(
      () => decodeStandbyMessage(Buffer.from([0x77])),
      'WAL_ERR_PROTOCOL_UNKNOWN_MESSAGE',
      /Invalid standby message type 'w'/,
    );
    expectProtocolError(
      () => decodeStandbyMessage(Buffer.alloc(0)),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /at least 1 byte/,
    );
  });
});
