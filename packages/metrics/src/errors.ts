import { WalError } from '@wal/protocol';

/** Stable codes of `@wal/metrics`; `docs/errors.md` lists them. */
export type MetricsErrorCode =
  | 'WAL_ERR_METRICS_ADDRESS'
  | 'WAL_ERR_METRICS_LISTEN'
  | 'WAL_ERR_METRICS_DUPLICATE_SERVER';

/** A metrics address that cannot be used, or a server name registered twice. Never retryable. */
export class MetricsError extends WalError {
  declare readonly code: MetricsErrorCode;

  constructor(code: MetricsErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
  }
}
