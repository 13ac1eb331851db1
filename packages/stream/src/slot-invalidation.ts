import { formatLsn } from '@wal/protocol';
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
 * The slot is invalidated: the server keeps no WAL for it and refuses to stream through it, so
 * reconnecting cannot help. Not retryable.
 */
export class SlotInvalidatedError extends StreamError {
  /** `pg_replication_slots.invalidation_reason` as the server reported it, when it did. */
  readonly invalidationReason: string | undefined;
  /** The first position the target does not hold: its WAL may be gone from the server. */
  readonly gapStartLsn: bigint;

  constructor(options: { slot: string; reason: string | undefined; resume: ResumePoint; cause: unknown }) {
    const { slot, reason, resume } = options;
    const why =
      reason === undefined
        ? 'the server did not say why'
        : `reason "${reason}"${REASONS.has(reason) ? `: ${REASONS.get(reason)}` : ''}`;
    const stored = resume.source === 'sink' || resume.source === 'previous-stream';
    const gap = stored
      ? `The archive has no WAL from ${formatLsn(resume.lsn)} on, and the server may no longer have it.`
      : `Nothing was received yet; streaming would have started at ${formatLsn(resume.lsn)}.`;
    super(
      'WAL_ERR_STREAM_SLOT_INVALIDATED',
      `replication slot "${slot}" has been invalidated (${why}); the server no longer keeps WAL for it and refuses to stream through it. ` +
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
