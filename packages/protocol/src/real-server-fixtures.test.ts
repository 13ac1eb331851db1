import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  type BackendMessage,
  decodeBackendMessage,
  encodeBackendMessage,
} from './backend/backend-message.js';
import { type Frame, MessageFramer } from './io/framer.js';
import { parseLsn } from './lsn.js';
import { encodePrimaryKeepalive } from './replication/primary-keepalive.js';
import { decodeReplicationMessage, type ReplicationMessage } from './replication/replication-message.js';
import { encodeXLogData } from './replication/xlog-data.js';

/**
 * Replays byte streams recorded from real servers (see real-server.integration.test.ts): the
 * framer and decoders must understand them in any chunking, and the encoders must reproduce
 * every real frame byte for byte.
 */
interface Fixture {
  serverVersion: string;
  protocolVersion: number;
  startLsn: string;
  chunks: string[];
}

const directory = new URL('./__fixtures__/', import.meta.url);
const fixtures = readdirSync(directory)
  .filter((name) => name.endsWith('-replication-session.json'))
  .map((name) => [name, JSON.parse(readFileSync(new URL(name, directory), 'utf8')) as Fixture] as const);

function frameAll(chunks: Buffer[]): Frame[] {
  const framer = new MessageFramer();
  const frames: Frame[] = [];
  for (const chunk of chunks) {
    framer.push(chunk);
    for (let frame = framer.next(); frame !== undefined; frame = framer.next()) frames.push(frame);
  }
  expect(framer.bufferedLength).toBe(0);
  return frames;
}

function summarize(frames: Frame[]): string {
  return frames.map((frame) => `${frame.code}:${frame.payload.toString('hex')}`).join(' ');
}

it('has recorded sessions from PostgreSQL 14 and 18', () => {
  expect(fixtures.map(([name]) => name.split('-')[0])).toEqual(expect.arrayContaining(['pg14', 'pg18']));
});

describe.each(fixtures)('recorded session %s', (_name, fixture) => {
  const chunks = fixture.chunks.map((chunk) => Buffer.from(chunk, 'base64'));
  const stream = Buffer.concat(chunks);
  const frames = frameAll(chunks);
  const messages = frames.map((frame) => decodeBackendMessage(frame.code, frame.payload));
  const replication: ReplicationMessage[] = messages.flatMap((message) =>
    message.type === 'CopyData' ? [decodeReplicationMessage(message.data)] : [],
  );
  const major = Number.parseInt(fixture.serverVersion, 10);

  it('decodes into the expected conversation', () => {
    const types = messages.map((message) => message.type);
    expect(types).toContain('AuthenticationOk');
    const negotiation = messages.find((message) => message.type === 'NegotiateProtocolVersion');
    if (fixture.protocolVersion === 196610 && major < 18) {
      expect(negotiation).toEqual({
        type: 'NegotiateProtocolVersion',
        newestMinorVersion: 0,
        unrecognizedOptions: [],
      });
    } else {
      expect(negotiation).toBeUndefined();
    }
    const keyData = messages.find((message) => message.type === 'BackendKeyData');
    expect(keyData?.secretKey.length).toBe(fixture.protocolVersion === 196610 && major >= 18 ? 32 : 4);
    expect(messages).toContainEqual({ type: 'CommandComplete', tag: 'IDENTIFY_SYSTEM' });
    const error = messages.find((message) => message.type === 'ErrorResponse');
    expect(error?.fields.code).toBe('42704');
    expect(types).toContain('CopyBothResponse');
    expect(replication[0]).toMatchObject({ type: 'XLogData', dataStart: parseLsn(fixture.startLsn) });
    expect(replication.some((message) => message.type === 'PrimaryKeepalive')).toBe(true);
    expect(messages.slice(-4).map((message: BackendMessage) => message.type)).toEqual([
      'CopyDone',
      'CommandComplete',
      'CommandComplete',
      'ReadyForQuery',
    ]);
  });

  it('re-encodes every frame to the bytes the server sent', () => {
    messages.forEach((message, index) => {
      const original = frames[index]!;
      expect(encodeBackendMessage(message).subarray(5)).toEqual(original.payload);
    });
    const copyData = messages.filter((message) => message.type === 'CopyData');
    copyData.forEach((message, index) => {
      const decoded = replication[index]!;
      const encoded =
        decoded.type === 'XLogData'
          ? encodeXLogData(decoded)
          : decoded.type === 'PrimaryKeepalive'
            ? encodePrimaryKeepalive(decoded)
            : undefined;
      expect(encoded).toEqual(message.data);
    });
  });

  it('frames identically when split at every offset', () => {
    const expected = summarize(frames);
    const failures: number[] = [];
    for (let cut = 0; cut <= stream.length; cut++) {
      if (summarize(frameAll([stream.subarray(0, cut), stream.subarray(cut)])) !== expected)
        failures.push(cut);
    }
    expect(failures).toEqual([]);
  });
});
