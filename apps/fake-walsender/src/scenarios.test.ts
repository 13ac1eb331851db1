import { decodeReplicationMessage, encodeStandbyStatusUpdate, formatLsn, type XLogData } from '@wal/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { getScenario, scenarioNames } from './scenarios/index.js';
import { createFakeWalsender, type FakeWalsender } from './server.js';
import { MinimalClient, type ReceivedFrame } from './testing/minimal-client.js';

const MB = 1024 * 1024;
const servers: FakeWalsender[] = [];
const clients: MinimalClient[] = [];

async function start(scenario: string, parameters: Record<string, string> = {}) {
  const server = await createFakeWalsender({ scenario, parameters: { segmentSizeMb: '1', ...parameters } });
  servers.push(server);
  const client = await MinimalClient.connect(server.port);
  clients.push(client);
  return { server, client };
}

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

function replication(frame: ReceivedFrame | undefined) {
  if (frame?.message?.type !== 'CopyData')
    throw new Error(`expected CopyData, got ${frame?.message?.type ?? 'EOF'}`);
  return decodeReplicationMessage(frame.message.data);
}

/** Read XLogData until `until`; returns them and the first non-XLogData message. */
async function collectWal(client: MinimalClient, until: bigint): Promise<XLogData[]> {
  const messages: XLogData[] = [];
  let position = 0n;
  while (position < until) {
    const message = replication(await client.next());
    if (message.type !== 'XLogData') throw new Error(`expected XLogData, got ${message.type}`);
    messages.push({ ...message, data: Buffer.from(message.data) });
    position = message.dataStart + BigInt(message.data.length);
  }
  return messages;
}

const status = (lsn: bigint) =>
  ({
    type: 'CopyData',
    data: encodeStandbyStatusUpdate({
      writeLsn: lsn,
      flushLsn: 0n,
      applyLsn: 0n,
      sendTime: 0n,
      replyRequested: false,
    }),
  }) as const;

describe('ready scenarios', () => {
  it('lists its scenarios and refuses unknown names and bad parameters', () => {
    expect(scenarioNames).toEqual(
      expect.arrayContaining([
        'happy',
        'keepalive-reply',
        'timeline-switch',
        'start-at-timeline-end',
        'shutdown',
        'cut-at',
      ]),
    );
    expect(() => getScenario('nosuch')).toThrow(/Unknown scenario "nosuch"; known: happy/);
    expect(() => getScenario('cut-at', { byte: '-1' })).toThrow(/byte must be a non-negative integer/);
    expect(() => getScenario('malformed', { variant: 'x' })).toThrow(/Unknown malformed variant "x"/);
  });

  it('keepalive-reply: k(0), then k(1) that waits for the r, recorded with its content', async () => {
    const { server, client } = await start('keepalive-reply', { flushLsn: '0/140000' });
    await client.startup();
    client.send({ type: 'Query', sql: 'START_REPLICATION 0/100000 TIMELINE 1' });
    await client.expect('CopyBothResponse');
    await collectWal(client, 0x140000n);
    expect(replication(await client.next())).toMatchObject({
      type: 'PrimaryKeepalive',
      replyRequested: false,
      walEnd: 0x140000n,
    });
    expect(replication(await client.next())).toMatchObject({
      type: 'PrimaryKeepalive',
      replyRequested: true,
    });
    client.send(status(0x140000n));
    client.send({ type: 'CopyDone' });
    await client.expect('CopyDone');
    await client.expect('CommandComplete');
    await client.expect('CommandComplete');
    await client.expect('ReadyForQuery');
    client.send({ type: 'Terminate' });
    await server.waitForSessions(1);
    expect(server.recorded.find((entry) => entry.standby !== undefined)?.standby).toMatchObject({
      type: 'StandbyStatusUpdate',
      writeLsn: 0x140000n,
    });
    expect(server.errors).toEqual([]);
  });

  it('timeline-switch: WAL to the switch point, end of timeline, history, then the new timeline', async () => {
    const { server, client } = await start('timeline-switch', { flushLsn: '0/400000' });
    const switchLsn = server.model.timelines[0]!.endLsn!;
    await client.startup();
    expect((await client.query('IDENTIFY_SYSTEM')).rows[0]![1]).toBe('2');
    client.send({ type: 'Query', sql: 'START_REPLICATION 0/200000 TIMELINE 1' });
    await client.expect('CopyBothResponse');
    const old = await collectWal(client, switchLsn);
    expect(old.at(-1)!.dataStart + BigInt(old.at(-1)!.data.length)).toBe(switchLsn);
    await client.expect('CopyDone');
    client.send({ type: 'CopyDone' });
    const result = await client.readResult();
    expect(result.fields.map((field) => [field.name, field.typeOid])).toEqual([
      ['next_tli', 20],
      ['next_tli_startpos', 25],
    ]);
    expect(result.rows).toEqual([['2', formatLsn(switchLsn)]]);
    expect(result.tags.slice(0, 2)).toEqual(['START_STREAMING', 'START_REPLICATION']);
    const history = await client.query('TIMELINE_HISTORY 2');
    expect(history.rows).toEqual([
      ['00000002.history', `1\t${formatLsn(switchLsn)}\tno recovery target specified\n`],
    ]);
    const segmentStart = switchLsn - (switchLsn % BigInt(MB));
    client.send({ type: 'Query', sql: `START_REPLICATION ${formatLsn(segmentStart)} TIMELINE 2` });
    await client.expect('CopyBothResponse');
    const fresh = await collectWal(client, 0x400000n);
    const bytes = Buffer.concat(fresh.map((message) => message.data));
    expect(bytes.equals(server.model.timelines[1]!.generator.read(segmentStart, 0x400000n))).toBe(true);
    // Before the switch point the new timeline's bytes are the old one's (the copied segment).
    const before = Number(switchLsn - segmentStart);
    expect(
      bytes.subarray(0, before).equals(Buffer.concat(old.map((message) => message.data)).subarray(-before)),
    ).toBe(true);
    expect(server.errors).toEqual([]);
  });

  /** The backend messages up to and including ReadyForQuery, by type (they must all decode). */
  async function messagesUntilReady(client: MinimalClient) {
    const messages = [];
    for (;;) {
      const message = (await client.next())?.message;
      if (message === undefined) throw new Error('connection closed before ReadyForQuery');
      messages.push(message);
      if (message.type === 'ReadyForQuery') return messages;
    }
  }

  it('start-at-timeline-end: at the switch point (a segment boundary) no COPY, the next-timeline row, two CommandCompletes, ReadyForQuery', async () => {
    const { server, client } = await start('start-at-timeline-end');
    const switchLsn = server.model.timelines[0]!.endLsn!;
    // A receiver holding the complete timeline-1 segments before the switch asks for exactly this.
    expect(switchLsn).toBe(3n * BigInt(MB));
    await client.startup();
    client.send({ type: 'Query', sql: 'START_REPLICATION 0/300000 TIMELINE 1' });
    const messages = await messagesUntilReady(client);
    expect(messages.map((message) => message.type)).toEqual([
      'RowDescription',
      'DataRow',
      'CommandComplete',
      'CommandComplete',
      'ReadyForQuery',
    ]);
    expect(messages[1]).toMatchObject({ values: [Buffer.from('2'), Buffer.from('0/300000')] });
    expect(messages.slice(2, 4)).toEqual([
      { type: 'CommandComplete', tag: 'START_STREAMING' },
      { type: 'CommandComplete', tag: 'START_REPLICATION' },
    ]);
    // The connection is still usable: the client goes on to timeline 2 on it.
    const history = await client.query('TIMELINE_HISTORY 2');
    expect(history.rows).toEqual([['00000002.history', '1\t0/300000\tno recovery target specified\n']]);
    client.send({ type: 'Query', sql: 'START_REPLICATION 0/300000 TIMELINE 2' });
    await client.expect('CopyBothResponse');
    const fresh = await collectWal(client, server.model.flushLsn);
    expect(
      Buffer.concat(fresh.map((message) => message.data)).equals(
        server.model.timelines[1]!.generator.read(0x300000n, server.model.flushLsn),
      ),
    ).toBe(true);
    expect(server.errors).toEqual([]);
  });

  it('start-at-timeline-end: before the switch point, the rest of timeline 1, then a normal end of timeline', async () => {
    const { server, client } = await start('start-at-timeline-end');
    const switchLsn = server.model.timelines[0]!.endLsn!;
    await client.startup();
    client.send({ type: 'Query', sql: 'START_REPLICATION 0/200000 TIMELINE 1' });
    await client.expect('CopyBothResponse');
    const old = await collectWal(client, switchLsn);
    const last = old.at(-1)!;
    expect(last.dataStart + BigInt(last.data.length)).toBe(switchLsn);
    expect(
      Buffer.concat(old.map((message) => message.data)).equals(
        server.model.timelines[0]!.generator.read(0x200000n, switchLsn),
      ),
    ).toBe(true);
    await client.expect('CopyDone');
    client.send({ type: 'CopyDone' });
    const result = await client.readResult();
    expect(result.rows).toEqual([['2', '0/300000']]);
    expect(result.tags).toEqual(['START_STREAMING', 'START_REPLICATION']);
    expect(server.errors).toEqual([]);
  });

  it('start-at-timeline-end: past the switch point, the not-in-history error without COPY', async () => {
    const { client } = await start('start-at-timeline-end');
    await client.startup();
    client.send({ type: 'Query', sql: 'START_REPLICATION 0/400000 TIMELINE 1' });
    const messages = await messagesUntilReady(client);
    expect(messages.map((message) => message.type)).toEqual(['ErrorResponse', 'ReadyForQuery']);
    expect(messages[0]).toMatchObject({
      fields: { code: 'XX000', message: expect.stringContaining("is not in this server's history") },
    });
  });

  it('shutdown: k(1), the reply, CommandComplete "COPY 0" without CopyDone, EOF', async () => {
    const { server, client } = await start('shutdown', { flushLsn: '0/110000' });
    await client.startup();
    client.send({ type: 'Query', sql: 'START_REPLICATION 0/100000 TIMELINE 1' });
    await client.expect('CopyBothResponse');
    await collectWal(client, 0x110000n);
    expect(replication(await client.next())).toMatchObject({
      type: 'PrimaryKeepalive',
      replyRequested: true,
      walEnd: 0x110000n,
    });
    client.send(status(0x110000n));
    expect(await client.expect('CommandComplete')).toEqual({ type: 'CommandComplete', tag: 'COPY 0' });
    expect(await client.next()).toBeUndefined();
    await server.waitForSessions(1);
    expect(server.errors).toEqual([]);
  });

  it('error-58P01: CopyBothResponse, then the removed-segment error and ReadyForQuery', async () => {
    const { client } = await start('error-58P01');
    await client.startup();
    client.send({ type: 'Query', sql: 'START_REPLICATION 0/400000 TIMELINE 1' });
    await client.expect('CopyBothResponse');
    expect(await client.expect('ErrorResponse')).toMatchObject({
      fields: {
        code: '58P01',
        message: 'requested WAL segment 000000010000000000000004 has already been removed',
      },
    });
    await client.expect('ReadyForQuery');
  });

  for (const [scenario, code, message] of [
    ['error-55006', '55006', 'replication slot "s9" is active for PID 4242'],
    ['error-42704', '42704', 'replication slot "s9" does not exist'],
  ] as const) {
    it(`${scenario}: START_REPLICATION fails before COPY`, async () => {
      const { client } = await start(scenario);
      await client.startup();
      const result = await client.query('START_REPLICATION SLOT s9 0/100000 TIMELINE 1');
      expect(result.error).toMatchObject({ fields: { severity: 'ERROR', code, message } });
    });
  }

  it('error-28P01: asks for a password and refuses it', async () => {
    const { client } = await start('error-28P01');
    const messages = await client.startup({ user: 'eve', password: 'anything' });
    expect(messages.at(-1)).toMatchObject({ fields: { severity: 'FATAL', code: '28P01' } });
    expect(await client.next()).toBeUndefined();
  });
});

describe('malformed scenarios', () => {
  async function misbehaviour(variant: string) {
    const { server, client } = await start(`malformed-${variant}`, { stallMs: '0' });
    await client.startup();
    client.send({ type: 'Query', sql: 'START_REPLICATION 0/100000 TIMELINE 1' });
    await client.expect('CopyBothResponse');
    const frames = await client.drain();
    await server.waitForSessions(1);
    expect(server.errors).toEqual([]);
    return { frames, received: Buffer.concat(client.received) };
  }

  it('sends keepalives and XLogData of wrong lengths', async () => {
    expect((await misbehaviour('keepalive-short')).frames.map((frame) => frame.payload.length)).toEqual([17]);
    expect((await misbehaviour('keepalive-long')).frames.map((frame) => frame.payload.length)).toEqual([19]);
    const short = await misbehaviour('xlogdata-short');
    expect(short.frames[0]!.payload.length).toBe(20);
    expect(short.frames[0]!.payload[0]).toBe(0x77);
  });

  it('sends unknown message types', async () => {
    expect((await misbehaviour('unknown-copydata-type')).frames[0]!.payload[0]).toBe(0x7a);
    const unknown = await misbehaviour('unknown-message');
    expect(unknown.frames[0]!.code).toBe(0x6a);
    expect(unknown.frames[0]!.message).toBeUndefined();
  });

  it('sends truncated frames and impossible lengths', async () => {
    expect((await misbehaviour('truncated-header')).received.subarray(-3)).toEqual(Buffer.from([0x64, 0, 0]));
    const truncated = await misbehaviour('truncated-message');
    expect(truncated.received.subarray(-100).readUInt32BE(1)).toBe(4 + 25 + 8192);
    expect((await misbehaviour('absurd-length')).received.subarray(-6)).toEqual(
      Buffer.from([0x64, 0x7f, 0xff, 0xff, 0xf0, 0x77]),
    );
    expect((await misbehaviour('negative-length')).received.subarray(-5)).toEqual(
      Buffer.from([0x64, 0, 0, 0, 2]),
    );
  });

  it('sends dataStart jumps ahead and back, and walEnd before dataStart', async () => {
    const starts = async (variant: string) =>
      (await misbehaviour(variant)).frames.map((frame) => {
        const message = replication(frame);
        return message.type === 'XLogData' ? [message.dataStart, message.walEnd] : [];
      });
    expect(await starts('data-start-ahead')).toEqual([
      [0x100000n, expect.any(BigInt)],
      [0x104000n, expect.any(BigInt)],
    ]);
    expect((await starts('data-start-back')).map(([dataStart]) => dataStart)).toEqual([
      0x100000n,
      0x102000n,
      0x102000n,
    ]);
    expect(await starts('wal-end-before-data-start')).toEqual([[0x100000n, 0xfe000n]]);
  });

  it('answers TIMELINE_HISTORY with a traversal file name or non-history content', async () => {
    for (const [variant, expected] of [
      ['history-path-traversal', '../00000002.history'],
      ['history-not-history', '00000002.history'],
    ] as const) {
      const { client } = await start(`malformed-${variant}`);
      await client.startup();
      const result = await client.query('TIMELINE_HISTORY 2');
      expect(result.rows[0]![0]).toBe(expected);
      if (variant === 'history-not-history') expect(result.rows[0]![1]).not.toMatch(/^1\t/);
    }
  });

  it('changes the system identifier on the next connection', async () => {
    const { server, client } = await start('malformed-system-id-changes');
    await client.startup();
    const first = (await client.query('IDENTIFY_SYSTEM')).rows[0]![0];
    client.send({ type: 'Query', sql: 'START_REPLICATION 0/100000 TIMELINE 1' });
    await client.drain();
    const again = await MinimalClient.connect(server.port);
    clients.push(again);
    await again.startup();
    const second = (await again.query('IDENTIFY_SYSTEM')).rows[0]![0];
    expect(BigInt(second!)).toBe(BigInt(first!) + 1n);
  });
});
