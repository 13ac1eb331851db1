import { WalError } from '@wal/protocol';

/**
 * Codes of the errors the receive loop raises itself. Errors of the layers below (ServerError,
 * ConnectionError, SinkError, ProtocolError...) pass through unchanged, except "WAL segment already
 * removed" (58P01), which is wrapped in WAL_ERR_STREAM_WAL_REMOVED to carry the operator advice.
 */
export type StreamErrorCode =
  /** The server is older than PostgreSQL 10 (no `SHOW wal_segment_size`). Fatal. */
  | 'WAL_ERR_STREAM_SERVER_VERSION'
  /** `integer_datetimes` is not `on`: the timestamps of the protocol would be misread. Fatal. */
  | 'WAL_ERR_STREAM_INTEGER_DATETIMES'
  /** IDENTIFY_SYSTEM reported a database: the connection is not a physical replication connection. Fatal. */
  | 'WAL_ERR_STREAM_DATABASE_SPECIFIC'
  /** `SHOW data_directory_mode` returned something that is not an octal mode. Fatal. */
  | 'WAL_ERR_STREAM_DATA_DIRECTORY_MODE'
  /** `SHOW wal_segment_size` is not a power of two between 1 MiB and 1 GiB. Fatal. */
  | 'WAL_ERR_STREAM_SEGMENT_SIZE'
  /** The segment size changed between two connections (another server behind the same address). Fatal. */
  | 'WAL_ERR_STREAM_SEGMENT_SIZE_CHANGED'
  /** The system identifier changed between two connections. Fatal. */
  | 'WAL_ERR_STREAM_SYSTEM_ID_CHANGED'
  /** READ_REPLICATION_SLOT: the slot does not exist. Retryable, like pg_receivewal (it may be created). */
  | 'WAL_ERR_STREAM_SLOT_MISSING'
  /** READ_REPLICATION_SLOT: the slot is not a physical slot. Fatal. */
  | 'WAL_ERR_STREAM_SLOT_NOT_PHYSICAL'
  /**
   * The slot has been invalidated (PostgreSQL 18: idle_replication_slot_timeout or
   * max_slot_wal_keep_size): the server keeps no WAL for it. Fatal; a SlotInvalidatedError.
   */
  | 'WAL_ERR_STREAM_SLOT_INVALIDATED'
  /** The start timeline is newer than the server's current timeline. Retryable (pg_receivewal loops). */
  | 'WAL_ERR_STREAM_TIMELINE_NOT_PRESENT'
  /** The server no longer has the WAL at the start position (SQLSTATE 58P01). Fatal: needs the operator. */
  | 'WAL_ERR_STREAM_WAL_REMOVED'
  /** TIMELINE_HISTORY answered with a file name that is not `%08X.history` of the requested timeline. Fatal. */
  | 'WAL_ERR_STREAM_HISTORY_FILE_NAME'
  /**
   * TIMELINE_HISTORY answered with content that is no timeline history file (binary, a line that is
   * not `tli<TAB>X/X…`, timelines not ascending or not older than the requested one). Fatal.
   */
  | 'WAL_ERR_STREAM_HISTORY_FILE_CONTENT'
  /** An XLogData message whose walEnd (the server's WAL end) lies before its own dataStart. Retryable. */
  | 'WAL_ERR_STREAM_INVALID_WAL_END'
  /** A WAL message did not start where the previous one ended. Retryable (reconnect resumes from the sink). */
  | 'WAL_ERR_STREAM_UNEXPECTED_POSITION'
  /** End-of-timeline result that breaks the rules (next timeline not newer, or starts after the stop point). */
  | 'WAL_ERR_STREAM_UNEXPECTED_TIMELINE'
  /** The server ended the replication stream before the stop point (server shutdown, `COPY 0`). Retryable. */
  | 'WAL_ERR_STREAM_TERMINATED'
  /** Nothing received for `receiveTimeoutMs`, even after a ping. Retryable. */
  | 'WAL_ERR_STREAM_RECEIVE_TIMEOUT'
  /** The caller's signal aborted while a connection attempt or a command waited for the server. Not retryable: it is the requested stop. */
  | 'WAL_ERR_STREAM_ABORTED'
  /** Invalid options passed to receiveWal. Fatal. */
  | 'WAL_ERR_STREAM_INVALID_OPTION';

/**
 * An error raised by the receive loop (see StreamErrorCode for the meaning of each code). Messages
 * say what to do in the library's terms; what a caller needs to say it in its own (a command-line
 * flag, a configuration key) is data on the error: the code, and the slot it is about.
 */
export class StreamError extends WalError {
  declare readonly code: StreamErrorCode;
  /** The replication slot the error is about (WAL_ERR_STREAM_SLOT_MISSING, _SLOT_NOT_PHYSICAL). */
  readonly slot: string | undefined;

  constructor(
    code: StreamErrorCode,
    message: string,
    options: { cause?: unknown; retryable?: boolean; slot?: string } = {},
  ) {
    const { slot, ...rest } = options;
    super(code, message, rest);
    this.slot = slot;
  }
}
