import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import {
  type BackendMessage,
  decodeBackendMessage,
  encodeFrontendMessage,
  type FrontendMessage,
  MessageFramer,
  ProtocolVersion,
} from '@wal/protocol';

/** One frame the server sent, decoded when possible. */
export interface ReceivedFrame {
  code: number;
  payload: Buffer;
  message: BackendMessage | undefined;
}

export interface QueryResult {
  rows: (string | null)[][];
  fields: { name: string; typeOid: number; typeModifier: number }[];
  tags: string[];
  error: BackendMessage | undefined;
}

/**
 * A deliberately small replication client for the fake server's own tests: raw sockets plus the
 * `@wal/protocol` codecs, with the client side of cleartext, MD5 and SCRAM-SHA-256 written out
 * independently of the server's code. Not the project's client (that is `@wal/libpq-lite`).
 */
export class MinimalClient {
  /** Every byte received, in order (plaintext), for byte-exact assertions. */
  readonly received: Buffer[] = [];
  private socket: Socket;
  private framer = new MessageFramer();
  private readonly frames: ReceivedFrame[] = [];
  private waiter: (() => void) | undefined;
  private ended = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.attach(socket);
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<MinimalClient> {
    const socket = connectTcp({ port, host });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new MinimalClient(socket);
  }

  get receivedLength(): number {
    return this.received.reduce((sum, chunk) => sum + chunk.length, 0);
  }

  get closed(): boolean {
    return this.ended;
  }

  send(message: FrontendMessage): void {
    this.socket.write(encodeFrontendMessage(message));
  }

  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Send SSLRequest, read the one-byte answer; on 'S' switch to TLS trusting `ca`. */
  async requestTls(ca?: string): Promise<'S' | 'N'> {
    this.socket.removeAllListeners('data');
    const answer = await new Promise<string>((resolve) => {
      this.socket.once('data', (chunk: Buffer) => resolve(chunk.subarray(0, 1).toString()));
      this.send({ type: 'SSLRequest' });
    });
    this.received.push(Buffer.from(answer));
    if (answer !== 'S') {
      this.attach(this.socket);
      return 'N';
    }
    const secure = connectTls({
      socket: this.socket,
      ...(ca === undefined ? { rejectUnauthorized: false } : { ca, servername: 'localhost' }),
    });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.attach(secure);
    return 'S';
  }

  /** The next frame; undefined once the server closed and everything was read. */
  async next(timeoutMs = 5000): Promise<ReceivedFrame | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = this.frames.shift();
      if (frame !== undefined) return frame;
      if (this.ended) return undefined;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`no message from the fake server within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** The next frame, which must decode to `type`. */
  async expect<Type extends BackendMessage['type']>(
    type: Type,
  ): Promise<Extract<BackendMessage, { type: Type }>> {
    const frame = await this.next();
    if (frame?.message?.type !== type) {
      throw new Error(
        `expected ${type}, got ${frame === undefined ? 'end of stream' : (frame.message?.type ?? `code ${frame.code}`)}`,
      );
    }
    return frame.message as Extract<BackendMessage, { type: Type }>;
  }

  /** Read until the server closes; returns the frames. */
  async drain(timeoutMs = 5000): Promise<ReceivedFrame[]> {
    const frames: ReceivedFrame[] = [];
    for (;;) {
      const frame = await this.next(timeoutMs);
      if (frame === undefined) return frames;
      frames.push(frame);
    }
  }

  /**
   * Startup and authentication as libpq does it; returns every message up to ReadyForQuery, or the
   * ErrorResponse that ended it.
   */
  async startup(
    options: {
      user?: string;
      password?: string;
      protocolVersion?: number;
      parameters?: Record<string, string>;
      /** Called with the server-final-message check result for SCRAM. */
      onServerSignature?: (valid: boolean) => void;
    } = {},
  ): Promise<BackendMessage[]> {
    const user = options.user ?? 'replicator';
    this.send({
      type: 'StartupMessage',
      protocolVersion: options.protocolVersion ?? ProtocolVersion.V3_0,
      parameters: {
        user,
        database: 'replication',
        replication: 'true',
        application_name: 'minimal-client',
        ...options.parameters,
      },
    });
    const seen: BackendMessage[] = [];
    let scram: { clientFirstBare: string; nonce: string; salted?: Buffer; authMessage?: string } | undefined;
    for (;;) {
      const frame = await this.next();
      if (frame === undefined) return seen;
      const message = frame.message!;
      seen.push(message);
      switch (message.type) {
        case 'AuthenticationCleartextPassword':
          this.send({ type: 'PasswordMessage', password: Buffer.from(options.password ?? '') });
          break;
        case 'AuthenticationMD5Password': {
          const inner = createHash('md5')
            .update(`${options.password ?? ''}${user}`)
            .digest('hex');
          const outer = createHash('md5')
            .update(Buffer.concat([Buffer.from(inner), message.salt]))
            .digest('hex');
          this.send({ type: 'PasswordMessage', password: Buffer.from(`md5${outer}`) });
          break;
        }
        case 'AuthenticationSASL': {
          const nonce = randomBytes(18).toString('base64');
          scram = { clientFirstBare: `n=,r=${nonce}`, nonce };
          this.send({
            type: 'SASLInitialResponse',
            mechanism: 'SCRAM-SHA-256',
            data: Buffer.from(`n,,${scram.clientFirstBare}`),
          });
          break;
        }
        case 'AuthenticationSASLContinue': {
          const serverFirst = message.data.toString();
          const fields = Object.fromEntries(serverFirst.split(',').map((part) => [part[0], part.slice(2)]));
          if (!fields.r?.startsWith(scram!.nonce)) throw new Error('SCRAM nonce mismatch');
          const salted = pbkdf2Sync(
            options.password ?? '',
            Buffer.from(fields.s!, 'base64'),
            Number(fields.i),
            32,
            'sha256',
          );
          const withoutProof = `c=biws,r=${fields.r}`;
          const authMessage = `${scram!.clientFirstBare},${serverFirst},${withoutProof}`;
          const clientKey = createHmac('sha256', salted).update('Client Key').digest();
          const storedKey = createHash('sha256').update(clientKey).digest();
          const signature = createHmac('sha256', storedKey).update(authMessage).digest();
          const proof = clientKey.map((byte, index) => byte ^ signature[index]!);
          scram!.salted = salted;
          scram!.authMessage = authMessage;
          this.send({
            type: 'SASLResponse',
            data: Buffer.from(`${withoutProof},p=${Buffer.from(proof).toString('base64')}`),
          });
          break;
        }
        case 'AuthenticationSASLFinal': {
          const serverKey = createHmac('sha256', scram!.salted!).update('Server Key').digest();
          const expected = createHmac('sha256', serverKey).update(scram!.authMessage!).digest('base64');
          options.onServerSignature?.(message.data.toString() === `v=${expected}`);
          break;
        }
        case 'ErrorResponse':
        case 'ReadyForQuery':
          return seen;
        default:
          break;
      }
    }
  }

  /** A simple query: rows as text, command tags, the error if any; ends at ReadyForQuery. */
  async query(sql: string): Promise<QueryResult> {
    this.send({ type: 'Query', sql });
    return this.readResult(sql);
  }

  /** Read a result up to ReadyForQuery (or CopyBothResponse) without sending anything. */
  async readResult(what = 'the result'): Promise<QueryResult> {
    const result: QueryResult = { rows: [], fields: [], tags: [], error: undefined };
    for (;;) {
      const message = (await this.next())?.message;
      if (message === undefined) throw new Error(`connection closed during ${what}`);
      if (message.type === 'RowDescription') result.fields = message.fields;
      else if (message.type === 'DataRow')
        result.rows.push(message.values.map((value) => value?.toString() ?? null));
      else if (message.type === 'CommandComplete') result.tags.push(message.tag);
      else if (message.type === 'ErrorResponse') result.error = message;
      else if (message.type === 'ReadyForQuery') return result;
      else if (message.type === 'CopyBothResponse') return result;
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private attach(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      this.framer.push(chunk);
      for (;;) {
        let frame: ReturnType<MessageFramer['next']>;
        try {
          frame = this.framer.next();
        } catch {
          return;
        }
        if (frame === undefined) break;
        let message: BackendMessage | undefined;
        try {
          message = decodeBackendMessage(frame.code, frame.payload);
        } catch {
          message = undefined;
        }
        this.frames.push({ code: frame.code, payload: frame.payload, message });
      }
      this.waiter?.();
    });
    const end = () => {
      this.ended = true;
      this.waiter?.();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }
}
