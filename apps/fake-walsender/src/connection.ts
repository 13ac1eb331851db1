import type { Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import {
  decodeFrontendMessage,
  decodeStandbyMessage,
  decodeStartupPacket,
  type FrontendDecodeContext,
  type FrontendMessage,
  MessageFramer,
  type StandbyMessage,
  WalError,
} from '@wal/protocol';

/** A client message that did not decode: kept raw so a test can still see what was sent. */
export interface UndecodableMessage {
  type: 'Undecodable';
  /** The code byte, or 0 for a startup packet. */
  code: number;
  payload: Buffer;
  error: string;
}

/** Everything a client sent, in arrival order, one entry per message. */
export interface ClientMessage {
  /** 1 for the first connection the server accepted, 2 for the next... */
  connection: number;
  /** `Date.now()` when the message was complete. */
  receivedAt: number;
  message: FrontendMessage | UndecodableMessage;
  /** For CopyData during replication: the decoded standby message ('r', 'h', 'p'), when it decodes. */
  standby?: StandbyMessage;
}

/** The session cannot continue: the client went away, or the script cut the connection on purpose. */
export class SessionClosedError extends WalError {
  constructor(message: string) {
    super('WAL_ERR_FAKE_SESSION_CLOSED', message);
  }
}

/** The client did something the script did not expect. */
export class ScriptError extends WalError {
  constructor(message: string) {
    super('WAL_ERR_FAKE_SCRIPT', message);
  }
}

/** A wait for a client message ended without one. */
export class ScriptTimeoutError extends WalError {
  constructor(message: string) {
    super('WAL_ERR_FAKE_SCRIPT_TIMEOUT', message);
  }
}

/**
 * One accepted socket: frames and decodes what the client sends (recording every message), and
 * writes what the script sends, counting bytes so the connection can be cut at an exact offset.
 * Writes wait for 'drain', so a slow client slows the fake server as TCP would a real walsender.
 */
export class ClientConnection {
  readonly index: number;
  /** Protocol bytes written so far (plaintext bytes, before TLS). */
  bytesSent = 0;
  /** What the next 'p' message answers: set by the authentication code before it asks. */
  authentication: FrontendDecodeContext['authentication'];
  usesTls = false;

  private socket: Socket;
  private readonly framer = new MessageFramer({ expectStartupPacket: true });
  private readonly queue: ClientMessage[] = [];
  private waiter: (() => void) | undefined;
  private ended = false;
  private cutAt: number | undefined;
  private cutMode: 'end' | 'reset' = 'end';
  private readonly record: (message: ClientMessage) => void;
  private readonly onData = (chunk: Buffer) => this.receive(chunk);

  constructor(socket: Socket, index: number, record: (message: ClientMessage) => void) {
    this.socket = socket;
    this.index = index;
    this.record = record;
    this.attach(socket);
  }

  get closed(): boolean {
    return this.ended;
  }

  /**
   * Cut the connection once exactly `offset` bytes of server output have been written in total
   * (counting from the connection start): the byte at `offset` and everything after it is never
   * sent. `reset` sends a TCP RST instead of a FIN.
   */
  cutAtByte(offset: number, mode: 'end' | 'reset' = 'end'): void {
    this.cutAt = offset;
    this.cutMode = mode;
    if (this.bytesSent >= offset) this.cut();
  }

  /** Write bytes, honouring the cut offset and backpressure. Throws SessionClosedError once closed. */
  async write(bytes: Buffer): Promise<void> {
    if (this.ended) throw new SessionClosedError(`connection ${this.index} is closed`);
    if (this.cutAt !== undefined && this.bytesSent + bytes.length >= this.cutAt) {
      const keep = this.cutAt - this.bytesSent;
      if (keep > 0) this.socket.write(bytes.subarray(0, keep));
      this.bytesSent += keep;
      this.cut();
      throw new SessionClosedError(`connection ${this.index} cut at byte ${this.cutAt} as scripted`);
    }
    this.bytesSent += bytes.length;
    if (!this.socket.write(bytes)) await this.drain();
  }

  /**
   * Write several buffers as one batch (corked: one writev for a frame header and its WAL view, no
   * copy). With a cut offset set, falls back to `write` so the cut stays byte-exact.
   */
  async writeMany(buffers: Buffer[]): Promise<void> {
    if (this.cutAt !== undefined || this.ended) {
      for (const buffer of buffers) await this.write(buffer);
      return;
    }
    this.socket.cork();
    let flowing = true;
    for (const buffer of buffers) {
      this.bytesSent += buffer.length;
      flowing = this.socket.write(buffer);
    }
    this.socket.uncork();
    if (!flowing) await this.drain();
  }

  /** The next message the client sent, or undefined at end of stream; waits at most `timeoutMs`. */
  async next(timeoutMs?: number): Promise<ClientMessage | undefined> {
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    for (;;) {
      const message = this.queue.shift();
      if (message !== undefined) return message;
      if (this.ended) return undefined;
      const remaining = deadline === undefined ? undefined : deadline - Date.now();
      if (remaining !== undefined && remaining <= 0) {
        throw new ScriptTimeoutError(`no message from the client within ${timeoutMs} ms`);
      }
      await new Promise<void>((resolve) => {
        const timer = remaining === undefined ? undefined : setTimeout(resolve, remaining);
        this.waiter = () => {
          if (timer !== undefined) clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }

  /** Whether a message of `type` has arrived and is not consumed yet. */
  hasQueued(type: ClientMessage['message']['type']): boolean {
    return this.queue.some((entry) => entry.message.type === type);
  }

  /** The next startup packet is a new one (after answering SSLRequest/GSSENCRequest). */
  expectStartupPacket(): void {
    this.framer.expectStartupPacket();
  }

  /** Replace the socket by a server-side TLS socket over it and wait for the handshake. */
  async upgradeToTls(secureContext: SecureContext): Promise<void> {
    this.detach(this.socket);
    const secure = new TLSSocket(this.socket, { isServer: true, secureContext });
    this.socket = secure;
    this.attach(secure);
    this.usesTls = true;
    await new Promise<void>((resolve, reject) => {
      secure.once('secure', resolve);
      // The client refusing our certificate ends the session; it is no script failure.
      secure.once('error', (error) =>
        reject(new SessionClosedError(`TLS handshake failed: ${error.message}`)),
      );
      secure.once('close', () => reject(new SessionClosedError('client closed during the TLS handshake')));
    });
  }

  /**
   * Stop reading what the client sends, as a server that never reads its replies: the client's
   * bytes pile up in the kernel until TCP flow control stops its writes.
   */
  stopReading(): void {
    this.socket.pause();
  }

  /** Close gracefully (FIN after pending writes). */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.socket.end();
    this.wake();
  }

  /** Close with a TCP RST, as a crashed peer or a middlebox would. */
  reset(): void {
    this.ended = true;
    this.socket.resetAndDestroy();
    this.wake();
  }

  /** Close at once. */
  destroy(): void {
    this.ended = true;
    this.socket.destroy();
    this.wake();
  }

  /** Resolves when the socket has fully closed. */
  closedPromise(): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.socket.once('close', () => resolve()));
  }

  private cut(): void {
    this.ended = true;
    if (this.cutMode === 'reset') this.socket.resetAndDestroy();
    else this.socket.end();
    this.wake();
  }

  private attach(socket: Socket): void {
    socket.on('data', this.onData);
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    // A client reset is an ordinary end of session for a fake server.
    socket.on('error', () => {
      this.ended = true;
      this.wake();
    });
  }

  private detach(socket: Socket): void {
    socket.removeListener('data', this.onData);
    socket.removeAllListeners('end');
    socket.removeAllListeners('close');
  }

  private drain(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.socket.removeListener('drain', done);
        this.socket.removeListener('close', done);
        resolve();
      };
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
  }

  private wake(): void {
    this.waiter?.();
  }

  private receive(chunk: Buffer): void {
    this.framer.push(chunk);
    for (;;) {
      let frame: ReturnType<MessageFramer['next']>;
      try {
        frame = this.framer.next();
      } catch (error) {
        this.push({
          type: 'Undecodable',
          code: -1,
          payload: Buffer.alloc(0),
          error: (error as Error).message,
        });
        this.destroy();
        return;
      }
      if (frame === undefined) return;
      this.push(this.decode(frame.code, frame.payload));
    }
  }

  private decode(code: number, payload: Buffer): ClientMessage['message'] {
    try {
      if (code === 0) return decodeStartupPacket(payload);
      const message = decodeFrontendMessage(code, payload, { authentication: this.authentication });
      // A 'p' answers exactly one request; a second one without a new request is unexpected.
      if (message.type === 'SASLInitialResponse') this.authentication = 'sasl';
      return message;
    } catch (error) {
      return { type: 'Undecodable', code, payload, error: (error as Error).message };
    }
  }

  private push(message: ClientMessage['message']): void {
    const entry: ClientMessage = { connection: this.index, receivedAt: Date.now(), message };
    if (message.type === 'CopyData') {
      try {
        entry.standby = decodeStandbyMessage(message.data);
      } catch {
        // Recorded raw; the script decides whether that is an error.
      }
    }
    this.record(entry);
    this.queue.push(entry);
    this.wake();
  }
}
