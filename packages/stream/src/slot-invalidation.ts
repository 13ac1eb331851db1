import { formatLsn } from '@wal/protocol';
import type { ReplicationConnection } from './connection.js';
import { StreamError } from './errors.js';
import type { StartPositionSource } from './start-position.js';

/**
 * Why a server invalidates a slot: the names of `pg_replication_slots.invalidation_reason`
 * (slot.c SlotInvalidationCauses). rows_removed and wal_level_insufficient concern logical slots.
 */
const REASONS: ReadonlyMap<string, string> = new Map([
  [
    'wal_removed',
    'the server removed WAL the slot still needed, because it held more than max_slot_wal_keep_size',
  ],
  ['idle_timeout', 'the slot was unused for longer than idle_replication_slot_timeout'],
  ['rows_removed', 'rows the slot needed were removed'],
  ['wal_level_insufficient', 'wal_level is too low for the slot'],
]);

/** Where the stream would have resumed, and whether the target holds the WAL before it. */
export interface ResumePoint {
  lsn: bigint;
  source: StartPositionSource;
}

/**
 * The slot is invalidated: the server keeps no WAL for it (and from PostgreSQL 18 on refuses to
 * stream through it), so reconnecting cannot help. Not retryable.
 */
export class SlotInvalidatedError extends StreamError {
  /** `pg_replication_slots.invalidation_reason` as the server reported it, when it did. */
  readonly invalidationReason: string | undefined;
  /** The first position the target does not hold: its WAL may be gone from the server. */
  readonly gapStartLsn: bigint;

  constructor(options: {
    slot: string;
    reason: string | undefined;
    resume: ResumePoint;
    cause: unknown;
    /** Why we believe it, when the server did not report a reason. */
    inferred?: string;
  }) {
    const { slot, reason, resume } = options;
    const why =
      reason === undefined
        ? (options.inferred ?? 'the server did not say why')
        : `reason "${reason}"${REASONS.has(reason) ? `: ${REASONS.get(reason)}` : ''}`;
    const stored = resume.source === 'sink' || resume.source === 'previous-stream';
    const gap = stored
      ? `The archive has no WAL from ${formatLsn(resume.lsn)} on, and the server may no longer have it.`
      : `Nothing was received yet; streaming would have started at ${formatLsn(resume.lsn)}.`;
    super(
      'WAL_ERR_STREAM_SLOT_INVALIDATED',
      `replication slot "${slot}" has been invalidated (${why}); the server no longer keeps WAL for it, and streaming through it cannot resume. ` +
        `${gap} Drop and create the slot again, and restart streaming (a new base backup is needed to cover the gap).`,
      { cause: options.cause, slot },
    );
    this.invalidationReason = reason;
    this.gapStartLsn = resume.lsn;
  }
}

/**
 * The invalidated-slot error for a failed START_REPLICATION, or undefined when it is another
 * failure. PostgreSQL 18 refuses an invalidated slot when it is acquired (slot.c
 * ReplicationSlotAcquire): SQLSTATE 55000, "can no longer access replication slot "%s"", DETAIL
 * "This replication slot has been invalidated due to "%s"." The reason is taken from the DETAIL,
 * whose quoted cause name is not translated; the message text is matched in English only, as a
 * second way to recognise it.
 */
export function slotInvalidatedError(
  error: unknown,
  slot: string | undefined,
  resume: ResumePoint,
): SlotInvalidatedError | undefined {
  if (slot === undefined || !(error instanceof Error)) return undefined;
  const fields = error as { sqlState?: unknown; detail?: unknown };
  if (fields.sqlState !== '55000') return undefined;
  const detail = typeof fields.detail === 'string' ? fields.detail : '';
  const reason = /"([a-z_]+)"/.exec(detail)?.[1];
  const known = reason !== undefined && REASONS.has(reason);
  if (!known && !error.message.includes('can no longer access replication slot')) return undefined;
  return new SlotInvalidatedError({ slot, reason, resume, cause: error });
}

/**
 * PostgreSQL 13-17 let START_REPLICATION through an invalidated physical slot and fail later with
 * 58P01 when the WAL is gone (the check at acquisition came in 18, commit f41d8468). A physical
 * slot there is invalidated only by max_slot_wal_keep_size, which also clears its restart_lsn.
 * On 15-17 READ_REPLICATION_SLOT, which needs no more privilege than streaming, shows that on a
 * new connection: a slot without restart_lsn whose WAL was removed is invalidated (or never
 * reserved WAL, which the server cannot tell apart either: slotfuncs.c says "This slot has never
 * previously reserved WAL, or has been invalidated."). Before 18 the walsender also takes the
 * restart_lsn of an invalidated slot from the client's status updates (PhysicalConfirmReceivedLocation
 * does not look at `invalidated`), so a status sent before the 58P01 arrived may have set it again:
 * a restart_lsn inside the segment the stream was refused is one whose WAL the server did not
 * keep, which a valid slot never has. Returns the error to report instead of 58P01, or undefined
 * to keep it.
 */
export async function explainRemovedWal(
  error: unknown,
  context: {
    slot: string | undefined;
    serverVersion: number;
    resume: ResumePoint | undefined;
    /** The server's segment size, once known: bounds the segment the stream was refused. */
    segmentSize?: number | undefined;
    connect: () => Promise<Pick<ReplicationConnection, 'readReplicationSlot' | 'close' | 'destroy'>>;
  },
): Promise<StreamError | undefined> {
  const { slot, serverVersion, resume } = context;
  if ((error as { sqlState?: unknown } | null)?.sqlState !== '58P01') return undefined;
  if (slot === undefined || resume === undefined || serverVersion >= 180000) return undefined;
  if (serverVersion < 150000) return slotLostWal(error as Error, slot);
  let state: { slotType: string | null; restartLsn: bigint | null };
  try {
    const connection = await context.connect();
    try {
      state = await connection.readReplicationSlot(slot);
    } finally {
      await connection.close().catch(() => connection.destroy());
    }
  } catch {
    // The diagnosis is a courtesy: without it, the 58P01 error stands.
    return undefined;
  }
  if (state.slotType !== 'physical' || !keptNoWal(state.restartLsn, resume.lsn, context.segmentSize))
    return undefined;
  return new SlotInvalidatedError({
    slot,
    reason: undefined,
    resume,
    cause: error,
    inferred:
      `the server removed the WAL at ${formatLsn(resume.lsn)} and READ_REPLICATION_SLOT reports no restart_lsn for the slot: ` +
      'on PostgreSQL 13-17 this is what exceeding max_slot_wal_keep_size leaves (invalidation_reason "wal_removed" ' +
      'in pg_replication_slots), unless the slot never reserved WAL',
  });
}

/** No restart_lsn, or one inside the refused segment (resume.lsn is a segment start). */
function keptNoWal(restartLsn: bigint | null, resumeLsn: bigint, segmentSize: number | undefined): boolean {
  if (restartLsn === null) return true;
  return segmentSize !== undefined && restartLsn < resumeLsn + BigInt(segmentSize);
}

/** 58P01 through a slot on a server without READ_REPLICATION_SLOT (before 15): advice, not a verdict. */
function slotLostWal(error: Error, slot: string): StreamError {
  return new StreamError(
    'WAL_ERR_STREAM_WAL_REMOVED',
    `${error.message}. Replication slot "${slot}" did not keep this WAL: it has probably been invalidated by ` +
      "max_slot_wal_keep_size (pg_replication_slots shows wal_status 'lost'). Drop and create the slot again, and " +
      'start again (an empty target, or one holding newer WAL; a new base backup is needed to cover the gap).',
    { cause: error, slot },
  );
}
