import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { SecureContext } from 'node:tls';
import {
  type BackendMessage,
  BackendMessageCode,
  EncryptionResponseCode,
  encodeBackendMessage,
  encodePrimaryKeepalive,
  encodeXLogDataHeader,
  type FrontendMessage,
  formatLsn,
  type NoticeFields,
  ProtocolVersion,
  type StandbyMessage,
  type StartupMessage,
  toPostgresTimestamp,
  walFileName,
  XLOG_DATA_HEADER_LENGTH,
} from '@wal/protocol';
import { type AuthOptions, md5PasswordResponse, ScramExchange } from './auth.js';
import {
  type Column,
  errorFields,
  formatSegmentSize,
  parseReplicationCommand,
  type ReplicationCommand,
  resultSet,
  TypeOid,
} from './commands.js';
import { type ClientConnection, type ClientMessage, ScriptError, SessionClosedError } from './connection.js';
import type { ServerModel, TimelineInfo } from './model.js';

/** The walsender's MAX_SEND_SIZE: 16 pages (walsender.c). */
export const MAX_SEND_SIZE = 16 * 8192;

/** A script runs once per accepted connection. */
export type Script = (session: Session) => Promise<void>;

/** What START_REPLICATION asked for, once the server has entered COPY mode. */
export interface StreamRequest {
  slot: string | undefined;
  startLsn: bigint;
  /** The timeline being streamed. */
  timeline: TimelineInfo;
  /** Where this stream ends: the timeline's switch point, or the server's flush position. */
  endLsn: bigint;
  /** True when the timeline is not the current one: the stream ends with an end-of-timeline. */
  historic: boolean;
}

/** Ways a scenario takes over parts of the default service. */
export interface ServeHooks {
  /** Called for every query first; return true when the hook answered it. */
  onQuery?: (sql: string, command: ReplicationCommand) => Promise<boolean>;
  /** Replaces the default streaming of a START_REPLICATION that entered COPY. */
  onStream?: (request: StreamRequest) => Promise<void>;
}

/** What answering one query led to. */
export type AnswerOutcome =
  | { kind: 'answered'; command: ReplicationCommand }
  | { kind: 'streaming'; request: StreamRequest };

type CommandOf<Kind extends ReplicationCommand['kind']> = Extract<ReplicationCommand, { kind: Kind }>;

function textColumn(name: string): Column {
  return { name, typeOid: TypeOid.text };
}

export interface SessionOptions {
  connection: ClientConnection;
  model: ServerModel;
  auth: AuthOptions;
  secureContext: SecureContext | undefined;
  /** Default wait for a client message, in ms. */
  timeoutMs: number;
}

/**
 * The script engine: one per connection. Low-level steps (`send`, `sendRaw`, `expect`, `cutAtByte`,
 * `stall`) and walsender behaviours built from them (`handshake`, `serveCommands`, `sendWal`,
 * `keepalive`, `endTimeline`, `finishCopy`, `shutdown`, `error`), so a scenario reads like the
 * conversation it stages. Every step throws SessionClosedError once the client is gone or the
 * connection was cut; the server treats that as the normal end of a script.
 */
export class Session {
  readonly connection: ClientConnection;
  /** The server this connection talks to; a script may swap it (e.g. another system id). */
  model: ServerModel;
  readonly auth: AuthOptions;
  readonly timeoutMs: number;
  startup: StartupMessage | undefined;
  /** Negotiated protocol: 3.0, or 3.2 when the client asked for it and the server is 18+. */
  protocolVersion: number = ProtocolVersion.V3_0;
  /** The next LSN the server would send (`sentPtr`). */
  sentLsn = 0n;
  private readonly secureContext: SecureContext | undefined;
  private serverCopyDone = false;
  private clientCopyDone = false;

  constructor(options: SessionOptions) {
    this.connection = options.connection;
    this.model = options.model;
    this.auth = options.auth;
    this.secureContext = options.secureContext;
    this.timeoutMs = options.timeoutMs;
  }

  /** 1 for the first connection the server accepted. */
  get connectionIndex(): number {
    return this.connection.index;
  }

  // ---- raw steps -------------------------------------------------------------------------------

  async send(...messages: BackendMessage[]): Promise<void> {
    for (const message of messages) await this.connection.write(encodeBackendMessage(message));
  }

  /** Bytes exactly as given: malformed messages, half messages, garbage. */
  async sendRaw(bytes: Buffer): Promise<void> {
    await this.connection.write(bytes);
  }

  /** A CopyData frame around `payload`. */
  async sendCopyData(payload: Buffer): Promise<void> {
    const header = Buffer.allocUnsafe(5);
    header[0] = BackendMessageCode.CopyData;
    header.writeUInt32BE(payload.length + 4, 1);
    await this.connection.writeMany([header, payload]);
  }

  /** Cut the connection when the server's output reaches byte `offset` (counted from the first byte). */
  cutAtByte(offset: number, mode: 'end' | 'reset' = 'end'): void {
    this.connection.cutAtByte(offset, mode);
  }

  /** Close the connection now (FIN, or RST with `reset`). */
  close(mode: 'end' | 'reset' = 'end'): void {
    if (mode === 'reset') this.connection.reset();
    else this.connection.end();
  }

  /** Never read the client's messages again (a hostile server); sending goes on. */
  stopReading(): void {
    this.connection.stopReading();
  }

  /** Do nothing until the client goes away, or for `ms` milliseconds; client messages are still recorded. */
  async stall(ms?: number): Promise<void> {
    if (ms === undefined) {
      await this.connection.closedPromise();
      return;
    }
    const timer = new AbortController();
    await Promise.race([
      delay(ms, undefined, { signal: timer.signal }).catch(() => {}),
      this.connection.closedPromise(),
    ]);
    // No timer outlives the stall: a closed connection must not keep the process alive.
    timer.abort();
  }

  /** The next client message; throws SessionClosedError at end of stream, ScriptTimeoutError on timeout. */
  async nextMessage(timeoutMs = this.timeoutMs): Promise<ClientMessage> {
    const message = await this.connection.next(timeoutMs);
    if (message === undefined)
      throw new SessionClosedError(`connection ${this.connectionIndex}: the client closed it`);
    if (message.message.type === 'CopyDone') this.clientCopyDone = true;
    return message;
  }

  /** The next message must be of `type`. */
  async expect<Type extends FrontendMessage['type']>(
    type: Type,
    timeoutMs = this.timeoutMs,
  ): Promise<Extract<FrontendMessage, { type: Type }>> {
    const { message } = await this.nextMessage(timeoutMs);
    if (message.type !== type) {
      throw new ScriptError(`expected ${type} from the client, got ${describe(message)}`);
    }
    return message as Extract<FrontendMessage, { type: Type }>;
  }

  /** The next message must be a Query matching `pattern`; returns the SQL and the match. */
  async expectQuery(
    pattern?: RegExp,
    timeoutMs = this.timeoutMs,
  ): Promise<{ sql: string; match: RegExpExecArray | null }> {
    const { sql } = await this.expect('Query', timeoutMs);
    const match = pattern === undefined ? null : pattern.exec(sql);
    if (pattern !== undefined && match === null) {
      throw new ScriptError(`expected a query matching ${pattern}, got ${JSON.stringify(sql)}`);
    }
    return { sql, match };
  }

  /**
   * Wait for a standby message from the client (default: a status update 'r'), skipping others.
   * A CopyDone on the way is remembered for {@link finishCopy}.
   */
  async waitForStandby(
    predicate: (message: StandbyMessage) => boolean = (message) => message.type === 'StandbyStatusUpdate',
    timeoutMs = this.timeoutMs,
  ): Promise<StandbyMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const entry = await this.nextMessage(Math.max(1, deadline - Date.now()));
      if (entry.standby !== undefined && predicate(entry.standby)) return entry.standby;
      if (entry.message.type === 'Query' || entry.message.type === 'Terminate') {
        throw new ScriptError(`expected a standby message, got ${describe(entry.message)}`);
      }
    }
  }

  // ---- session start ---------------------------------------------------------------------------

  /** Startup (with SSL/GSS negotiation), authentication, then ParameterStatus, BackendKeyData, ReadyForQuery. */
  async handshake(): Promise<StartupMessage> {
    const startup = await this.acceptStartup();
    await this.authenticate();
    await this.sendWelcome();
    return startup;
  }

  /** Read startup packets: answer SSLRequest with 'S' (TLS configured) or 'N', GSSENCRequest with 'N'. */
  async acceptStartup(): Promise<StartupMessage> {
    for (;;) {
      const { message } = await this.nextMessage();
      switch (message.type) {
        case 'SSLRequest':
          if (this.secureContext !== undefined && !this.connection.usesTls) {
            await this.connection.write(Buffer.of(EncryptionResponseCode.SslAccepted));
            this.connection.expectStartupPacket();
            await this.connection.upgradeToTls(this.secureContext);
          } else {
            await this.connection.write(Buffer.of(EncryptionResponseCode.Refused));
            this.connection.expectStartupPacket();
          }
          continue;
        case 'GSSENCRequest':
          await this.connection.write(Buffer.of(EncryptionResponseCode.Refused));
          this.connection.expectStartupPacket();
          continue;
        case 'CancelRequest':
          this.close();
          throw new SessionClosedError('the client sent a CancelRequest; nothing to cancel');
        case 'StartupMessage':
          this.startup = message;
          await this.negotiateProtocol(message);
          return message;
        default:
          throw new ScriptError(`expected a startup packet, got ${describe(message)}`);
      }
    }
  }

  private async negotiateProtocol(startup: StartupMessage): Promise<void> {
    const requestedMinor = startup.protocolVersion & 0xffff;
    const newestMinor = this.model.version >= 18 ? 2 : 0;
    const unknownOptions = Object.keys(startup.parameters).filter((name) => name.startsWith('_pq_.'));
    if (requestedMinor > newestMinor || unknownOptions.length > 0) {
      await this.send({
        type: 'NegotiateProtocolVersion',
        newestMinorVersion: newestMinor,
        unrecognizedOptions: unknownOptions,
      });
    }
    this.protocolVersion = (3 << 16) | Math.min(requestedMinor, newestMinor);
    const replication = startup.parameters.replication;
    if (replication === undefined || !/^(t|tr|tru|true|on|y|ye|yes|1)$/i.test(replication)) {
      await this.fatal(
        errorFields(
          '0A000',
          'this fake server only accepts physical replication connections (replication=true)',
          {
            severity: 'FATAL',
          },
        ),
      );
    }
  }

  /** The authentication exchange of {@link AuthOptions}; a failure sends FATAL 28P01 and closes. */
  async authenticate(): Promise<void> {
    const user = this.startup?.parameters.user ?? '';
    const failed = async (): Promise<never> =>
      this.fatal(
        errorFields('28P01', `password authentication failed for user "${user}"`, { severity: 'FATAL' }),
      );
    if (this.auth.user !== undefined && this.auth.user !== user) await failed();
    const password = this.auth.password ?? '';
    switch (this.auth.method) {
      case 'trust':
        break;
      case 'password': {
        this.connection.authentication = 'password';
        await this.send({ type: 'AuthenticationCleartextPassword' });
        const response = await this.expect('PasswordMessage');
        if (response.password.toString() !== password) await failed();
        break;
      }
      case 'md5': {
        const salt = randomBytes(4);
        this.connection.authentication = 'password';
        await this.send({ type: 'AuthenticationMD5Password', salt });
        const response = await this.expect('PasswordMessage');
        if (response.password.toString() !== md5PasswordResponse(user, password, salt)) await failed();
        break;
      }
      case 'scram-sha-256': {
        this.connection.authentication = 'sasl-initial';
        await this.send({ type: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256'] });
        const initial = await this.expect('SASLInitialResponse');
        if (initial.mechanism !== 'SCRAM-SHA-256' || initial.data === null) {
          await this.fatal(
            errorFields('08P01', 'client selected an invalid SASL authentication mechanism', {
              severity: 'FATAL',
            }),
          );
        }
        const first = ScramExchange.start(initial.data!.toString(), {
          password,
          ...(this.auth.iterations === undefined ? {} : { iterations: this.auth.iterations }),
          ...(this.auth.salt === undefined ? {} : { salt: this.auth.salt }),
        });
        if ('error' in first) {
          await this.fatal(errorFields('08P01', first.error, { severity: 'FATAL' }));
          return;
        }
        this.connection.authentication = 'sasl';
        await this.send({ type: 'AuthenticationSASLContinue', data: Buffer.from(first.serverFirstMessage) });
        const final = await this.expect('SASLResponse');
        const outcome = first.exchange.finish(final.data.toString(), {
          wrongServerSignature: this.auth.wrongServerSignature ?? false,
        });
        if ('error' in outcome) await failed();
        else
          await this.send({ type: 'AuthenticationSASLFinal', data: Buffer.from(outcome.serverFinalMessage) });
        break;
      }
    }
    this.connection.authentication = undefined;
    await this.send({ type: 'AuthenticationOk' });
  }

  /** ParameterStatus for every reported setting, BackendKeyData (32-byte key under 3.2), ReadyForQuery. */
  async sendWelcome(): Promise<void> {
    const parameters = { ...this.model.parameters };
    const applicationName = this.startup?.parameters.application_name;
    if (applicationName !== undefined) parameters.application_name = applicationName;
    const user = this.startup?.parameters.user;
    if (user !== undefined) parameters.session_authorization = user;
    for (const [name, value] of Object.entries(parameters))
      await this.send({ type: 'ParameterStatus', name, value });
    const keyLength = this.protocolVersion >= ProtocolVersion.V3_2 ? 32 : 4;
    await this.send(
      { type: 'BackendKeyData', processId: 10_000 + this.connectionIndex, secretKey: randomBytes(keyLength) },
      { type: 'ReadyForQuery', transactionStatus: 'I' },
    );
  }

  // ---- commands --------------------------------------------------------------------------------

  /**
   * Answer queries the way a physical walsender does until START_REPLICATION enters COPY mode
   * (returns the request) or the client terminates (returns undefined). `onQuery` may take over a
   * query first: return true when it answered it.
   */
  async serveCommands(hooks: ServeHooks = {}): Promise<StreamRequest | undefined> {
    for (;;) {
      let entry: ClientMessage;
      try {
        entry = await this.nextMessage(24 * 3600_000);
      } catch (error) {
        if (error instanceof SessionClosedError) return undefined;
        throw error;
      }
      const { message } = entry;
      if (message.type === 'Terminate') {
        this.close();
        return undefined;
      }
      if (message.type !== 'Query') throw new ScriptError(`expected a Query, got ${describe(message)}`);
      if (
        hooks.onQuery !== undefined &&
        (await hooks.onQuery(message.sql, parseReplicationCommand(message.sql)))
      )
        continue;
      const outcome = await this.answer(message.sql);
      if (outcome.kind === 'streaming') return outcome.request;
    }
  }

  /** Answer one query with the emulated server's result (spec §5.3, §5.4). */
  async answer(sql: string): Promise<AnswerOutcome> {
    const command = parseReplicationCommand(sql);
    switch (command.kind) {
      case 'EMPTY':
        await this.send({ type: 'EmptyQueryResponse' }, { type: 'ReadyForQuery', transactionStatus: 'I' });
        break;
      case 'SQL':
        await this.error(
          errorFields('0A000', 'cannot execute SQL commands in WAL sender for physical replication'),
        );
        break;
      case 'SYNTAX_ERROR':
        await this.error(errorFields('42601', 'syntax error'));
        break;
      case 'IDENTIFY_SYSTEM':
        await this.answerIdentifySystem();
        break;
      case 'SHOW':
        await this.answerShow(command);
        break;
      case 'TIMELINE_HISTORY':
        await this.answerTimelineHistory(command);
        break;
      case 'READ_REPLICATION_SLOT':
        await this.answerReadReplicationSlot(command);
        break;
      case 'CREATE_REPLICATION_SLOT':
        await this.answerCreateReplicationSlot(command);
        break;
      case 'DROP_REPLICATION_SLOT':
        await this.answerDropReplicationSlot(command);
        break;
      case 'START_REPLICATION': {
        const request = await this.startReplication(command);
        return request === undefined ? { kind: 'answered', command } : { kind: 'streaming', request };
      }
    }
    return { kind: 'answered', command };
  }

  /** A result set's frames, then ReadyForQuery. */
  private async reply(frames: Buffer[]): Promise<void> {
    for (const frame of frames) await this.connection.write(frame);
    await this.send({ type: 'ReadyForQuery', transactionStatus: 'I' });
  }

  private async answerIdentifySystem(): Promise<void> {
    const model = this.model;
    await this.reply(
      resultSet(
        [
          textColumn('systemid'),
          { name: 'timeline', typeOid: model.version >= 16 ? TypeOid.int8 : TypeOid.int4 },
          textColumn('xlogpos'),
          textColumn('dbname'),
        ],
        [
          [
            model.systemId.toString(),
            String(model.currentTimeline.timeline),
            formatLsn(model.reportedLsn),
            null,
          ],
        ],
        'IDENTIFY_SYSTEM',
      ),
    );
  }

  private async answerShow(command: CommandOf<'SHOW'>): Promise<void> {
    const model = this.model;
    const values: Record<string, string> = {
      wal_segment_size: formatSegmentSize(model.segmentSize),
      data_directory_mode: model.dataDirectoryMode,
      server_version: model.versionText,
      integer_datetimes: 'on',
    };
    const value = values[command.name];
    if (value === undefined) {
      await this.error(errorFields('42704', `unrecognized configuration parameter "${command.name}"`));
    } else {
      await this.reply(resultSet([textColumn(command.name)], [[value]], 'SHOW'));
    }
  }

  private async answerTimelineHistory(command: CommandOf<'TIMELINE_HISTORY'>): Promise<void> {
    if (command.timeline === 0) {
      await this.error(errorFields('42601', 'invalid timeline 0'));
      return;
    }
    const history = this.model.historyFile(command.timeline);
    if (history === undefined) {
      const name = `${command.timeline.toString(16).toUpperCase().padStart(8, '0')}.history`;
      await this.error(
        errorFields('58P01', `could not open file "pg_wal/${name}": No such file or directory`),
      );
      return;
    }
    await this.reply(
      resultSet(
        [
          { name: 'filename', typeOid: TypeOid.text, typeModifier: 0 },
          { name: 'content', typeOid: TypeOid.text, typeModifier: 0 },
        ],
        [[history.fileName, history.content]],
        'TIMELINE_HISTORY',
      ),
    );
  }

  private async answerReadReplicationSlot(command: CommandOf<'READ_REPLICATION_SLOT'>): Promise<void> {
    const model = this.model;
    if (model.version < 15) {
      await this.error(errorFields('42601', 'syntax error'));
      return;
    }
    const slot = model.slots.get(command.slot);
    const restart = slot?.restartLsn;
    await this.reply(
      resultSet(
        [textColumn('slot_type'), textColumn('restart_lsn'), { name: 'restart_tli', typeOid: TypeOid.int8 }],
        [
          slot === undefined
            ? [null, null, null]
            : [
                'physical',
                restart === undefined ? null : formatLsn(restart),
                restart === undefined ? null : String(model.timelineOfLsn(restart)),
              ],
        ],
        'READ_REPLICATION_SLOT',
      ),
    );
  }

  private async answerCreateReplicationSlot(command: CommandOf<'CREATE_REPLICATION_SLOT'>): Promise<void> {
    const model = this.model;
    if (model.slots.has(command.slot)) {
      await this.error(errorFields('42710', `replication slot "${command.slot}" already exists`));
      return;
    }
    if (!/^[a-z0-9_]+$/.test(command.slot)) {
      await this.error(
        errorFields('42602', `replication slot name "${command.slot}" contains invalid character`, {
          hint: 'Replication slot names may only contain lower case letters, numbers, and the underscore character.',
        }),
      );
      return;
    }
    model.slots.set(command.slot, {
      restartLsn: command.reserveWal ? model.flushLsn : undefined,
      active: false,
    });
    await this.reply(
      resultSet(
        [
          textColumn('slot_name'),
          textColumn('consistent_point'),
          textColumn('snapshot_name'),
          textColumn('output_plugin'),
        ],
        [[command.slot, model.version >= 19 ? '0/00000000' : '0/0', null, null]],
        'CREATE_REPLICATION_SLOT',
      ),
    );
  }

  private async answerDropReplicationSlot(command: CommandOf<'DROP_REPLICATION_SLOT'>): Promise<void> {
    if (await this.refuseUnavailableSlot(command.slot)) return;
    this.model.slots.delete(command.slot);
    await this.send(
      { type: 'CommandComplete', tag: 'DROP_REPLICATION_SLOT' },
      { type: 'ReadyForQuery', transactionStatus: 'I' },
    );
  }

  /** `StartReplication` (walsender.c; spec §5.4): checks, CopyBothResponse, or the skip-COPY answer. */
  private async startReplication(
    command: CommandOf<'START_REPLICATION'>,
  ): Promise<StreamRequest | undefined> {
    if (command.slot !== undefined && (await this.refuseUnavailableSlot(command.slot))) return undefined;
    const start = await this.checkTimeline(command);
    if (start === undefined) return undefined;
    const { timeline, historic, endLsn } = start;
    await this.send({ type: 'CopyBothResponse', format: 0, columnFormats: [] });
    this.serverCopyDone = false;
    this.clientCopyDone = false;
    this.sentLsn = command.startLsn;
    if (!(await this.checkWalAvailable(command, timeline, historic))) return undefined;
    return { slot: command.slot, startLsn: command.startLsn, timeline, endLsn, historic };
  }

  /** Answers an error and returns true when slot `name` does not exist or is in use. */
  private async refuseUnavailableSlot(name: string): Promise<boolean> {
    const slot = this.model.slots.get(name);
    if (slot === undefined) {
      await this.error(errorFields('42704', `replication slot "${name}" does not exist`));
      return true;
    }
    if (slot.active) {
      await this.error(errorFields('55006', `replication slot "${name}" is active for PID 4242`));
      return true;
    }
    return false;
  }

  /**
   * The requested timeline, and on a historic one the start against its end: an error or the
   * skip-COPY answer (then undefined), else where streaming on it ends.
   */
  private async checkTimeline(
    command: CommandOf<'START_REPLICATION'>,
  ): Promise<{ timeline: TimelineInfo; historic: boolean; endLsn: bigint } | undefined> {
    const model = this.model;
    if (command.timeline === 0) {
      await this.error(errorFields('42601', 'invalid timeline 0'));
      return undefined;
    }
    const requested = command.timeline ?? model.currentTimeline.timeline;
    const timeline = model.timeline(requested);
    if (timeline === undefined) {
      await this.error(
        errorFields('XX000', `requested timeline ${requested} is not in this server's history`),
      );
      return undefined;
    }
    const historic = timeline !== model.currentTimeline;
    const endLsn = model.endOf(timeline);
    if (!historic) return { timeline, historic, endLsn };
    if (endLsn < command.startLsn) {
      await this.error(
        errorFields(
          'XX000',
          `requested starting point ${formatLsnPadded(command.startLsn)} on timeline ${requested} is not in this server's history`,
          {
            detail: `This server's history forked from timeline ${requested} at ${formatLsnPadded(endLsn)}.`,
          },
        ),
      );
      return undefined;
    }
    if (command.startLsn === endLsn) {
      // Nothing to stream: no COPY at all, straight to the end-of-timeline result (spec §5.4 step 4).
      const next = model.timelines[model.timelines.indexOf(timeline) + 1]!;
      await this.sendEndOfTimelineResult(next.timeline, endLsn);
      return undefined;
    }
    return { timeline, historic, endLsn };
  }

  /** The checks walsender makes inside COPY: the start segment still exists and is not in the future. */
  private async checkWalAvailable(
    command: CommandOf<'START_REPLICATION'>,
    timeline: TimelineInfo,
    historic: boolean,
  ): Promise<boolean> {
    const model = this.model;
    if (model.removedBefore !== undefined && command.startLsn < model.removedBefore) {
      const segment = command.startLsn / BigInt(model.segmentSize);
      const name = walFileName(timeline.timeline, segment, model.segmentSize);
      await this.error(errorFields('58P01', `requested WAL segment ${name} has already been removed`));
      return false;
    }
    if (!historic && model.flushLsn < command.startLsn) {
      await this.error(
        errorFields(
          'XX000',
          `requested starting point ${formatLsnPadded(command.startLsn)} is ahead of the WAL flush position of this server ${formatLsnPadded(model.flushLsn)}`,
        ),
      );
      return false;
    }
    return true;
  }

  // ---- replication -----------------------------------------------------------------------------

  /**
   * Send the generated WAL of `[from, to)` as XLogData messages like XLogSendPhysical: chunks of at
   * most `chunkSize` bytes whose ends are rounded down to a page boundary while more is pending, so a
   * message may cross a segment boundary. Stops early when the client has sent CopyDone.
   */
  async sendWal(
    from: bigint,
    to: bigint,
    options: { chunkSize?: number; walEnd?: bigint; timeline?: TimelineInfo } = {},
  ): Promise<void> {
    const chunkSize = BigInt(options.chunkSize ?? MAX_SEND_SIZE);
    const generator = (options.timeline ?? this.model.currentTimeline).generator;
    let position = from;
    while (position < to && !this.clientStopped() && !this.connection.closed) {
      let end = position + chunkSize;
      if (end < to) {
        const rounded = end - (end % 8192n);
        if (rounded > position) end = rounded;
      } else {
        end = to;
      }
      await this.sendXLogData(position, generator.read(position, end), options.walEnd ?? to);
      position = end;
      this.sentLsn = end;
    }
  }

  /** One XLogData message: a 30-byte frame header, then the WAL bytes as they are (no copy). */
  async sendXLogData(
    dataStart: bigint,
    data: Buffer,
    walEnd: bigint,
    sendTime = toPostgresTimestamp(),
  ): Promise<void> {
    const header = Buffer.allocUnsafe(5 + XLOG_DATA_HEADER_LENGTH);
    header[0] = BackendMessageCode.CopyData;
    header.writeUInt32BE(4 + XLOG_DATA_HEADER_LENGTH + data.length, 1);
    encodeXLogDataHeader(header, 5, { dataStart, walEnd, sendTime });
    await this.connection.writeMany(data.length > 0 ? [header, data] : [header]);
  }

  /** A primary keepalive; with `replyRequested`, optionally wait for the client's status update. */
  async keepalive(
    options: { replyRequested?: boolean; walEnd?: bigint; waitForReply?: boolean; timeoutMs?: number } = {},
  ): Promise<StandbyMessage | undefined> {
    await this.sendCopyData(
      encodePrimaryKeepalive({
        walEnd: options.walEnd ?? this.sentLsn,
        sendTime: toPostgresTimestamp(),
        replyRequested: options.replyRequested ?? false,
      }),
    );
    if (options.waitForReply) return this.waitForStandby(undefined, options.timeoutMs);
    return undefined;
  }

  /**
   * A hostile server: stop reading the client, then send keepalives asking for a reply as fast as
   * the socket takes them, until the connection is gone. `flood` counts them, and says since when
   * a send has waited for the socket (undefined while none waits).
   */
  async floodReplyRequests(flood: { sent: number; blockedSince: number | undefined }): Promise<never> {
    this.stopReading();
    for (;;) {
      flood.blockedSince = Date.now();
      await this.keepalive({ replyRequested: true });
      flood.blockedSince = undefined;
      flood.sent += 1;
      // Writes the kernel takes at once resolve without I/O: let other timers (a test's) run.
      if (flood.sent % 1000 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /**
   * End of a historic timeline (spec §3.6, §5.5): CopyDone, wait for the client's CopyDone, then the
   * next-timeline row, CommandComplete START_STREAMING and START_REPLICATION, ReadyForQuery.
   */
  async endTimeline(
    next?: { timeline: number; startLsn: bigint },
    timeoutMs = this.timeoutMs,
  ): Promise<void> {
    const following = next ?? this.nextTimelineAfterStream();
    await this.send({ type: 'CopyDone' });
    this.serverCopyDone = true;
    await this.waitForClientCopyDone(timeoutMs);
    await this.sendEndOfTimelineResult(following.timeline, following.startLsn);
  }

  /**
   * The end of COPY when the client ends it (endpos, stop request): wait for its CopyDone, answer
   * CopyDone, CommandComplete START_STREAMING and START_REPLICATION, ReadyForQuery (spec §5.4 step 5).
   */
  async finishCopy(timeoutMs = 24 * 3600_000): Promise<void> {
    await this.waitForClientCopyDone(timeoutMs);
    if (!this.serverCopyDone) await this.send({ type: 'CopyDone' });
    this.serverCopyDone = true;
    await this.send(
      { type: 'CommandComplete', tag: 'START_STREAMING' },
      { type: 'CommandComplete', tag: 'START_REPLICATION' },
      { type: 'ReadyForQuery', transactionStatus: 'I' },
    );
  }

  /**
   * A server shutdown inside COPY (WalSndDone, spec §3.8): keepalive asking for a reply, wait until
   * a status update reports everything sent as written (unless `waitForReply` is false) — an older
   * status already queued does not count, as in the walsender — then CommandComplete "COPY 0"
   * without CopyDone, and close.
   */
  async shutdown(options: { waitForReply?: boolean; timeoutMs?: number } = {}): Promise<void> {
    const sentLsn = this.sentLsn;
    await this.keepalive({ replyRequested: true, walEnd: sentLsn });
    if (options.waitForReply ?? true) {
      await this.waitForStandby(
        (message) => message.type === 'StandbyStatusUpdate' && message.writeLsn >= sentLsn,
        options.timeoutMs,
      );
    }
    await this.send({ type: 'CommandComplete', tag: 'COPY 0' });
    this.close();
  }

  /** ErrorResponse (any SQLSTATE, before or inside COPY), then ReadyForQuery unless told otherwise. */
  async error(fields: NoticeFields, options: { readyForQuery?: boolean } = {}): Promise<void> {
    await this.send({ type: 'ErrorResponse', fields });
    if (options.readyForQuery ?? true) await this.send({ type: 'ReadyForQuery', transactionStatus: 'I' });
    this.serverCopyDone = true;
  }

  /** FATAL ErrorResponse, then close: how a server ends a session it refuses. */
  async fatal(fields: NoticeFields): Promise<never> {
    await this.send({
      type: 'ErrorResponse',
      fields: { ...fields, severity: 'FATAL', severityNonLocalized: 'FATAL' },
    });
    this.close();
    throw new SessionClosedError(`connection ${this.connectionIndex} refused: ${fields.message}`);
  }

  /**
   * The default life of a connection: handshake, answer commands, and for each START_REPLICATION
   * send the WAL to the end of the timeline (historic: end-of-timeline) or to the flush position
   * (current: then wait for the client's CopyDone).
   */
  async serveDefault(hooks: ServeHooks = {}): Promise<void> {
    await this.handshake();
    for (;;) {
      const request = await this.serveCommands(hooks);
      if (request === undefined) return;
      if (hooks.onStream !== undefined) await hooks.onStream(request);
      else await this.stream(request);
    }
  }

  /** Stream one START_REPLICATION request the default way. */
  async stream(request: StreamRequest): Promise<void> {
    await this.sendWal(request.startLsn, request.endLsn, { timeline: request.timeline });
    if (request.historic && !this.clientStopped()) await this.endTimeline();
    else await this.finishCopy();
  }

  private nextTimelineAfterStream(): { timeline: number; startLsn: bigint } {
    const timelines = this.model.timelines;
    const streamed = timelines.find((info) => info.endLsn !== undefined && this.sentLsn <= info.endLsn);
    const index = streamed === undefined ? -1 : timelines.indexOf(streamed);
    const next = timelines[index + 1];
    if (streamed === undefined || next === undefined) {
      throw new ScriptError('endTimeline() needs a historic timeline, or the next timeline given explicitly');
    }
    return { timeline: next.timeline, startLsn: streamed.endLsn! };
  }

  /** The result after an end of timeline (or instead of COPY): next_tli row, START_STREAMING, START_REPLICATION, Z. */
  async sendEndOfTimelineResult(timeline: number, startLsn: bigint): Promise<void> {
    const frames = resultSet(
      [
        { name: 'next_tli', typeOid: TypeOid.int8 },
        { name: 'next_tli_startpos', typeOid: TypeOid.text },
      ],
      [[String(timeline), formatLsn(startLsn)]],
      'START_STREAMING',
    );
    for (const frame of frames) await this.connection.write(frame);
    await this.send(
      { type: 'CommandComplete', tag: 'START_REPLICATION' },
      { type: 'ReadyForQuery', transactionStatus: 'I' },
    );
  }

  private async waitForClientCopyDone(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.clientCopyDone) {
      const { message } = await this.nextMessage(Math.max(1, deadline - Date.now()));
      if (message.type === 'CopyDone') break;
      if (message.type !== 'CopyData')
        throw new ScriptError(`expected CopyDone from the client, got ${describe(message)}`);
    }
  }

  /** The client has sent CopyDone (consumed, or still queued: peeking keeps sendWal from sending past it). */
  private clientStopped(): boolean {
    return this.clientCopyDone || this.connection.hasQueued('CopyDone');
  }
}

function describe(message: ClientMessage['message']): string {
  if (message.type === 'Query') return `Query ${JSON.stringify(message.sql)}`;
  if (message.type === 'Undecodable') return `an undecodable message (${message.error})`;
  return message.type;
}

/**
 * A stalled server: every connection is served as usual, except that a query starting with
 * `command` is never answered. `seen.count` counts those queries.
 */
export function neverAnswering(command: string, seen: { count: number }): Script {
  return (session) =>
    session.serveDefault({
      async onQuery(sql) {
        if (!sql.startsWith(command)) return false;
        seen.count += 1;
        await session.stall();
        return true;
      },
    });
}

/** `%X/%08X` as PostgreSQL's error messages print LSNs. */
export function formatLsnPadded(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase().padStart(8, '0')}`;
}
