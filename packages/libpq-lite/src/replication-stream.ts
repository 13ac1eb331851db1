import { BackendMessageCode, ProtocolError, type WalError } from '@wal/protocol';
import { ConnectionError, ServerError } from './errors.js';
import { parseNextTimeline } from './replication-commands.js';
import type { QueryResult } from './simple-query.js';
import type { ReadLease, Wire } from './wire.js';

/**
 * A connection that failed while WAL was streaming, with the prefix pg_receivewal puts before
 * libpq's text when `PQgetCopyData` fails (receivelog.c CopyStreamReceive).
 */
function receiveFailure(failure: WalError): WalError {
  if (!(failure instanceof ConnectionError)) return failure;
  return new ConnectionError(failure.code, `could not receive data from WAL stream: ${failure.message}`, {
    cause: failure,
    retryable: failure.retryable,
  });
}

/** What the server sends after COPY BOTH ended (§3.6, §3.8). */
export interface EndOfStreamResult {
  /** Present when the server finished a historic timeline and named the next one. */
  nextTimeline?: { timeline: number; startLsn: bigint };
  commandTags: string[];
  /** True when the server closed the connection after its CommandComplete (shutdown). */
  serverClosed: boolean;
}

export type CopyEvent =
  | { type: 'copy-data'; data: Buffer }
  | { type: 'copy-done' }
  | { type: 'end'; result: EndOfStreamResult };

/** A pull-based view of COPY BOTH after START_REPLICATION. */
export interface ReplicationStream {
  kind: 'copy';
  readMessage(): CopyEvent | undefined;
  /**
   * Keeps the `data` of the CopyData last returned by `readMessage()` unchanged until the lease is
   * given back to `release`: for a consumer that hands it to work that ends later (a sink write).
   */
  retain(): ReadLease;
  /**
   * The caller holds no view of the data of any message read so far, except those it retained
   * and has not released; with `lease`, not of that one either. Their memory may be read into
   * again. A caller that never calls it may keep every `data` for as long as it likes.
   */
  release(lease?: ReadLease): void;
  waitForMessage(timeoutMs?: number, signal?: AbortSignal): Promise<boolean>;
  /**
   * True while the server is not reading what we send (the socket asks us to wait for 'drain').
   * Writes still queue; a caller that sends on its own schedule should hold them until
   * `whenWritable()` and stop reading meanwhile, so that neither side's memory grows.
   */
  readonly writeBlocked: boolean;
  /** Resolves once `writeBlocked` is false again, or the connection closed. */
  whenWritable(): Promise<void>;
  sendCopyData(payload: Buffer): void;
  sendFrame(frame: Buffer): void;
  sendCopyDone(): void;
}

/**
 * COPY BOTH as a queue the caller pulls from. CopyData payloads are handed out as the framer
 * produced them (views or one copy per frame), unchanged until the caller releases them. Anything other than CopyData ends the
 * COPY, as in libpq (`fe-protocol3.c` getCopyDataMessage): a server that shuts down sends
 * CommandComplete "COPY 0" without CopyDone, then closes.
 */
export class CopyBothStream implements ReplicationStream {
  readonly kind = 'copy' as const;
  private phase: 'copy' | 'after-copy' | 'ended' | 'failed' = 'copy';
  private copyDoneSent = false;
  private readonly commandTags: string[] = [];
  private resultSet: QueryResult | undefined;
  private readonly wire: Wire;
  private readonly onEnd: (reusable: boolean) => void;
  private readonly onParameter: ((name: string, value: string) => void) | undefined;

  constructor(
    wire: Wire,
    onEnd: (reusable: boolean) => void,
    onParameter?: (name: string, value: string) => void,
  ) {
    this.wire = wire;
    this.onEnd = onEnd;
    this.onParameter = onParameter;
  }

  readMessage(): CopyEvent | undefined {
    for (;;) {
      if (this.phase === 'ended' || this.phase === 'failed') return undefined;
      const frame = this.wire.shift();
      if (frame === undefined) {
        const failure = this.wire.failed;
        if (failure === undefined) return undefined;
        if (this.phase === 'after-copy' && this.commandTags.length > 0) {
          this.phase = 'ended';
          this.onEnd(false);
          return { type: 'end', result: this.result(true) };
        }
        const copying = this.phase === 'copy';
        this.phase = 'failed';
        this.onEnd(false);
        throw copying ? receiveFailure(failure) : failure;
      }
      if (this.phase === 'copy') {
        // Hot path: no decoding, no copy.
        if (frame.code === BackendMessageCode.CopyData) {
          if (this.wire.trace !== undefined) this.wire.decode(frame);
          return { type: 'copy-data', data: frame.payload };
        }
        if (frame.code === BackendMessageCode.CopyDone) {
          this.wire.decode(frame);
          this.phase = 'after-copy';
          this.sendCopyDone();
          return { type: 'copy-done' };
        }
        if (
          frame.code === BackendMessageCode.NoticeResponse ||
          frame.code === BackendMessageCode.ParameterStatus
        ) {
          const message = this.wire.decode(frame);
          if (message.type === 'ParameterStatus') this.onParameter?.(message.name, message.value);
          continue;
        }
        if (frame.code !== BackendMessageCode.ErrorResponse) this.phase = 'after-copy';
      }
      const message = this.wire.decode(frame);
      switch (message.type) {
        case 'ErrorResponse':
          this.phase = 'failed';
          // The connection is not reused after an error inside COPY: the receive loop reconnects.
          this.onEnd(false);
          // receivelog.c: an error result that ends the COPY, in libpq's form after this prefix.
          throw new ServerError(message.fields, { prefix: 'unexpected termination of replication stream: ' });
        case 'ParameterStatus':
          this.onParameter?.(message.name, message.value);
          continue;
        case 'NoticeResponse':
          continue;
        case 'CopyData':
          // Data the server sent before it saw our CopyDone; still valid WAL.
          return { type: 'copy-data', data: message.data };
        case 'RowDescription':
          this.resultSet = { fields: message.fields, rows: [], commandTag: '' };
          continue;
        case 'DataRow':
          if (this.resultSet === undefined) throw this.protocolFailure('DataRow without RowDescription');
          this.resultSet.rows.push(
            message.values.map((value) => (value === null ? null : value.toString('utf8'))),
          );
          continue;
        case 'CommandComplete':
          this.commandTags.push(message.tag);
          continue;
        case 'ReadyForQuery': {
          this.phase = 'ended';
          const result = this.result(false);
          this.onEnd(true);
          return { type: 'end', result };
        }
        default:
          throw this.protocolFailure(`unexpected ${message.type} at the end of COPY`);
      }
    }
  }

  retain(): ReadLease {
    return this.wire.retain();
  }

  release(lease?: ReadLease): void {
    this.wire.release(lease);
  }

  private protocolFailure(text: string): ProtocolError {
    this.phase = 'failed';
    this.onEnd(false);
    return new ProtocolError('WAL_ERR_PROTOCOL_UNEXPECTED_MESSAGE', text);
  }

  private result(serverClosed: boolean): EndOfStreamResult {
    const nextTimeline = parseNextTimeline(this.resultSet);
    const result: EndOfStreamResult = { commandTags: [...this.commandTags], serverClosed };
    if (nextTimeline !== undefined) result.nextTimeline = nextTimeline;
    return result;
  }

  waitForMessage(timeoutMs?: number, signal?: AbortSignal): Promise<boolean> {
    if (this.phase === 'ended' || this.phase === 'failed') return Promise.resolve(false);
    return this.wire.wait(timeoutMs, signal);
  }

  get writeBlocked(): boolean {
    return this.wire.writeBlocked;
  }

  whenWritable(): Promise<void> {
    return this.wire.whenWritable();
  }

  /** Dropped silently once our CopyDone went out: the server no longer reads them (libpq refuses too). */
  sendCopyData(payload: Buffer): void {
    if (!this.writable()) return;
    this.wire.send({ type: 'CopyData', data: payload });
  }

  sendFrame(frame: Buffer): void {
    if (!this.writable()) return;
    if (this.wire.trace !== undefined) {
      this.wire.trace(`F\t${frame.length}\t${String.fromCharCode(frame[0] ?? 0)} (pre-framed)`);
    }
    this.wire.writeFrame(frame);
  }

  /** Ends our side of the COPY; sent at most once (also sent for us when the server ends first). */
  sendCopyDone(): void {
    if (this.copyDoneSent || this.phase === 'ended' || this.phase === 'failed') return;
    this.copyDoneSent = true;
    if (this.wire.failed !== undefined) return;
    this.wire.send({ type: 'CopyDone' });
  }

  private writable(): boolean {
    if (this.phase === 'failed') {
      throw new ConnectionError(
        'WAL_ERR_CONNECTION_STATE',
        'cannot send on a replication stream that failed',
      );
    }
    return !this.copyDoneSent && this.phase !== 'ended';
  }
}
