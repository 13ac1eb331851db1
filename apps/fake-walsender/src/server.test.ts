import { decodeReplicationMessage, encodeStandbyStatusUpdate, ProtocolVersion } from '@wal/protocol';
import { createWalGenerator } from '@wal/protocol/wal-format';
import { afterEach, describe, expect, it } from 'vitest';
import { createSelfSignedCertificate } from './certificate.js';
import { createFakeWalsender, type FakeWalsender, type FakeWalsenderOptions } from './server.js';
import { MinimalClient } from './testing/minimal-client.js';

const MB = 1024 * 1024;
const servers: FakeWalsender[] = [];
const clients: MinimalClient[] = [];

async function start(
  options: FakeWalsenderOptions,
): Promise<{ server: FakeWalsender; client: MinimalClient }> {
  const server = await createFakeWalsender(options);
  servers.push(server);
  const client = await MinimalClient.connect(server.port, server.host);
  clients.push(client);
  return { server, client };
}

function lengthOf(payload: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeInt32BE(payload.length + 4);
  return length;
}

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

describe('startup and authentication', () => {
  it('trust: AuthenticationOk, the reported parameters, a 4-byte key, ReadyForQuery; records the startup', async () => {
    const { server, client } = await start({
      scenario: 'happy',
      server: { version: 15, versionText: '15.8.1' },
    });
    const messages = await client.startup({ user: 'alice' });
    expect(messages[0]).toEqual({ type: 'AuthenticationOk' });
    const parameters = Object.fromEntries(
      messages.flatMap((message) =>
        message.type === 'ParameterStatus' ? [[message.name, message.value]] : [],
      ),
    );
    expect(parameters).toMatchObject({
      server_version: '15.8.1',
      integer_datetimes: 'on',
      application_name: 'minimal-client',
    });
    expect(parameters.search_path).toBeUndefined();
    const key = messages.find((message) => message.type === 'BackendKeyData');
    expect(key?.type === 'BackendKeyData' && key.secretKey.length).toBe(4);
    expect(messages.at(-1)).toEqual({ type: 'ReadyForQuery', transactionStatus: 'I' });
    expect(server.recorded[0]).toMatchObject({
      connection: 1,
      message: {
        type: 'StartupMessage',
        protocolVersion: ProtocolVersion.V3_0,
        parameters: { user: 'alice', replication: 'true' },
      },
    });
    expect(typeof server.recorded[0]!.receivedAt).toBe('number');
  });

  it('protocol 3.2: a 32-byte cancel key from 18; NegotiateProtocolVersion (minor 0) from 17', async () => {
    const eighteen = await start({ server: { version: 18 } });
    const messages18 = await eighteen.client.startup({ protocolVersion: ProtocolVersion.V3_2 });
    const key = messages18.find((message) => message.type === 'BackendKeyData');
    expect(key?.type === 'BackendKeyData' && key.secretKey.length).toBe(32);
    expect(
      messages18.some((message) => message.type === 'ParameterStatus' && message.name === 'search_path'),
    ).toBe(true);
    const seventeen = await start({ server: { version: 17 } });
    const messages17 = await seventeen.client.startup({
      protocolVersion: ProtocolVersion.V3_2,
      parameters: { '_pq_.test_protocol_negotiation': 'x' },
    });
    expect(messages17[0]).toEqual({
      type: 'NegotiateProtocolVersion',
      newestMinorVersion: 0,
      unrecognizedOptions: ['_pq_.test_protocol_negotiation'],
    });
    const key17 = messages17.find((message) => message.type === 'BackendKeyData');
    expect(key17?.type === 'BackendKeyData' && key17.secretKey.length).toBe(4);
  });

  it("answers libpq 19's grease request (3.9999 with _pq_.test_protocol_negotiation) as a server does", async () => {
    // Built by hand: length, protocol 3.9999, then name/value pairs and a closing NUL.
    const body = Buffer.concat(
      ['user', 'alice', 'replication', 'true', '_pq_.test_protocol_negotiation', ''].map((text) =>
        Buffer.from(`${text}\0`),
      ),
    );
    const packet = Buffer.alloc(8 + body.length + 1);
    packet.writeInt32BE(packet.length, 0);
    packet.writeInt32BE((3 << 16) | 9999, 4);
    body.copy(packet, 8);
    // NegotiateProtocolVersion: 'v', length, the newest minor the server supports, one option.
    const negotiation = (minor: number): Buffer => {
      const option = Buffer.from('_pq_.test_protocol_negotiation\0');
      const message = Buffer.alloc(1 + 4 + 4 + 4 + option.length);
      message.write('v', 0);
      message.writeInt32BE(message.length - 1, 1);
      message.writeInt32BE((3 << 16) | minor, 5);
      message.writeInt32BE(1, 9);
      option.copy(message, 13);
      return message;
    };
    for (const [version, minor, keyLength] of [
      [18, 2, 32],
      [17, 0, 4],
    ] as const) {
      const { client } = await start({ server: { version } });
      client.sendRaw(packet);
      const first = await client.next();
      expect(first?.code).toBe('v'.charCodeAt(0));
      expect(Buffer.concat([Buffer.from('v'), lengthOf(first!.payload), first!.payload])).toEqual(
        negotiation(minor),
      );
      expect(await client.expect('AuthenticationOk')).toEqual({ type: 'AuthenticationOk' });
      // The session runs at the negotiated version: 3.2 has the long cancel key.
      let frame = await client.next();
      while (frame?.message?.type === 'ParameterStatus') frame = await client.next();
      expect(frame?.message?.type === 'BackendKeyData' && frame.message.secretKey.length).toBe(keyLength);
    }
  });

  for (const method of ['password', 'md5', 'scram-sha-256'] as const) {
    it(`${method}: the right password logs in, a wrong one gets FATAL 28P01 and EOF`, async () => {
      const good = await start({ auth: { method, password: 's3cret', iterations: 1024 } });
      const messages = await good.client.startup({ user: 'bob', password: 's3cret' });
      expect(messages.at(-1)).toEqual({ type: 'ReadyForQuery', transactionStatus: 'I' });
      expect(messages).toContainEqual({ type: 'AuthenticationOk' });
      const bad = await start({ auth: { method, password: 's3cret' } });
      const refused = await bad.client.startup({ user: 'bob', password: 'wrong' });
      expect(refused.at(-1)).toMatchObject({
        type: 'ErrorResponse',
        fields: {
          severity: 'FATAL',
          code: '28P01',
          message: 'password authentication failed for user "bob"',
        },
      });
      expect(await bad.client.next()).toBeUndefined();
      expect(bad.server.errors).toEqual([]);
    });
  }

  it('scram-sha-256: announces the configured iteration count and signs correctly, or wrongly on request', async () => {
    const signed: boolean[] = [];
    const good = await start({ auth: { method: 'scram-sha-256', password: 'pw', iterations: 2048 } });
    const messages = await good.client.startup({
      password: 'pw',
      onServerSignature: (valid) => signed.push(valid),
    });
    const first = messages.find((message) => message.type === 'AuthenticationSASLContinue');
    expect(first?.type === 'AuthenticationSASLContinue' && first.data.toString()).toMatch(/,i=2048$/);
    const wrong = await start({
      auth: { method: 'scram-sha-256', password: 'pw', wrongServerSignature: true },
    });
    await wrong.client.startup({ password: 'pw', onServerSignature: (valid) => signed.push(valid) });
    expect(signed).toEqual([true, false]);
    expect(messages).toContainEqual({ type: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256'] });
  });

  it('TLS: answers SSLRequest with S and speaks TLS with its self-signed certificate; N without TLS', async () => {
    const secure = await start({ tls: true, auth: { method: 'scram-sha-256', password: 'pw' } });
    expect(await secure.client.requestTls(secure.server.certificate)).toBe('S');
    const messages = await secure.client.startup({ password: 'pw' });
    expect(messages.at(-1)).toEqual({ type: 'ReadyForQuery', transactionStatus: 'I' });
    const plain = await start({});
    expect(await plain.client.requestTls()).toBe('N');
    expect((await plain.client.startup()).at(-1)).toEqual({ type: 'ReadyForQuery', transactionStatus: 'I' });
    expect(plain.server.recorded.map((entry) => entry.message.type).slice(0, 2)).toEqual([
      'SSLRequest',
      'StartupMessage',
    ]);
  });
});

describe('replication commands', () => {
  it('answers the usual sequence with version-dependent column types', async () => {
    for (const [version, timelineType] of [
      [15, 23],
      [16, 20],
    ] as const) {
      const { client } = await start({ server: { version, segmentSize: MB, flushLsn: 0x3a0000n } });
      await client.startup();
      const mode = await client.query('SHOW data_directory_mode');
      expect(mode.rows).toEqual([['0700']]);
      const identify = await client.query('IDENTIFY_SYSTEM');
      expect(identify.fields.map((field) => [field.name, field.typeOid])).toEqual([
        ['systemid', 25],
        ['timeline', timelineType],
        ['xlogpos', 25],
        ['dbname', 25],
      ]);
      // The happy scenario reports a position in the first segment, as if WAL grew since.
      expect(identify.rows).toEqual([['7710807530998405100', '1', '0/100090', null]]);
      expect(identify.tags).toEqual(['IDENTIFY_SYSTEM']);
      expect((await client.query('SHOW wal_segment_size;')).rows).toEqual([['1MB']]);
      expect((await client.query('READ_REPLICATION_SLOT nosuch')).rows).toEqual([[null, null, null]]);
    }
  });

  it('creates, reads and drops slots; reports the errors a server reports', async () => {
    const { client } = await start({ server: { version: 17, segmentSize: MB, flushLsn: 0x3a0000n } });
    await client.startup();
    const created = await client.query('CREATE_REPLICATION_SLOT "s1" PHYSICAL (RESERVE_WAL)');
    expect(created.rows).toEqual([['s1', '0/0', null, null]]);
    expect((await client.query('READ_REPLICATION_SLOT s1')).rows).toEqual([['physical', '0/3A0000', '1']]);
    const duplicate = await client.query('CREATE_REPLICATION_SLOT "s1" PHYSICAL');
    expect(duplicate.error).toMatchObject({
      fields: { code: '42710', message: 'replication slot "s1" already exists' },
    });
    expect((await client.query('DROP_REPLICATION_SLOT "s1"')).tags).toEqual(['DROP_REPLICATION_SLOT']);
    expect((await client.query('DROP_REPLICATION_SLOT "s1"')).error).toMatchObject({
      fields: { code: '42704' },
    });
    expect((await client.query('SHOW nosuch')).error).toMatchObject({
      fields: { code: '42704', message: 'unrecognized configuration parameter "nosuch"' },
    });
    expect((await client.query('SELECT 1')).error).toMatchObject({ fields: { code: '0A000' } });
    expect((await client.query('START_REPLICATION banana')).error).toMatchObject({
      fields: { code: '42601', message: 'syntax error' },
    });
    expect((await client.query('TIMELINE_HISTORY 1')).error).toMatchObject({ fields: { code: '58P01' } });
  });

  it('refuses READ_REPLICATION_SLOT on 14 as a syntax error, as the grammar had no such command', async () => {
    const { client } = await start({ server: { version: 14 } });
    await client.startup();
    expect((await client.query('READ_REPLICATION_SLOT s1')).error).toMatchObject({
      fields: { code: '42601' },
    });
  });
});

/** Read XLogData until CopyDone-or-timeout; returns the messages (payloads decoded). */
async function readWal(client: MinimalClient, until: bigint) {
  const messages: { dataStart: bigint; walEnd: bigint; data: Buffer }[] = [];
  let position = 0n;
  while (position < until) {
    const frame = await client.next();
    if (frame?.message?.type !== 'CopyData')
      throw new Error(`expected CopyData, got ${frame?.message?.type}`);
    const message = decodeReplicationMessage(frame.message.data);
    if (message.type !== 'XLogData') continue;
    messages.push({ dataStart: message.dataStart, walEnd: message.walEnd, data: Buffer.from(message.data) });
    position = message.dataStart + BigInt(message.data.length);
  }
  return messages;
}

describe('streaming', () => {
  it('happy: sends exactly the generator bytes in walsender-sized chunks, then ends COPY on CopyDone', async () => {
    const flushLsn = 0x380000n;
    const { server, client } = await start({
      scenario: 'happy',
      parameters: { segmentSizeMb: '1', flushLsn: '0/380000' },
    });
    await client.startup();
    const startLsn = 0x118000n; // Mid-segment and not 128 kB aligned: the chunks then cross segment boundaries.
    client.send({ type: 'Query', sql: 'START_REPLICATION 0/118000 TIMELINE 1' });
    await client.expect('CopyBothResponse');
    client.send({
      type: 'CopyData',
      data: encodeStandbyStatusUpdate({
        writeLsn: startLsn,
        flushLsn: 0n,
        applyLsn: 0n,
        sendTime: 1n,
        replyRequested: false,
      }),
    });
    const messages = await readWal(client, flushLsn);
    const generator = createWalGenerator({
      seed: 1,
      segmentSize: MB,
      timeline: 1,
      systemId: server.model.systemId,
      serverVersion: 17,
    });
    expect(
      Buffer.concat(messages.map((message) => message.data)).equals(generator.read(startLsn, flushLsn)),
    ).toBe(true);
    for (const [index, message] of messages.entries()) {
      expect(message.data.length).toBeLessThanOrEqual(128 * 1024);
      expect(message.walEnd).toBe(flushLsn);
      const end = message.dataStart + BigInt(message.data.length);
      if (index < messages.length - 1) expect(end % 8192n).toBe(0n);
    }
    const crossing = messages.filter(
      (message) =>
        message.dataStart / BigInt(MB) !==
        (message.dataStart + BigInt(message.data.length) - 1n) / BigInt(MB),
    );
    expect(crossing.length).toBeGreaterThan(0);
    client.send({ type: 'CopyDone' });
    expect(await client.expect('CopyDone')).toEqual({ type: 'CopyDone' });
    expect(await client.expect('CommandComplete')).toEqual({
      type: 'CommandComplete',
      tag: 'START_STREAMING',
    });
    expect(await client.expect('CommandComplete')).toEqual({
      type: 'CommandComplete',
      tag: 'START_REPLICATION',
    });
    await client.expect('ReadyForQuery');
    client.send({ type: 'Terminate' });
    expect(await client.next()).toBeUndefined();
    await server.waitForSessions(1);
    const standby = server.recorded.filter((entry) => entry.standby !== undefined);
    expect(standby).toHaveLength(1);
    expect(standby[0]!.standby).toMatchObject({
      type: 'StandbyStatusUpdate',
      writeLsn: startLsn,
      flushLsn: 0n,
      replyRequested: false,
    });
    expect(server.recorded.map((entry) => entry.message.type)).toEqual([
      'StartupMessage',
      'Query',
      'CopyData',
      'CopyDone',
      'Terminate',
    ]);
    const times = server.recorded.map((entry) => entry.receivedAt);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(server.errors).toEqual([]);
  });

  for (const segmentSizeMb of [16, 64]) {
    it(`happy with ${segmentSizeMb} MB segments: a message crosses the segment boundary with the right bytes`, async () => {
      const segmentSize = BigInt(segmentSizeMb * MB);
      const { server, client } = await start({
        scenario: 'happy',
        parameters: { segmentSizeMb: String(segmentSizeMb) },
      });
      await client.startup();
      expect((await client.query('SHOW wal_segment_size')).rows).toEqual([[`${segmentSizeMb}MB`]]);
      const startLsn = 2n * segmentSize - 3n * 8192n;
      client.send({
        type: 'Query',
        sql: `START_REPLICATION 0/${startLsn.toString(16).toUpperCase()} TIMELINE 1`,
      });
      await client.expect('CopyBothResponse');
      const messages = await readWal(client, 2n * segmentSize + 8192n);
      expect(messages[0]!.dataStart).toBe(startLsn);
      expect(messages[0]!.data.length).toBe(128 * 1024);
      const bytes = Buffer.concat(messages.map((message) => message.data));
      const expected = server.model.currentTimeline.generator.read(startLsn, startLsn + BigInt(bytes.length));
      expect(bytes.equals(expected)).toBe(true);
      // The second segment starts with its long page header right after the boundary.
      expect(bytes.readUInt16LE(3 * 8192 + 2) & 2).toBe(2);
      client.send({ type: 'CopyDone' });
      // XLogData already in flight before the server saw our CopyDone comes first.
      let frame = await client.next();
      while (frame?.message?.type === 'CopyData') frame = await client.next();
      expect(frame?.message).toEqual({ type: 'CopyDone' });
    });
  }

  it('cut-at: the client receives exactly N bytes, then EOF, wherever N falls', async () => {
    for (const byte of [1, 17, 300, 70_000, 200_001]) {
      const { server, client } = await start({
        scenario: 'cut-at',
        parameters: { byte: String(byte), segmentSizeMb: '1' },
      });
      await client.startup();
      if (!client.closed) client.send({ type: 'Query', sql: 'START_REPLICATION 0/100000 TIMELINE 1' });
      await client.drain();
      expect(client.receivedLength).toBe(byte);
      await server.waitForSessions(1);
      expect(server.errors).toEqual([]);
    }
  });

  it('cut-at: the cut bytes are a prefix of the uncut conversation (only timestamps and the cancel key differ)', async () => {
    const run = async (parameters: Record<string, string>) => {
      const { client } = await start({
        scenario: 'cut-at',
        parameters: { segmentSizeMb: '1', ...parameters },
      });
      await client.startup();
      client.send({ type: 'Query', sql: 'START_REPLICATION 0/100000 TIMELINE 1' });
      if (parameters.byte === '100000000') {
        await client.expect('CopyBothResponse');
        await readWal(client, 0x200000n);
        client.close();
      } else {
        await client.drain();
      }
      return Buffer.concat(client.received);
    };
    const whole = await run({ byte: '100000000' });
    const cut = await run({ byte: '150000' });
    expect(cut.length).toBe(150_000);
    // Mask the fields that legitimately differ: 4-byte cancel key and XLogData sendTime.
    const mask = (bytes: Buffer) => {
      const copy = Buffer.from(bytes);
      let offset = 0;
      while (offset + 5 <= copy.length) {
        const code = copy[offset]!;
        const length = copy.readUInt32BE(offset + 1);
        if (code === 0x4b) copy.fill(0, offset + 9, Math.min(copy.length, offset + 13));
        if (code === 0x64 && copy[offset + 5] === 0x77)
          copy.fill(0, offset + 22, Math.min(copy.length, offset + 30));
        offset += 1 + length;
      }
      return copy;
    };
    expect(mask(cut).equals(mask(whole.subarray(0, cut.length)))).toBe(true);
  });
});

describe('custom scripts', () => {
  it('runs a hand-written conversation: regex expectations, WAL, keepalive, explicit end of timeline', async () => {
    const { server, client } = await start({
      server: { segmentSize: MB, flushLsn: 0x180000n },
      async script(session) {
        await session.handshake();
        const { match } = await session.expectQuery(
          /^START_REPLICATION ([0-9A-F]+\/[0-9A-F]+) TIMELINE (\d+)$/,
        );
        expect(match?.[1]).toBe('0/100000');
        await session.send({ type: 'CopyBothResponse', format: 0, columnFormats: [] });
        await session.sendWal(0x100000n, 0x110000n, { chunkSize: 8192 });
        const reply = await session.keepalive({ replyRequested: true, waitForReply: true, timeoutMs: 5000 });
        expect(reply).toMatchObject({ type: 'StandbyStatusUpdate', writeLsn: 0x110000n });
        await session.endTimeline({ timeline: 7, startLsn: 0x10fff8n });
        await session.expect('Terminate');
      },
    });
    await client.startup();
    client.send({ type: 'Query', sql: 'START_REPLICATION 0/100000 TIMELINE 1' });
    await client.expect('CopyBothResponse');
    const messages = await readWal(client, 0x110000n);
    expect(messages.map((message) => message.data.length)).toEqual(Array(8).fill(8192));
    const keepalive = decodeReplicationMessage((await client.expect('CopyData')).data);
    expect(keepalive).toMatchObject({ type: 'PrimaryKeepalive', replyRequested: true, walEnd: 0x110000n });
    client.send({
      type: 'CopyData',
      data: encodeStandbyStatusUpdate({
        writeLsn: 0x110000n,
        flushLsn: 0n,
        applyLsn: 0n,
        sendTime: 0n,
        replyRequested: false,
      }),
    });
    await client.expect('CopyDone');
    client.send({ type: 'CopyDone' });
    const result = await client.readResult();
    expect(result.rows).toEqual([['7', '0/10FFF8']]);
    expect(result.tags).toEqual(['START_STREAMING', 'START_REPLICATION']);
    client.send({ type: 'Terminate' });
    await server.waitForSessions(1);
    expect(server.errors).toEqual([]);
  });

  it('reports a client that deviates from the script, and a wait that times out, in server.errors', async () => {
    const deviating = await start({
      async script(session) {
        await session.handshake();
        await session.expectQuery(/^IDENTIFY_SYSTEM$/);
      },
    });
    await deviating.client.startup();
    deviating.client.send({ type: 'Query', sql: 'SHOW wal_segment_size' });
    await deviating.server.waitForSessions(1);
    expect(deviating.server.errors.map((error) => error.message)).toEqual([
      'expected a query matching /^IDENTIFY_SYSTEM$/, got "SHOW wal_segment_size"',
    ]);
    const waiting = await start({
      async script(session) {
        await session.handshake();
        await session.waitForStandby(undefined, 50);
      },
    });
    await waiting.client.startup();
    await waiting.server.waitForSessions(1);
    expect(waiting.server.errors).toEqual([expect.objectContaining({ code: 'WAL_ERR_FAKE_SCRIPT_TIMEOUT' })]);
  });
});

describe('listening', () => {
  it('reports a port it cannot listen on with a coded error', async () => {
    const { server } = await start({});
    await expect(createFakeWalsender({ port: server.port })).rejects.toMatchObject({
      code: 'WAL_ERR_FAKE_LISTEN',
      message: expect.stringContaining(`cannot listen on 127.0.0.1:${server.port}`),
    });
  });

  it('treats a client that rejects the TLS certificate as a closed session, not a script failure', async () => {
    const { server, client } = await start({ tls: true });
    // Trusting another self-signed certificate, the client aborts the handshake.
    const stranger = createSelfSignedCertificate().certificate;
    await expect(client.requestTls(stranger)).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
    client.close();
    await server.waitForSessions(1);
    expect(server.errors).toEqual([]);
  });
});

describe('a misbehaving client', () => {
  it('records undecodable bytes, closes the connection and reports the deviation without crashing', async () => {
    const { server, client } = await start({});
    await client.startup();
    client.sendRaw(Buffer.from([0x51, 0x7f, 0xff, 0xff, 0xff]));
    expect(await client.next()).toBeUndefined();
    await server.waitForSessions(1);
    expect(server.recorded.at(-1)?.message).toMatchObject({ type: 'Undecodable' });
    const second = await MinimalClient.connect(server.port);
    clients.push(second);
    second.sendRaw(Buffer.from([0, 0, 0, 8, 0, 9, 0, 0]));
    expect(await second.next()).toBeUndefined();
    await server.waitForSessions(2);
    expect(server.errors.map((error) => error.message)).toEqual([
      expect.stringMatching(/^expected a Query, got an undecodable message/),
      expect.stringMatching(/^expected a startup packet, got an undecodable message/),
    ]);
  });
});

describe('START_REPLICATION checks', () => {
  it('refuses what a walsender refuses, before or inside COPY', async () => {
    const { server, client } = await start({
      scenario: 'timeline-switch',
      parameters: { segmentSizeMb: '1', flushLsn: '0/400000' },
    });
    const switchLsn = server.model.timelines[0]!.endLsn!;
    await client.startup();
    expect((await client.query('START_REPLICATION 0/100000 TIMELINE 9')).error).toMatchObject({
      fields: { code: 'XX000', message: "requested timeline 9 is not in this server's history" },
    });
    expect((await client.query('START_REPLICATION 0/100000 TIMELINE 0')).error).toMatchObject({
      fields: { code: '42601' },
    });
    expect((await client.query('TIMELINE_HISTORY 0')).error).toMatchObject({
      fields: { message: 'invalid timeline 0' },
    });
    const beyond = await client.query('START_REPLICATION 0/300000 TIMELINE 1');
    expect(beyond.error).toMatchObject({
      fields: {
        code: 'XX000',
        message: "requested starting point 0/00300000 on timeline 1 is not in this server's history",
        detail: `This server's history forked from timeline 1 at 0/${switchLsn.toString(16).toUpperCase().padStart(8, '0')}.`,
      },
    });
    client.send({ type: 'Query', sql: 'START_REPLICATION 0/500000 TIMELINE 2' });
    await client.expect('CopyBothResponse');
    expect(await client.expect('ErrorResponse')).toMatchObject({
      fields: {
        code: 'XX000',
        message:
          'requested starting point 0/00500000 is ahead of the WAL flush position of this server 0/00400000',
      },
    });
    await client.expect('ReadyForQuery');
  });
});
