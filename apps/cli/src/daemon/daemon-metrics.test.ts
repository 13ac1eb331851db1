import { describe, expect, it } from 'vitest';
import { DaemonMetrics } from './daemon-metrics.js';

async function scrape(metrics: DaemonMetrics): Promise<string> {
  const response = await fetch(metrics.url);
  return response.text();
}

describe('DaemonMetrics', () => {
  it('drops the upload series of a server whose changed entry no longer uploads', async () => {
    const metrics = await DaemonMetrics.start({ host: '127.0.0.1', port: 0 });
    try {
      metrics
        .observerFor('main')
        .uploads?.(() => ({ queuedFiles: 2, queuedBytes: 100, confirmedLsn: 0x1000000n }));
      expect(await scrape(metrics)).toContain('wal_receive_upload_queued_files{server="main"} 2');
      // The entry changed from s3:// to a directory: a new runner, whose runs report no uploads.
      metrics.observerFor('main');
      expect(await scrape(metrics)).not.toContain('wal_receive_upload_queued_files{server="main"}');
    } finally {
      await metrics.close();
    }
  });
});
