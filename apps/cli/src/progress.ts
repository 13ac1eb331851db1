import { formatLsn } from '@wal/protocol';

/**
 * The --progress status line: where we are, how fast WAL arrives, how far behind the server's
 * end of WAL we are. The rate is smoothed over the samples so a single burst does not dominate.
 */
export interface ProgressSample {
  readonly receivedLsn: bigint;
  readonly durableLsn: bigint;
  readonly serverWalEnd: bigint;
}

/** Weight of the newest rate sample in the moving average. */
const SMOOTHING = 0.3;

export class ProgressMeter {
  private lastLsn: bigint | undefined;
  private lastTimeMs = 0;
  private bytesPerSecond: number | undefined;
  private latest: ProgressSample | undefined;

  /** Takes a sample; cheap, so it can run for every progress event of the stream. */
  record(sample: ProgressSample, nowMs: number): void {
    this.latest = sample;
    if (this.lastLsn !== undefined && nowMs > this.lastTimeMs && sample.receivedLsn >= this.lastLsn) {
      const rate = (Number(sample.receivedLsn - this.lastLsn) * 1000) / (nowMs - this.lastTimeMs);
      this.bytesPerSecond =
        this.bytesPerSecond === undefined ? rate : SMOOTHING * rate + (1 - SMOOTHING) * this.bytesPerSecond;
    }
    if (this.lastLsn === undefined || nowMs > this.lastTimeMs) {
      this.lastLsn = sample.receivedLsn;
      this.lastTimeMs = nowMs;
    }
  }

  /** The status line for the latest sample. */
  describe(): string {
    const sample = this.latest;
    if (sample === undefined) return 'waiting for WAL';
    const lag = sample.serverWalEnd > sample.receivedLsn ? sample.serverWalEnd - sample.receivedLsn : 0n;
    const rate = this.bytesPerSecond === undefined ? '-' : `${formatBytes(this.bytesPerSecond)}/s`;
    return (
      `received ${formatLsn(sample.receivedLsn)}, durable ${formatLsn(sample.durableLsn)}, ` +
      `${rate}, lag ${formatBytes(Number(lag))}`
    );
  }
}

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'];

/** Binary multiples with PostgreSQL's unit names (pg_size_pretty style: 1 kB = 1024 B). */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${Math.round(value)} ${UNITS[unit]}` : `${value.toFixed(1)} ${UNITS[unit]}`;
}
