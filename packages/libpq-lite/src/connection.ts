import { ConnectionError, ServerError } from './errors.js';
import {
  buildCreateReplicationSlot,
  buildDropReplicationSlot,
  buildShow,
  buildStartReplication,
  buildTimelineHistory,
  parseCreateReplicationSlot,
  parseIdentifySystem,
  parseNextTimeline,
  parseReadReplicationSlot,
  parseShow,
  parseTimelineHistory,
  quoteIdentifier,
  type ReplicationSlotInfo,
  type SystemIdentification,
} from './replication-commands.js';
import { CopyBothStream, type EndOfStreamResult, type ReplicationStream } from './replication-stream.js';
import { type QueryResult, type RawQueryResult, runSimpleQuery, toTextResult } from './simple-query.js';
import type { Wire } from './wire.js';

/**
 * `server_version` as a number like libpq's `PQserverVersion`: 150018 for "15.18 (Debian ...)",
 * 180000 for "18beta1", 90624 for "9.6.24". 0 when unparsable.
 */
export function parseServerVersion(text: string): number {
  const match = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(text);
  if (match === null) return 0;
  const major = Number(match[1]);
  const second = match[2] === undefined ? 0 : Number(match[2]);
  if (major >= 10) return major * 10000 + second;
  const third = match[3] === undefined ? 0 : Number(match[3]);
  return major * 10000 + second * 100 + third;
}

export interface ConnectionInit {
  wire: Wire;
  parameters: Map<string, string>;
  processId: number;
  secretKey: Buffer;
  protocolVersion: number;
  host: string;
  port: number;
  usesTls: boolean;
}

/**
 * One established session. Commands run one at a time; a second call while one runs, or while
 * a replication stream owns the connection, fails with WAL_ERR_CONNECTION_STATE.
 */
export class Connection {
  readonly serverVersion: number;
  readonly serverVersionText: string;
  readonly parameters: ReadonlyMap<string, string>;
  readonly processId: number;
  /** Wire protocol version as sent in the StartupMessage: 196608 (3.0) or 196610 (3.2). */
  readonly protocolVersion: number;
  readonly host: string;
  readonly port: number;
  readonly usesTls: boolean;
  private readonly wire: Wire;
  private readonly mutableParameters: Map<string, string>;
  private readonly secretKey: Buffer;
  private state: 'idle' | 'busy' | 'copy' | 'closed' | 'broken' = 'idle';
  private closing: Promise<void> | undefined;

  constructor(init: ConnectionInit) {
    this.wire = init.wire;
    this.mutableParameters = init.parameters;
    this.parameters = init.parameters;
    this.processId = init.processId;
    this.secretKey = init.secretKey;
    this.protocolVersion = init.protocolVersion;
    this.host = init.host;
    this.port = init.port;
    this.usesTls = init.usesTls;
    this.serverVersionText = init.parameters.get('server_version') ?? '';
    this.serverVersion = parseServerVersion(this.serverVersionText);
  }

  /**
   * Bytes written to the server that it has not taken yet (queued in this process): stays small
   * while the server reads; for diagnostics and tests.
   */
  get pendingWriteBytes(): number {
    return this.wire.pendingWriteBytes;
  }

  /** The cancel key length (4 bytes in protocol 3.0, up to 256 in 3.2). */
  get cancelKeyLength(): number {
    return this.secretKey.length;
  }

  private async run(sql: string): Promise<RawQueryResult[]> {
    this.enter();
    try {
      const outcome = await runSimpleQuery(this.wire, sql, {
        onParameter: (name, value) => this.mutableParameters.set(name, value),
      });
      this.state = 'idle';
      return outcome.results;
    } catch (error) {
      // A server error leaves the session usable (we read up to ReadyForQuery); anything else does not.
      this.state = error instanceof ServerError ? 'idle' : 'broken';
      if (this.state === 'broken') this.wire.destroy();
      throw error;
    }
  }

  private enter(): void {
    if (this.state === 'idle') {
      if (this.wire.failed !== undefined) {
        this.state = 'broken';
        throw this.wire.failed;
      }
      this.state = 'busy';
      return;
    }
    const reason =
      this.state === 'busy'
        ? 'another command is still running on this connection'
        : this.state === 'copy'
          ? 'a replication stream is in progress on this connection'
          : 'the connection is closed';
    throw new ConnectionError('WAL_ERR_CONNECTION_STATE', `cannot run a command: ${reason}`);
  }

  /** Simple query; each result set's values as text. */
  async query(sql: string): Promise<QueryResult[]> {
    return (await this.run(sql)).map(toTextResult);
  }

  private async single(sql: string): Promise<QueryResult | undefined> {
    const results = await this.run(sql);
    const last = results.at(-1);
    return last === undefined ? undefined : toTextResult(last);
  }

  async identifySystem(): Promise<SystemIdentification> {
    return parseIdentifySystem(await this.single('IDENTIFY_SYSTEM'));
  }

  async show(name: string): Promise<string> {
    return parseShow(name, await this.single(buildShow(name)));
  }

  async timelineHistory(timeline: number): Promise<{ fileName: string; content: Buffer }> {
    const results = await this.run(buildTimelineHistory(timeline));
    return parseTimelineHistory(timeline, results.at(-1));
  }

  async readReplicationSlot(slot: string): Promise<ReplicationSlotInfo> {
    return parseReadReplicationSlot(await this.single(`READ_REPLICATION_SLOT ${quoteIdentifier(slot)}`));
  }

  async createReplicationSlot(
    slot: string,
    options: { reserveWal?: boolean; temporary?: boolean } = {},
  ): Promise<{ slotName: string; consistentPoint: bigint }> {
    return parseCreateReplicationSlot(
      await this.single(buildCreateReplicationSlot(slot, options, this.serverVersion)),
    );
  }

  async dropReplicationSlot(slot: string, options: { wait?: boolean } = {}): Promise<void> {
    await this.run(buildDropReplicationSlot(slot, options));
  }

  /**
   * START_REPLICATION. Resolves with a stream once the server entered COPY BOTH, or with the
   * result when it skipped COPY (historic timeline, start point at or past the switch point).
   * Errors before COPY (slot missing, timeline not in history, ...) reject with ServerError.
   */
  async startReplication(request: {
    slot?: string;
    startLsn: bigint;
    timeline: number;
  }): Promise<ReplicationStream | { kind: 'no-copy'; result: EndOfStreamResult }> {
    const sql = buildStartReplication(request);
    this.enter();
    let outcome: Awaited<ReturnType<typeof runSimpleQuery>>;
    try {
      outcome = await runSimpleQuery(this.wire, sql, {
        allowCopyBoth: true,
        onParameter: (name, value) => this.mutableParameters.set(name, value),
      });
    } catch (error) {
      this.state = error instanceof ServerError ? 'idle' : 'broken';
      if (this.state === 'broken') this.wire.destroy();
      // receivelog.c ReceiveXlogStream: the command's name, then libpq's message.
      if (error instanceof ServerError) {
        error.message = `could not send replication command "START_REPLICATION": ${error.message}`;
      }
      throw error;
    }
    if (outcome.copyBoth === undefined) {
      this.state = 'idle';
      const withRows = outcome.results.find((result) => result.fields.length > 0);
      const nextTimeline = parseNextTimeline(withRows === undefined ? undefined : toTextResult(withRows));
      const result: EndOfStreamResult = {
        commandTags: outcome.results.map((result) => result.commandTag),
        serverClosed: false,
      };
      if (nextTimeline !== undefined) result.nextTimeline = nextTimeline;
      return { kind: 'no-copy', result };
    }
    this.state = 'copy';
    this.wire.established = true;
    return new CopyBothStream(
      this.wire,
      (reusable) => {
        if (this.state !== 'copy') return;
        this.state = reusable ? 'idle' : 'broken';
        if (!reusable) this.wire.destroy();
      },
      (name, value) => this.mutableParameters.set(name, value),
    );
  }

  /** Sends Terminate and closes the socket. Idempotent; never throws. */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    const socket = this.wire.socket;
    this.closing = new Promise<void>((resolve) => {
      this.state = 'closed';
      // A server that does not read what we send would never get to our Terminate.
      if (this.wire.writeBlocked) this.wire.destroy();
      if (socket.destroyed) {
        resolve();
        return;
      }
      socket.once('close', () => resolve());
      // A paused socket would never read the server's EOF.
      socket.resume();
      try {
        if (this.wire.failed === undefined) this.wire.send({ type: 'Terminate' });
      } catch {
        // The socket is going away anyway.
      }
      socket.end();
      // A server that does not close its side must not keep us waiting.
      const timer = setTimeout(() => socket.destroy(), 2000);
      timer.unref();
    });
    return this.closing;
  }

  /** Closes the socket at once, without Terminate. */
  destroy(): void {
    this.state = 'closed';
    this.wire.destroy();
  }

  get closed(): boolean {
    return this.state === 'closed' || this.state === 'broken';
  }
}
