/**
 * Where received WAL goes. The copy loop drives it through a SinkPipeline (sink-pipeline.ts);
 * `@wal/sink-fs` implements it for a directory the way pg_receivewal writes one. It covers what
 * receivelog.c asks of PostgreSQL's `WalWriteMethod` (src/bin/pg_basebackup/walmethods.h), at the
 * level of a stream rather than of files: `write` opens segments itself (walmethods' open_for_write
 * with its temporary suffix and padding), `flush` is its sync, and `close` its close (rename when
 * complete, keep `.partial` otherwise).
 *
 * The loop starts a call before the previous ones have resolved (several writes, then a flush, may
 * be in flight, bounded by `maxBytesInFlight`): a sink runs its calls in the order they were made,
 * as if each waited for the one before (DirectorySink serialises them), and a flush covers every
 * write called before it. After a call fails, later calls may fail too; the loop reports nothing
 * after the first failure.
 */
/** Why the loop closes its sink: COPY ended normally ('end'), or streaming failed ('failure'). */
export type SinkCloseReason = 'end' | 'failure';

export interface WalSink {
  /** Facts of the server, once per connection; throws SinkError WAL_ERR_SINK_MISMATCH if the directory holds another system / segment size. */
  prepare(info: {
    systemId: bigint;
    segmentSize: number;
    fileMode?: number /* from data_directory_mode */;
  }): Promise<void>;
  /** Where to resume from what is stored: segment-start LSN and timeline, or undefined when nothing usable. (pg_receivewal FindStreamingStart) */
  resumePoint(): Promise<{ lsn: bigint; timeline: number } | undefined>;
  hasHistoryFile(timeline: number): Promise<boolean>;
  /** Always uncompressed, atomic (tmp + rename). */
  writeHistoryFile(timeline: number, content: Buffer): Promise<void>;
  /**
   * WAL bytes starting at `startLsn` on `timeline`. May span segment boundaries. `data` is the sink's to read until
   * the promise settles, and no longer: the loop then releases its lease on the message, and the connection reads
   * the next WAL into that memory, so a sink that needs the bytes later copies them. The first write after
   * open/position change starts at a segment start.
   */
  write(timeline: number, startLsn: bigint, data: Buffer): Promise<void>;
  /**
   * Optional: `write` done before this returns, for a sink that writes on the calling thread anyway
   * (DirectorySink with blockingWrites). Returns true when the bytes are written as if `write` had
   * resolved, false when it did nothing and `write` must be used. Throws what `write` would reject
   * with. Called only when none of the sink's calls is still running; `data` is the sink's only
   * during the call. The stream loop uses it to account for a write in the same turn: no promise
   * per message, and a synchronous standby's commit is written, fsynced and acknowledged at once.
   */
  writeAtOnce?(timeline: number, startLsn: bigint, data: Buffer): boolean;
  /** Make all written bytes durable (fsync unless the sink is no-sync); resolves with the durable end LSN. */
  flush(): Promise<bigint>;
  /**
   * Optional: `flush` done before this returns, with the durable end LSN, or undefined when it did
   * nothing and `flush` must be used. Throws what `flush` would reject with. Called only when
   * none of the sink's calls is still running.
   */
  flushAtOnce?(): bigint | undefined;
  /**
   * End of stream on this timeline / on stop / on error: close the open segment (rename when
   * complete, keep .partial otherwise), durably. `reason` says which: 'end' when COPY ended
   * normally (end of timeline, endpos, stop), 'failure' when streaming failed — pg_receivewal
   * reports a kept `.partial` only in the first case (receivelog.c close_walfile).
   */
  close(reason?: SinkCloseReason): Promise<void>;
  /** Highest LSN known durable (advances when a segment completes: fsync+rename, and on flush()). */
  readonly durableLsn: bigint;
}
