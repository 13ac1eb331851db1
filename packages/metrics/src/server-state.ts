/**
 * What one archived server's metrics hold between scrapes: plain numbers a stream event
 * overwrites, read by the metric families when Prometheus scrapes (receive-families.ts). Owned by
 * that server's ReceiveMetrics; the families only read it.
 */
export interface ServerState {
  readonly server: string;
  receivedBytes: number;
  /** Where the bytes counted so far end: the next progress counts from here. */
  countedLsn: bigint;
  /**
   * Where the current connection started streaming: WAL before it is not owed (the archive holds
   * it, or it predates the archive), so the flushed position is never shown below it.
   */
  streamStartLsn: bigint;
  /** LSNs and the timeline are undefined until the stream first reports them. */
  receivedLsn: bigint | undefined;
  flushedLsn: bigint | undefined;
  serverLsn: bigint | undefined;
  timeline: number | undefined;
  segmentSize: number;
  segmentsCompleted: number;
  reconnects: number;
  readonly errors: Map<string, number>;
  connected: boolean;
  /** Unix seconds of the last event; undefined before the first. */
  lastMessageSeconds: number | undefined;
  upload: UploadStatus | undefined;
  /** Read at every scrape instead of `upload`, when the sink's own status is followed. */
  uploadSource: (() => UploadStatus) | undefined;
}

/** The upload queue of an object-storage sink and the position the store has confirmed. */
export interface UploadStatus {
  readonly queuedFiles: number;
  readonly queuedBytes: number;
  /** Every WAL byte before it is stored and confirmed. */
  readonly confirmedLsn: bigint;
}

/** The upload status a scrape reports: the followed source's, else the last one set. */
export function currentUpload(state: ServerState): UploadStatus | undefined {
  return state.uploadSource?.() ?? state.upload;
}

export function newServerState(server: string): ServerState {
  return {
    server,
    receivedBytes: 0,
    countedLsn: 0n,
    streamStartLsn: 0n,
    receivedLsn: undefined,
    flushedLsn: undefined,
    serverLsn: undefined,
    timeline: undefined,
    segmentSize: 0,
    segmentsCompleted: 0,
    reconnects: 0,
    errors: new Map(),
    connected: false,
    lastMessageSeconds: undefined,
    upload: undefined,
    uploadSource: undefined,
  };
}
