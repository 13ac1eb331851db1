import { describe, expect, it } from 'vitest';
import {
  buildCreateReplicationSlot,
  buildDropReplicationSlot,
  buildShow,
  buildStartReplication,
  parseCreateReplicationSlot,
  parseIdentifySystem,
  parseNextTimeline,
  parseReadReplicationSlot,
  parseShow,
  parseTimelineHistory,
  quoteIdentifier,
} from './replication-commands.js';
import type { FieldDescription, QueryResult, RawQueryResult } from './simple-query.js';

function field(name: string, typeOid = 25): FieldDescription {
  return {
    name,
    tableOid: 0,
    columnNumber: 0,
    typeOid,
    typeSize: -1,
    typeModifier: -1,
    format: 0,
  } as FieldDescription;
}
function result(names: string[], rows: (string | null)[][], commandTag = 'X'): QueryResult {
  return { fields: names.map((name) => field(name)), rows, commandTag };
}

describe('replication command text', () => {
  it('quotes identifiers, doubling quotes', () => {
    expect(quoteIdentifier('slot_1')).toBe('"slot_1"');
    expect(quoteIdentifier('My"Slot')).toBe('"My""Slot"');
    expect(() => quoteIdentifier('a\0b')).toThrow(/NUL/);
  });

  it('builds CREATE_REPLICATION_SLOT with the syntax of the server version', () => {
    expect(buildCreateReplicationSlot('s1', {}, 150018)).toBe('CREATE_REPLICATION_SLOT "s1" PHYSICAL');
    expect(buildCreateReplicationSlot('s1', { reserveWal: true }, 150018)).toBe(
      'CREATE_REPLICATION_SLOT "s1" PHYSICAL (RESERVE_WAL)',
    );
    expect(buildCreateReplicationSlot('s1', { reserveWal: true, temporary: true }, 140023)).toBe(
      'CREATE_REPLICATION_SLOT "s1" TEMPORARY PHYSICAL RESERVE_WAL',
    );
  });

  it('builds DROP_REPLICATION_SLOT, START_REPLICATION and SHOW', () => {
    expect(buildDropReplicationSlot('s', {})).toBe('DROP_REPLICATION_SLOT "s"');
    expect(buildDropReplicationSlot('s', { wait: true })).toBe('DROP_REPLICATION_SLOT "s" WAIT');
    expect(buildStartReplication({ startLsn: 0xb00000n, timeline: 1 })).toBe(
      'START_REPLICATION 0/B00000 TIMELINE 1',
    );
    expect(buildStartReplication({ slot: 'a"b', startLsn: 0x16b374d848n, timeline: 2 })).toBe(
      'START_REPLICATION SLOT "a""b" 16/B374D848 TIMELINE 2',
    );
    expect(() => buildStartReplication({ startLsn: 0n, timeline: 0 })).toThrow(/invalid timeline 0/);
    expect(buildShow('wal_segment_size')).toBe('SHOW wal_segment_size');
    expect(buildShow('Weird.name')).toBe('SHOW "Weird".name');
    expect(() => buildShow('')).toThrow(/invalid setting name/);
  });
});

describe('replication result parsing', () => {
  it('parses IDENTIFY_SYSTEM with an int4 or int8 timeline', () => {
    const fields = ['systemid', 'timeline', 'xlogpos', 'dbname'];
    expect(parseIdentifySystem(result(fields, [['7312345678901234567', '1', '0/1A2B3C8', null]]))).toEqual({
      systemId: 7312345678901234567n,
      timeline: 1,
      xlogPosition: 0x1a2b3c8n,
      databaseName: null,
    });
    expect(parseIdentifySystem(result(fields, [['1', '4294967295', '16/B374D848', 'db']])).timeline).toBe(
      4294967295,
    );
    expect(() => parseIdentifySystem(result(fields, []))).toThrow(
      'could not identify system: got 0 rows and 4 fields, expected 1 rows and 3 or more fields',
    );
    expect(() => parseIdentifySystem(result(fields, [['1', '0', '0/0', null]]))).toThrow(/invalid timeline/);
    expect(() => parseIdentifySystem(result(fields, [['x', '1', '0/0', null]]))).toThrow(
      /invalid system identifier/,
    );
    expect(() => parseIdentifySystem(result(fields, [['1', '1', 'nope', null]]))).toThrow(
      /could not parse LSN/,
    );
  });

  it('parses SHOW', () => {
    expect(parseShow('wal_segment_size', result(['wal_segment_size'], [['16MB']]))).toBe('16MB');
    expect(() => parseShow('x', result(['x'], []))).toThrow(/could not fetch setting "x"/);
  });

  it('keeps TIMELINE_HISTORY content as raw bytes', () => {
    const content = Buffer.from([0x31, 0x09, 0xff, 0x00, 0x0a]);
    const raw: RawQueryResult = {
      fields: [field('filename'), field('content')],
      rows: [[Buffer.from('00000002.history'), content]],
      commandTag: 'TIMELINE_HISTORY',
    };
    const parsed = parseTimelineHistory(2, raw);
    expect(parsed.fileName).toBe('00000002.history');
    expect(parsed.content).toEqual(content);
    expect(() => parseTimelineHistory(2, { ...raw, rows: [] })).toThrow(/expected 1 rows and 2 fields/);
  });

  it('parses READ_REPLICATION_SLOT, a missing slot being all NULL', () => {
    const fields = ['slot_type', 'restart_lsn', 'restart_tli'];
    expect(parseReadReplicationSlot(result(fields, [[null, null, null]]))).toEqual({
      slotType: null,
      restartLsn: null,
      restartTimeline: null,
    });
    expect(parseReadReplicationSlot(result(fields, [['physical', '0/3000000', '1']]))).toEqual({
      slotType: 'physical',
      restartLsn: 0x3000000n,
      restartTimeline: 1,
    });
    expect(parseReadReplicationSlot(result(fields, [['physical', null, null]])).restartLsn).toBeNull();
  });

  it('parses CREATE_REPLICATION_SLOT, including the PG19 padded LSN', () => {
    const fields = ['slot_name', 'consistent_point', 'snapshot_name', 'output_plugin'];
    expect(parseCreateReplicationSlot(result(fields, [['s1', '0/0', null, null]]))).toEqual({
      slotName: 's1',
      consistentPoint: 0n,
    });
    expect(
      parseCreateReplicationSlot(result(fields, [['s1', '0/00000000', null, null]])).consistentPoint,
    ).toBe(0n);
  });

  it('parses the end-of-timeline row', () => {
    expect(parseNextTimeline(result(['next_tli', 'next_tli_startpos'], [['2', '0/B00130']]))).toEqual({
      timeline: 2,
      startLsn: 0xb00130n,
    });
    expect(parseNextTimeline(undefined)).toBeUndefined();
  });
});
