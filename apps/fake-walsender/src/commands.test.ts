import { describe, expect, it } from 'vitest';
import { formatSegmentSize, parseReplicationCommand } from './commands.js';

describe('parseReplicationCommand', () => {
  it('parses the commands a physical receiver sends', () => {
    expect(parseReplicationCommand('IDENTIFY_SYSTEM')).toEqual({ kind: 'IDENTIFY_SYSTEM' });
    expect(parseReplicationCommand('SHOW wal_segment_size;')).toEqual({
      kind: 'SHOW',
      name: 'wal_segment_size',
    });
    expect(parseReplicationCommand('SHOW Data_Directory_Mode')).toEqual({
      kind: 'SHOW',
      name: 'data_directory_mode',
    });
    expect(parseReplicationCommand('TIMELINE_HISTORY 2')).toEqual({ kind: 'TIMELINE_HISTORY', timeline: 2 });
    expect(parseReplicationCommand('READ_REPLICATION_SLOT "My""Slot"')).toEqual({
      kind: 'READ_REPLICATION_SLOT',
      slot: 'My"Slot',
    });
    expect(parseReplicationCommand('CREATE_REPLICATION_SLOT "s1" PHYSICAL')).toEqual({
      kind: 'CREATE_REPLICATION_SLOT',
      slot: 's1',
      temporary: false,
      reserveWal: false,
    });
    expect(
      parseReplicationCommand('CREATE_REPLICATION_SLOT s1 TEMPORARY PHYSICAL RESERVE_WAL'),
    ).toMatchObject({
      temporary: true,
      reserveWal: true,
    });
    expect(parseReplicationCommand('CREATE_REPLICATION_SLOT s1 PHYSICAL (RESERVE_WAL false)')).toMatchObject({
      reserveWal: false,
    });
    expect(parseReplicationCommand('DROP_REPLICATION_SLOT "s1" WAIT')).toEqual({
      kind: 'DROP_REPLICATION_SLOT',
      slot: 's1',
      wait: true,
    });
    expect(parseReplicationCommand('START_REPLICATION SLOT "s2" 0/800000 TIMELINE 1')).toEqual({
      kind: 'START_REPLICATION',
      slot: 's2',
      startLsn: 0x800000n,
      timeline: 1,
    });
    expect(parseReplicationCommand('START_REPLICATION PHYSICAL 16/B374D848')).toEqual({
      kind: 'START_REPLICATION',
      slot: undefined,
      startLsn: 0x16b374d848n,
      timeline: undefined,
    });
  });

  it('tells SQL, empty queries and syntax errors apart', () => {
    expect(parseReplicationCommand('  ')).toEqual({ kind: 'EMPTY' });
    expect(parseReplicationCommand('select 1')).toEqual({ kind: 'SQL', sql: 'select 1' });
    expect(parseReplicationCommand('identify_system')).toEqual({ kind: 'SQL', sql: 'identify_system' });
    for (const text of [
      'IDENTIFY_SYSTEM now',
      'START_REPLICATION 0/XYZ',
      'TIMELINE_HISTORY x',
      'CREATE_REPLICATION_SLOT s LOGICAL x',
      'BASE_BACKUP',
    ]) {
      expect(parseReplicationCommand(text)).toEqual({ kind: 'SYNTAX_ERROR', sql: text });
    }
  });

  it('formats segment sizes as SHOW does', () => {
    expect([1, 16, 64, 1024].map((megabytes) => formatSegmentSize(megabytes * 1024 * 1024))).toEqual([
      '1MB',
      '16MB',
      '64MB',
      '1GB',
    ]);
  });
});
