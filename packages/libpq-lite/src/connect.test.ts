import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type BackendMessage,
  decodeFrontendMessage,
  decodeStartupPacket,
  encodeBackendMessage,
  MessageFramer,
  type NoticeFields,
} from '@wal/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  type Connection,
  ConnectionError,
  connect,
  type ReplicationStream,
  ServerError,
  TlsError,
} from './index.js';

/** The server side of one client connection, scripted by a test. */
class Peer {
  private readonly framer = new MessageFramer({ expectStartupPacket: true });
  private frames: { code: number; payload: Buffer }[] = [];
  private waiter: (() => void) | undefined;
  closed = false;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.framer.push(chunk);
      for (let frame = this.framer.next(); frame !== undefined; frame = this.framer.next())
        this.frames.push(frame);
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    socket.on('error', () => {});
  }

  async frame(): Promise<{ code: number; payload: Buffer }> {
    for (;;) {
      const frame = this.frames.shift();
      if (frame !== undefined) return frame;
      if (this.closed) throw new Error('client closed the connection');
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }

  async startup() {
    const frame = await this.frame();
    return decodeStartupPacket(frame.payload);
  }

  expectStartupPacket(): void {
    this.framer.expectStartupPacket();
  }

  async message(authentication?: 'password' | 'sasl-initial' | 'sasl') {
    const frame = await this.frame();
    return decodeFrontendMessage(
      frame.code,
      frame.payload,
      authentication === undefined ? undefined : { authentication },
    );
  }

  send(...messages: BackendMessage[]): void {
    for (const message of messages) this.socket.write(encodeBackendMessage(message));
  }

  /** AuthenticationOk and the rest of a successful start. */
  ready(serverVersion = '15.18 (Debian 15.18-1.pgdg120+1)'): void {
    this.send(
      { type: 'AuthenticationOk' },
      { type: 'ParameterStatus', name: 'server_version', value: serverVersion },
      { type: 'ParameterStatus', name: 'integer_datetimes', value: 'on' },
      { type: 'BackendKeyData', processId: 4242, secretKey: Buffer.from([1, 2, 3, 4]) },
      { type: 'ReadyForQuery', transactionStatus: 'I' },
    );
  }

  fatal(code: string, message: string, extra: Partial<NoticeFields> = {}): void {
    this.send({ type: 'ErrorResponse', fields: { severity: 'FATAL', code, message, ...extra } });
    this.socket.end();
  }
}

type Script = (peer: Peer, index: number) => Promise<void>;

const servers: Server[] = [];
const scriptErrors: unknown[] = [];

async function startServer(
  script: Script,
  listenPath?: string,
): Promise<{ port: number; connections: () => number }> {
  let count = 0;
  const server = createServer((socket) => {
    const peer = new Peer(socket);
    script(peer, count++).catch((error) => {
      if (!peer.closed) scriptErrors.push(error);
      socket.destroy();
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) =>
    listenPath ? server.listen(listenPath, resolve) : server.listen(0, '127.0.0.1', resolve),
  );
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    connections: () => count,
  };
}

afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise<void>((resolve) => server.close(() => resolve()));
  const errors = scriptErrors.splice(0);
  expect(errors).toEqual([]);
});

const base = (port: number, extra: Record<string, string> = {}) => ({
  host: '127.0.0.1',
  port: String(port),
  user: 'alice',
  dbname: 'replication',
  replication: 'true',
  fallback_application_name: 'pg_receivewal',
  sslmode: 'disable',
  ...extra,
});
const quietEnv = { HOME: '/nonexistent-home' };

async function failure<T extends Error>(
  promise: Promise<unknown>,
  type: new (...args: never[]) => T,
): Promise<T> {
  try {
    const value = await promise;
    if (value && typeof (value as Connection).destroy === 'function') (value as Connection).destroy();
  } catch (error) {
    expect(error).toBeInstanceOf(type);
    return error as T;
  }
  throw new Error('expected a failure');
}

/** Server half of SCRAM-SHA-256 (RFC 5802), written independently of the client. */
async function scramServer(
  peer: Peer,
  password: string,
  options: { tamperSignature?: boolean; skipFinal?: boolean } = {},
) {
  peer.send({ type: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256'] });
  const initial = await peer.message('sasl-initial');
  if (initial.type !== 'SASLInitialResponse' || initial.data === null)
    throw new Error('expected SASLInitialResponse');
  expect(initial.mechanism).toBe('SCRAM-SHA-256');
  const clientFirst = initial.data.toString();
  expect(clientFirst).toMatch(/^n,,n=,r=/);
  const clientFirstBare = clientFirst.slice(3);
  const nonce = `${clientFirstBare.split('r=')[1]}${randomBytes(9).toString('base64')}`;
  const salt = randomBytes(16);
  const serverFirst = `r=${nonce},s=${salt.toString('base64')},i=4096`;
  peer.send({ type: 'AuthenticationSASLContinue', data: Buffer.from(serverFirst) });
  const response = await peer.message('sasl');
  if (response.type !== 'SASLResponse') throw new Error('expected SASLResponse');
  const clientFinal = response.data.toString();
  const withoutProof = clientFinal.slice(0, clientFinal.lastIndexOf(',p='));
  const proof = Buffer.from(clientFinal.slice(clientFinal.lastIndexOf(',p=') + 3), 'base64');
  const salted = pbkdf2Sync(password, salt, 4096, 32, 'sha256');
  const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
  const storedKey = createHash('sha256')
    .update(createHmac('sha256', salted).update('Client Key').digest())
    .digest();
  const signature = createHmac('sha256', storedKey).update(authMessage).digest();
  const clientKey = Buffer.from(proof.map((byte, index) => byte ^ signature[index]!));
  if (!createHash('sha256').update(clientKey).digest().equals(storedKey)) {
    peer.fatal('28P01', 'password authentication failed for user "alice"');
    return false;
  }
  const serverSignature = createHmac('sha256', createHmac('sha256', salted).update('Server Key').digest())
    .update(authMessage)
    .digest();
  if (options.tamperSignature) serverSignature[0]! ^= 1;
  if (!options.skipFinal) {
    peer.send({
      type: 'AuthenticationSASLFinal',
      data: Buffer.from(`v=${serverSignature.toString('base64')}`),
    });
  }
  return true;
}

describe('connect against a scripted server', () => {
  it('sends the startup parameters and reads the session facts (trust)', async () => {
    let parameters: Record<string, string> = {};
    const server = await startServer(async (peer) => {
      const startup = await peer.startup();
      if (startup.type !== 'StartupMessage') throw new Error('expected StartupMessage');
      expect(startup.protocolVersion).toBe(196608);
      parameters = startup.parameters;
      peer.ready();
      const query = await peer.message();
      expect(query).toEqual({ type: 'Query', sql: 'IDENTIFY_SYSTEM' });
      peer.send(
        {
          type: 'RowDescription',
          fields: ['systemid', 'timeline', 'xlogpos', 'dbname'].map((name, index) => ({
            name,
            tableOid: 0,
            columnNumber: 0,
            typeOid: index === 1 ? 23 : 25,
            typeSize: index === 1 ? 4 : -1,
            typeModifier: -1,
            format: 0,
          })),
        },
        {
          type: 'DataRow',
          values: [Buffer.from('7400000000000000001'), Buffer.from('3'), Buffer.from('0/5000060'), null],
        },
        { type: 'CommandComplete', tag: 'IDENTIFY_SYSTEM' },
        { type: 'ReadyForQuery', transactionStatus: 'I' },
      );
      expect(await peer.message()).toEqual({ type: 'Terminate' });
    });
    const connection = await connect(base(server.port), { env: quietEnv });
    expect(parameters).toEqual({
      user: 'alice',
      database: 'replication',
      replication: 'true',
      application_name: 'pg_receivewal',
    });
    expect(connection.serverVersion).toBe(150018);
    expect(connection.processId).toBe(4242);
    expect(connection.protocolVersion).toBe(196608);
    expect(connection.usesTls).toBe(false);
    expect(connection.parameters.get('integer_datetimes')).toBe('on');
    expect(await connection.identifySystem()).toEqual({
      systemId: 7400000000000000001n,
      timeline: 3,
      xlogPosition: 0x5000060n,
      databaseName: null,
    });
    await connection.close();
    await connection.close();
  });

  it('answers a cleartext request and never traces the password', async () => {
    const server = await startServer(async (peer) => {
      await peer.startup();
      peer.send({ type: 'AuthenticationCleartextPassword' });
      const message = await peer.message('password');
      expect(message).toEqual({ type: 'PasswordMessage', password: Buffer.from('s3cret-pw') });
      peer.ready();
      await peer.message();
    });
    const trace: string[] = [];
    const connection = await connect(base(server.port, { password: 's3cret-pw' }), {
      env: quietEnv,
      trace: (line) => trace.push(line),
    });
    await connection.close();
    expect(trace.join('\n')).not.toContain('s3cret-pw');
    expect(trace.some((line) => line.includes('PasswordMessage\t[redacted]'))).toBe(true);
  });

  it('answers md5 with the salted double hash', async () => {
    const salt = Buffer.from([9, 8, 7, 6]);
    const server = await startServer(async (peer) => {
      await peer.startup();
      peer.send({ type: 'AuthenticationMD5Password', salt });
      const message = await peer.message('password');
      const inner = createHash('md5').update('pwalice').digest('hex');
      const expected = `md5${createHash('md5').update(inner).update(salt).digest('hex')}`;
      expect(message).toEqual({ type: 'PasswordMessage', password: Buffer.from(expected) });
      peer.ready();
      await peer.message();
    });
    const connection = await connect(base(server.port), { env: { ...quietEnv, PGPASSWORD: 'pw' } });
    await connection.close();
  });

  it('completes SCRAM-SHA-256 and redacts the proof in the trace', async () => {
    const server = await startServer(async (peer) => {
      await peer.startup();
      if (await scramServer(peer, 'correct horse')) {
        peer.ready();
        await peer.message();
      }
    });
    const trace: string[] = [];
    const connection = await connect(base(server.port, { password: 'correct horse' }), {
      env: quietEnv,
      trace: (line) => trace.push(line),
    });
    await connection.close();
    const text = trace.join('\n');
    expect(text).toMatch(/SASLResponse\t"c=biws,r=[^"]*,p=\[redacted\]"/);
    expect(text).toMatch(/AuthenticationSASLFinal\t"v=\[redacted\]"/);
  });

  it('reports a wrong SCRAM password as WAL_ERR_AUTH_FAILED', async () => {
    const server = await startServer(async (peer) => {
      await peer.startup();
      await scramServer(peer, 'right');
    });
    const error = await failure(
      connect(base(server.port, { password: 'wrong' }), { env: quietEnv }),
      AuthenticationError,
    );
    expect(error.code).toBe('WAL_ERR_AUTH_FAILED');
    expect(error.sqlState).toBe('28P01');
    expect(error.message).toContain('password authentication failed for user "alice"');
    expect(error.message).not.toContain('wrong');
    expect(error.retryable).toBe(false);
  });

  it('rejects a server that cannot prove the password, or skips the proof', async () => {
    const tampered = await startServer(async (peer) => {
      await peer.startup();
      await scramServer(peer, 'pw', { tamperSignature: true });
    });
    const error = await failure(
      connect(base(tampered.port, { password: 'pw' }), { env: quietEnv }),
      AuthenticationError,
    );
    expect(error.code).toBe('WAL_ERR_AUTH_SERVER_SIGNATURE');

    const skipping = await startServer(async (peer) => {
      await peer.startup();
      await scramServer(peer, 'pw', { skipFinal: true });
      peer.ready();
    });
    const skipped = await failure(
      connect(base(skipping.port, { password: 'pw' }), { env: quietEnv }),
      AuthenticationError,
    );
    expect(skipped.code).toBe('WAL_ERR_AUTH_INCOMPLETE');
  });

  it('says when no password is available, and uses the prompt when given', async () => {
    const server = await startServer(async (peer) => {
      await peer.startup();
      peer.send({ type: 'AuthenticationCleartextPassword' });
      const message = await peer.message('password');
      expect(message).toEqual({ type: 'PasswordMessage', password: Buffer.from('typed') });
      peer.ready();
      await peer.message();
    });
    // First connection: no password anywhere.
    const error = await failure(connect(base(server.port), { env: quietEnv }), AuthenticationError);
    expect(error.code).toBe('WAL_ERR_AUTH_NO_PASSWORD');
    expect(error.needsPassword).toBe(true);
    expect(error.message).toContain('no password supplied');
    let prompts = 0;
    const connection = await connect(base(server.port), {
      env: quietEnv,
      passwordPrompt: async () => {
        prompts++;
        return 'typed';
      },
    });
    await connection.close();
    expect(prompts).toBe(1);
  });

  describe('with a password file', () => {
    let directory: string;
    beforeAll(async () => {
      directory = await mkdtemp(join(tmpdir(), 'libpq-lite-'));
    });
    afterAll(async () => {
      await rm(directory, { recursive: true, force: true });
    });

    it('uses .pgpass and names it when the password is wrong', async () => {
      const passfile = join(directory, 'pgpass');
      const server = await startServer(async (peer) => {
        await peer.startup();
        peer.send({ type: 'AuthenticationCleartextPassword' });
        const message = await peer.message('password');
        expect(message).toEqual({ type: 'PasswordMessage', password: Buffer.from('from:file') });
        peer.fatal('28P01', 'password authentication failed for user "alice"');
      });
      await writeFile(passfile, `127.0.0.1:${server.port}:replication:alice:from\\:file\n`);
      await chmod(passfile, 0o600);
      const error = await failure(
        connect(base(server.port, { passfile }), { env: { ...quietEnv, PGPASSWORD: undefined } }),
        AuthenticationError,
      );
      expect(error.code).toBe('WAL_ERR_AUTH_FAILED');
      expect(error.message).toContain(`password retrieved from file "${passfile}"`);
      expect(error.message).not.toContain('from:file');
    });
  });

  it('maps the usual startup refusals to coded errors', async () => {
    const cases: [string, string, string][] = [
      [
        '28000',
        'no pg_hba.conf entry for replication connection from host "127.0.0.1", user "alice", no encryption',
        'WAL_ERR_AUTH_REJECTED',
      ],
      ['42501', 'permission denied to start WAL sender', 'WAL_ERR_AUTH_NO_REPLICATION_PERMISSION'],
    ];
    for (const [sqlState, message, code] of cases) {
      const server = await startServer(async (peer) => {
        await peer.startup();
        if (sqlState === '42501') {
          peer.send({ type: 'AuthenticationOk' });
          peer.fatal(sqlState, message, {
            detail: 'Only roles with the REPLICATION attribute may start a WAL sender process.',
          });
        } else {
          peer.fatal(sqlState, message);
        }
      });
      const error = await failure(connect(base(server.port), { env: quietEnv }), AuthenticationError);
      expect(error.code).toBe(code);
      expect(error.sqlState).toBe(sqlState);
      expect(error.message).toContain(message);
    }
  });

  it('refuses unsupported methods and channel binding without TLS', async () => {
    const gss = await startServer(async (peer) => {
      await peer.startup();
      peer.send({ type: 'AuthenticationRequest', method: 7, data: Buffer.alloc(0) });
    });
    const unsupported = await failure(connect(base(gss.port), { env: quietEnv }), AuthenticationError);
    expect(unsupported.code).toBe('WAL_ERR_AUTH_UNSUPPORTED');
    expect(unsupported.message).toContain('GSSAPI authentication not supported');

    const sasl = await startServer(async (peer) => {
      await peer.startup();
      peer.send({ type: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256'] });
    });
    const binding = await failure(
      connect(base(sasl.port, { channel_binding: 'require', password: 'x' }), { env: quietEnv }),
      AuthenticationError,
    );
    expect(binding.code).toBe('WAL_ERR_AUTH_CHANNEL_BINDING');
    expect(binding.message).toContain('channel binding required, but SSL not in use');

    const trust = await startServer(async (peer) => {
      await peer.startup();
      peer.ready();
    });
    const trusted = await failure(
      connect(base(trust.port, { channel_binding: 'require' }), { env: quietEnv }),
      AuthenticationError,
    );
    expect(trusted.message).toBe(
      `connection to server at "127.0.0.1", port ${trust.port} failed: ` +
        'channel binding required, but server authenticated client without channel binding',
    );
  });

  it('honours require_auth', async () => {
    const server = await startServer(async (peer) => {
      await peer.startup();
      peer.send({ type: 'AuthenticationCleartextPassword' });
    });
    const error = await failure(
      connect(base(server.port, { require_auth: 'scram-sha-256', password: 'x' }), { env: quietEnv }),
      AuthenticationError,
    );
    // libpq's form: the attempt's server before the reason.
    expect(error.message).toBe(
      `connection to server at "127.0.0.1", port ${server.port} failed: ` +
        'authentication method requirement "scram-sha-256" failed: server requested a cleartext password',
    );
  });
});

describe('SSL negotiation against a scripted server', () => {
  it("continues in plaintext on the same socket after 'N' with sslmode=prefer", async () => {
    const server = await startServer(async (peer) => {
      expect(await peer.startup()).toEqual({ type: 'SSLRequest' });
      peer.expectStartupPacket();
      peer.socket.write('N');
      const startup = await peer.startup();
      expect(startup.type).toBe('StartupMessage');
      peer.ready();
      await peer.message();
    });
    const connection = await connect(base(server.port, { sslmode: 'prefer' }), { env: quietEnv });
    expect(connection.usesTls).toBe(false);
    await connection.close();
    expect(server.connections()).toBe(1);
  });

  it("fails with sslmode=require when the server says 'N'", async () => {
    const server = await startServer(async (peer) => {
      await peer.startup();
      peer.socket.write('N');
    });
    const error = await failure(
      connect(base(server.port, { sslmode: 'require' }), { env: quietEnv }),
      TlsError,
    );
    expect(error.code).toBe('WAL_ERR_TLS_NOT_SUPPORTED');
    expect(error.message).toContain('server does not support SSL, but SSL was required');
  });

  it("rejects bytes buffered after the 'S' (CVE-2021-23222)", async () => {
    const server = await startServer(async (peer) => {
      await peer.startup();
      peer.socket.write(
        Buffer.concat([Buffer.from('S'), encodeBackendMessage({ type: 'AuthenticationOk' })]),
      );
    });
    const error = await failure(
      connect(base(server.port, { sslmode: 'require' }), { env: quietEnv }),
      TlsError,
    );
    expect(error.code).toBe('WAL_ERR_TLS_UNENCRYPTED_DATA');
  });

  it("never shows an 'E' body, and with prefer retries in plaintext on a new connection", async () => {
    const server = await startServer(async (peer, index) => {
      if (index === 0) {
        await peer.startup();
        peer.send({
          type: 'ErrorResponse',
          fields: { severity: 'FATAL', code: 'XX000', message: 'EVIL-INJECTED-TEXT' },
        });
        peer.socket.end();
        return;
      }
      const startup = await peer.startup();
      expect(startup.type).toBe('StartupMessage');
      peer.ready();
      await peer.message();
    });
    const required = await failure(
      connect(base(server.port, { sslmode: 'require' }), { env: quietEnv }),
      TlsError,
    );
    expect(required.code).toBe('WAL_ERR_TLS_SERVER_ERROR');
    expect(required.message).not.toContain('EVIL');

    const preferred = await startServer(async (peer, index) => {
      if (index === 0) {
        await peer.startup();
        peer.socket.end('E');
        return;
      }
      expect((await peer.startup()).type).toBe('StartupMessage');
      peer.ready();
      await peer.message();
    });
    const connection = await connect(base(preferred.port, { sslmode: 'prefer' }), { env: quietEnv });
    await connection.close();
    expect(preferred.connections()).toBe(2);
  });

  it('with sslmode=allow tries plaintext first and SSL after an ErrorResponse', async () => {
    const server = await startServer(async (peer, index) => {
      const first = await peer.startup();
      if (index === 0) {
        expect(first.type).toBe('StartupMessage');
        peer.fatal(
          '28000',
          'pg_hba.conf rejects connection for host "127.0.0.1", user "alice", no encryption',
        );
        return;
      }
      expect(first).toEqual({ type: 'SSLRequest' });
      peer.expectStartupPacket();
      // A real server would now do TLS; 'N' lets allow continue in plaintext on this socket.
      peer.socket.write('N');
      expect((await peer.startup()).type).toBe('StartupMessage');
      peer.ready();
      await peer.message();
    });
    const connection = await connect(base(server.port, { sslmode: 'allow' }), { env: quietEnv });
    await connection.close();
    expect(server.connections()).toBe(2);
  });

  it('reports a server that closes mid-handshake', async () => {
    const server = await startServer(async (peer) => {
      await peer.startup();
      peer.socket.end();
    });
    const error = await failure(connect(base(server.port), { env: quietEnv }), ConnectionError);
    expect(error.code).toBe('WAL_ERR_CONNECTION_CLOSED');
    expect(error.retryable).toBe(true);
  });
});

describe('transport', () => {
  it('reports a refused connection and tries the next host', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    const refused = await failure(connect(base(closedPort), { env: quietEnv }), ConnectionError);
    expect(refused.code).toBe('WAL_ERR_CONNECTION_REFUSED');
    expect(refused.message).toContain(
      `connection to server at "127.0.0.1", port ${closedPort} failed: Connection refused`,
    );

    const server = await startServer(async (peer) => {
      await peer.startup();
      peer.ready();
      await peer.message();
    });
    const connection = await connect(
      { ...base(server.port), host: '127.0.0.1,127.0.0.1', port: `${closedPort},${server.port}` },
      { env: quietEnv },
    );
    expect(connection.port).toBe(server.port);
    await connection.close();
  });

  it('connects through a Unix socket directory', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'sock-'));
    try {
      await startServer(
        async (peer) => {
          await peer.startup();
          peer.ready();
          await peer.message();
        },
        join(directory, '.s.PGSQL.6543'),
      );
      const connection = await connect(
        { ...base(0), host: directory, port: '6543', sslmode: 'require' },
        { env: quietEnv },
      );
      // Unix sockets never use SSL, whatever sslmode says.
      expect(connection.usesTls).toBe(false);
      await connection.close();
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('gives up after connect_timeout', async () => {
    const server = await startServer(async (peer) => {
      await peer.startup();
      // Never answer.
    });
    const error = await failure(
      connect(base(server.port, { connect_timeout: '1' }), { env: quietEnv }),
      ConnectionError,
    );
    expect(error.code).toBe('WAL_ERR_CONNECTION_TIMEOUT');
  });

  it('stops when the signal aborts', async () => {
    const controller = new AbortController();
    const server = await startServer(async (peer) => {
      await peer.startup();
      controller.abort();
    });
    const error = await failure(
      connect(base(server.port), { env: quietEnv, signal: controller.signal }),
      ConnectionError,
    );
    expect(error.code).toBe('WAL_ERR_CONNECTION_ABORTED');
  });

  it('negotiates protocol 3.2 down to 3.0 and honours min_protocol_version', async () => {
    const server = await startServer(async (peer) => {
      const startup = await peer.startup();
      if (startup.type !== 'StartupMessage') throw new Error('expected StartupMessage');
      expect(startup.protocolVersion).toBe(196610);
      peer.send({ type: 'NegotiateProtocolVersion', newestMinorVersion: 0, unrecognizedOptions: [] });
      peer.ready();
      await peer.message().catch(() => undefined);
    });
    const connection = await connect(base(server.port, { max_protocol_version: 'latest' }), {
      env: quietEnv,
    });
    expect(connection.protocolVersion).toBe(196608);
    await connection.close();
    const error = await failure(
      connect(base(server.port, { max_protocol_version: '3.2', min_protocol_version: '3.2' }), {
        env: quietEnv,
      }),
      ConnectionError,
    );
    expect(error.code).toBe('WAL_ERR_CONNECTION_PROTOCOL_VERSION');
  });

  it('keeps a 3.2 session with a long cancel key', async () => {
    const server = await startServer(async (peer) => {
      await peer.startup();
      peer.send(
        { type: 'AuthenticationOk' },
        { type: 'ParameterStatus', name: 'server_version', value: '18.4' },
        { type: 'BackendKeyData', processId: 1, secretKey: Buffer.alloc(32, 5) },
        { type: 'ReadyForQuery', transactionStatus: 'I' },
      );
      await peer.message();
    });
    const connection = await connect(base(server.port, { max_protocol_version: '3.2' }), { env: quietEnv });
    expect(connection.protocolVersion).toBe(196610);
    expect(connection.serverVersion).toBe(180004);
    expect(connection.cancelKeyLength).toBe(32);
    await connection.close();
  });
});

describe('replication stream against a scripted server', () => {
  const copyBoth: BackendMessage = { type: 'CopyBothResponse', format: 0, columnFormats: [] };
  const field = (name: string, typeOid: number) => ({
    name,
    tableOid: 0,
    columnNumber: 0,
    typeOid,
    typeSize: typeOid === 20 ? 8 : -1,
    typeModifier: -1,
    format: 0,
  });

  async function drain(stream: ReplicationStream) {
    const events = [];
    for (;;) {
      const event = stream.readMessage();
      if (event === undefined) {
        await stream.waitForMessage();
        continue;
      }
      events.push(event);
      if (event.type === 'end') return events;
    }
  }

  it('hands out CopyData, answers CopyDone, reads the next timeline and is usable again', async () => {
    const server = await startServer(async (peer) => {
      await peer.startup();
      peer.ready();
      expect(await peer.message()).toEqual({
        type: 'Query',
        sql: 'START_REPLICATION SLOT "s" 0/B00000 TIMELINE 1',
      });
      peer.send(
        copyBoth,
        { type: 'CopyData', data: Buffer.from('first') },
        { type: 'CopyData', data: Buffer.from('second') },
      );
      expect(await peer.message()).toEqual({ type: 'CopyData', data: Buffer.from('feedback') });
      peer.send({ type: 'CopyDone' });
      expect(await peer.message()).toEqual({ type: 'CopyDone' });
      peer.send(
        { type: 'RowDescription', fields: [field('next_tli', 20), field('next_tli_startpos', 25)] },
        { type: 'DataRow', values: [Buffer.from('2'), Buffer.from('0/B00130')] },
        { type: 'CommandComplete', tag: 'START_STREAMING' },
        { type: 'CommandComplete', tag: 'START_REPLICATION' },
        { type: 'ReadyForQuery', transactionStatus: 'I' },
      );
      expect(await peer.message()).toEqual({ type: 'Query', sql: 'SHOW wal_segment_size' });
      peer.send(
        { type: 'RowDescription', fields: [field('wal_segment_size', 25)] },
        { type: 'DataRow', values: [Buffer.from('16MB')] },
        { type: 'CommandComplete', tag: 'SHOW' },
        { type: 'ReadyForQuery', transactionStatus: 'I' },
      );
      await peer.message();
    });
    const connection = await connect(base(server.port), { env: quietEnv });
    const stream = await connection.startReplication({ slot: 's', startLsn: 0xb00000n, timeline: 1 });
    if (stream.kind !== 'copy') throw new Error('expected COPY');
    await expect(connection.show('x')).rejects.toMatchObject({ code: 'WAL_ERR_CONNECTION_STATE' });
    const kept: Buffer[] = [];
    while (kept.length < 2) {
      const event = stream.readMessage();
      if (event === undefined) {
        expect(await stream.waitForMessage()).toBe(true);
        continue;
      }
      if (event.type === 'copy-data') kept.push(event.data);
    }
    stream.sendCopyData(Buffer.from('feedback'));
    const events = await drain(stream);
    expect(events).toEqual([
      { type: 'copy-done' },
      {
        type: 'end',
        result: {
          nextTimeline: { timeline: 2, startLsn: 0xb00130n },
          commandTags: ['START_STREAMING', 'START_REPLICATION'],
          serverClosed: false,
        },
      },
    ]);
    // Payloads handed out earlier are untouched by later traffic.
    expect(kept.map(String)).toEqual(['first', 'second']);
    expect(await connection.show('wal_segment_size')).toBe('16MB');
    await connection.close();
  });

  it('hands every NoticeResponse to onNotice as it is read: at startup, with a command, inside COPY', async () => {
    const notice = (message: string, extra: Partial<NoticeFields> = {}): BackendMessage => ({
      type: 'NoticeResponse',
      fields: { severity: 'NOTICE', code: '42622', message, ...extra },
    });
    const server = await startServer(async (peer) => {
      await peer.startup();
      peer.send(notice('during startup'));
      peer.ready();
      await peer.message();
      peer.send(
        notice('with SHOW', { severity: 'WARNING', code: '01000', detail: 'a detail' }),
        { type: 'RowDescription', fields: [field('x', 25)] },
        { type: 'DataRow', values: [Buffer.from('on')] },
        { type: 'CommandComplete', tag: 'SHOW' },
        { type: 'ReadyForQuery', transactionStatus: 'I' },
      );
      await peer.message();
      peer.send(notice('before COPY'), copyBoth, notice('inside COPY'), {
        type: 'CopyData',
        data: Buffer.from('w'),
      });
      peer.send({ type: 'CopyDone' });
      await peer.message();
      peer.send(
        notice('after COPY'),
        { type: 'CommandComplete', tag: 'START_REPLICATION' },
        { type: 'ReadyForQuery', transactionStatus: 'I' },
      );
      await peer.message();
    });
    const seen: NoticeFields[] = [];
    const order: string[] = [];
    const connection = await connect(base(server.port), {
      env: quietEnv,
      onNotice: (fields) => {
        seen.push(fields);
        order.push(`notice: ${fields.message}`);
      },
    });
    expect(await connection.show('x')).toBe('on');
    const stream = await connection.startReplication({ startLsn: 0xb00000n, timeline: 1 });
    if (stream.kind !== 'copy') throw new Error('expected COPY');
    for (;;) {
      const event = stream.readMessage();
      if (event === undefined) await stream.waitForMessage();
      else order.push(event.type);
      if (event?.type === 'end') break;
    }
    expect(seen.map((fields) => fields.message)).toEqual([
      'during startup',
      'with SHOW',
      'before COPY',
      'inside COPY',
      'after COPY',
    ]);
    expect(seen[1]).toMatchObject({ severity: 'WARNING', code: '01000', detail: 'a detail' });
    // A notice inside COPY is reported when the stream reads past it, before the data after it.
    expect(order.slice(3)).toEqual([
      'notice: inside COPY',
      'copy-data',
      'copy-done',
      'notice: after COPY',
      'end',
    ]);
    await connection.close();
  });

  it('treats CommandComplete "COPY 0" then EOF as a server shutdown', async () => {
    const server = await startServer(async (peer) => {
      await peer.startup();
      peer.ready();
      await peer.message();
      peer.send(
        copyBoth,
        { type: 'CopyData', data: Buffer.from('w') },
        { type: 'CommandComplete', tag: 'COPY 0' },
      );
      peer.socket.end();
    });
    const connection = await connect(base(server.port), { env: quietEnv });
    const stream = await connection.startReplication({ startLsn: 0n, timeline: 1 });
    if (stream.kind !== 'copy') throw new Error('expected COPY');
    const events = await drain(stream);
    expect(events.at(-1)).toEqual({ type: 'end', result: { commandTags: ['COPY 0'], serverClosed: true } });
    expect(stream.readMessage()).toBeUndefined();
    connection.destroy();
  });

  it('throws ServerError for an error inside COPY and ConnectionError for a bare EOF', async () => {
    const server = await startServer(async (peer, index) => {
      await peer.startup();
      peer.ready();
      await peer.message();
      peer.send(copyBoth);
      if (index === 0) {
        peer.send(
          {
            type: 'ErrorResponse',
            fields: {
              severity: 'ERROR',
              code: '58P01',
              message: 'requested WAL segment 000000010000000000000001 has already been removed',
            },
          },
          { type: 'ReadyForQuery', transactionStatus: 'I' },
        );
      } else {
        peer.socket.end();
      }
    });
    for (const expected of [ServerError, ConnectionError] as const) {
      const connection = await connect(base(server.port), { env: quietEnv });
      const stream = await connection.startReplication({ startLsn: 0n, timeline: 1 });
      if (stream.kind !== 'copy') throw new Error('expected COPY');
      const error = await failure(drain(stream), expected as new (...args: never[]) => Error);
      if (error instanceof ServerError) expect(error.sqlState).toBe('58P01');
      else expect((error as ConnectionError).code).toBe('WAL_ERR_CONNECTION_LOST');
      connection.destroy();
    }
  });

  it('returns no-copy when the server skips COPY, and ServerError before COPY', async () => {
    const server = await startServer(async (peer) => {
      await peer.startup();
      peer.ready();
      await peer.message();
      peer.send(
        { type: 'RowDescription', fields: [field('next_tli', 20), field('next_tli_startpos', 25)] },
        { type: 'DataRow', values: [Buffer.from('3'), Buffer.from('0/C000000')] },
        { type: 'CommandComplete', tag: 'START_STREAMING' },
        { type: 'CommandComplete', tag: 'START_REPLICATION' },
        { type: 'ReadyForQuery', transactionStatus: 'I' },
      );
      await peer.message();
      peer.send(
        {
          type: 'ErrorResponse',
          fields: { severity: 'ERROR', code: '42704', message: 'replication slot "x" does not exist' },
        },
        { type: 'ReadyForQuery', transactionStatus: 'I' },
      );
      await peer.message();
    });
    const connection = await connect(base(server.port), { env: quietEnv });
    expect(await connection.startReplication({ startLsn: 0xc000000n, timeline: 2 })).toEqual({
      kind: 'no-copy',
      result: {
        nextTimeline: { timeline: 3, startLsn: 0xc000000n },
        commandTags: ['START_STREAMING', 'START_REPLICATION'],
        serverClosed: false,
      },
    });
    const error = await failure(
      connection.startReplication({ slot: 'x', startLsn: 0n, timeline: 1 }),
      ServerError,
    );
    expect(error.sqlState).toBe('42704');
    expect(error.fields.message).toBe('replication slot "x" does not exist');
    await connection.close();
  });

  it('stops reading the socket while too much is unread, and resumes as the caller drains', async () => {
    const chunk = Buffer.alloc(64 * 1024, 1);
    const total = 64;
    const server = await startServer(async (peer) => {
      await peer.startup();
      peer.ready();
      await peer.message();
      peer.send(copyBoth);
      for (let index = 0; index < total; index++) peer.send({ type: 'CopyData', data: chunk });
      peer.send({ type: 'CommandComplete', tag: 'COPY 0' });
      peer.socket.end();
    });
    const connection = await connect(base(server.port), { env: quietEnv });
    const stream = await connection.startReplication({ startLsn: 0n, timeline: 1 });
    if (stream.kind !== 'copy') throw new Error('expected COPY');
    const socket = (connection as unknown as { wire: { socket: Socket } }).wire.socket;
    // Wait until the client stops reading: more than the high-water mark is buffered.
    while (!socket.isPaused()) await new Promise((resolve) => setTimeout(resolve, 5));
    let received = 0;
    const events = await drain({
      ...stream,
      readMessage: () => {
        const event = stream.readMessage();
        if (event?.type === 'copy-data') received++;
        return event;
      },
      waitForMessage: (timeout, signal) => stream.waitForMessage(timeout, signal),
    } as ReplicationStream);
    expect(received).toBe(total);
    expect(events.at(-1)).toMatchObject({ type: 'end', result: { serverClosed: true } });
    connection.destroy();
  });
});

describe('target_session_attrs against a server that does not report in_hot_standby (before 14)', () => {
  const column = (name: string) => ({
    name,
    tableOid: 0,
    columnNumber: 0,
    typeOid: 25,
    typeSize: -1,
    typeModifier: -1,
    format: 0,
  });
  /** A PostgreSQL 13 walsender: answers one query with `value`, then expects Terminate. */
  function thirteen(expectedQuery: string | undefined, value: string, seen: string[]) {
    return startServer(async (peer) => {
      await peer.startup();
      peer.ready('13.14');
      const first = await peer.message();
      if (first.type === 'Query') {
        seen.push(first.sql);
        if (first.sql !== expectedQuery) throw new Error(`unexpected query ${first.sql}`);
        peer.send(
          { type: 'RowDescription', fields: [column('answer')] },
          { type: 'DataRow', values: [Buffer.from(value)] },
          { type: 'CommandComplete', tag: 'SHOW' },
          { type: 'ReadyForQuery', transactionStatus: 'I' },
        );
        seen.push((await peer.message()).type);
      } else {
        seen.push(first.type);
      }
    });
  }

  it('refuses primary/standby on a physical replication connection with a clear reason, asking nothing', async () => {
    const seen: string[] = [];
    const server = await thirteen(undefined, '', seen);
    const error = await failure(
      connect(base(server.port, { target_session_attrs: 'primary' }), { env: quietEnv }),
      ConnectionError,
    );
    expect(error.code).toBe('WAL_ERR_CONNECTION_TARGET_SESSION');
    expect(error.retryable).toBe(true);
    expect(error.message).toBe(
      `connection to server at "127.0.0.1", port ${server.port} failed: server version "13.14" does not report ` +
        '"in_hot_standby" (PostgreSQL 14 and later do), and a physical replication connection cannot run SQL to ' +
        'ask whether it is a standby; use target_session_attrs=any, read-write or read-only with this server',
    );
    // Closed politely, like libpq's sendTerminateConn.
    expect(seen).toEqual(['Terminate']);
  });

  it('asks SHOW transaction_read_only for read-write and read-only, as libpq does', async () => {
    const seen: string[] = [];
    const readOnly = await thirteen('SHOW transaction_read_only', 'on', seen);
    const refused = await failure(
      connect(base(readOnly.port, { target_session_attrs: 'read-write' }), { env: quietEnv }),
      ConnectionError,
    );
    expect(refused.message).toBe(
      `connection to server at "127.0.0.1", port ${readOnly.port} failed: session is read-only`,
    );
    expect(seen).toEqual(['SHOW transaction_read_only', 'Terminate']);
    const writable = await thirteen('SHOW transaction_read_only', 'off', []);
    const connection = await connect(base(writable.port, { target_session_attrs: 'read-write' }), {
      env: quietEnv,
    });
    expect(connection.port).toBe(writable.port);
    await connection.close();
  });

  it('stops a check that waits for the server when the signal aborts', async () => {
    const controller = new AbortController();
    const server = await startServer(async (peer) => {
      await peer.startup();
      peer.ready('13.14');
      expect(await peer.message()).toEqual({ type: 'Query', sql: 'SHOW transaction_read_only' });
      // No answer: only the abort can end the wait.
      controller.abort();
      await peer.message().catch(() => undefined);
    });
    const error = await failure(
      connect(base(server.port, { target_session_attrs: 'read-only' }), {
        env: quietEnv,
        signal: controller.signal,
      }),
      ConnectionError,
    );
    expect(error.code).toBe('WAL_ERR_CONNECTION_ABORTED');
  });

  it('runs SELECT pg_catalog.pg_is_in_recovery() on a replication=database connection', async () => {
    const seen: string[] = [];
    const server = await thirteen('SELECT pg_catalog.pg_is_in_recovery()', 't', seen);
    const error = await failure(
      connect(base(server.port, { target_session_attrs: 'primary', replication: 'database' }), {
        env: quietEnv,
      }),
      ConnectionError,
    );
    expect(error.message).toBe(
      `connection to server at "127.0.0.1", port ${server.port} failed: server is in hot standby mode`,
    );
    expect(seen).toEqual(['SELECT pg_catalog.pg_is_in_recovery()', 'Terminate']);
  });
});
