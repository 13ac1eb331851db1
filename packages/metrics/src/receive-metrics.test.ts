import { WalError } from '@wal/protocol';
import type { ReceiveEvent } from '@wal/stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MetricsError } from './errors.js';
import { createMetricsRegistry, type Registry, summarizeHealth } from './index.js';
import { ReceiveMetrics } from './receive-metrics.js';

const SEGMENT = 16 * 1024 * 1024;

/** `name{labels} value` lines of the registry's text output, keyed by `name{labels}`. */
async function samples(registry: Registry): Promise<Map<string, number>> {
  const result = new Map<string, number>();
  for (const line of (await registry.metrics()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    result.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return result;
}

const connected: ReceiveEvent = {
  type: 'connected',
  systemId: 7n,
  timeline: 1,
  serverVersion: 180000,
  segmentSize: SEGMENT,
};

describe('ReceiveMetrics', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('turns a stream of events into positions, bytes, segments and lag', async () => {
    const registry = createMetricsRegistry({ processMetrics: false });
    const metrics = new ReceiveMetrics(registry, 'default');
    expect(metrics.health).toBe('starting');
    metrics.observe(connected);
    metrics.observe({ type: 'streaming-started', lsn: 0x3000000n, timeline: 1 });
    expect(metrics.health).toBe('streaming');
    metrics.observe({
      type: 'progress',
      receivedLsn: 0x3100000n,
      durableLsn: 0x3000000n,
      serverWalEnd: 0x3200000n,
    });
    metrics.observe({ type: 'segment-finished', lsn: 0x4000000n, timeline: 1 });
    metrics.observe({
      type: 'progress',
      receivedLsn: 0x4000100n,
      durableLsn: 0x4000000n,
      serverWalEnd: 0x4000180n,
    });

    const values = await samples(registry);
    expect(values.get('wal_receive_received_bytes_total{server="default"}')).toBe(0x1000100);
    expect(values.get('wal_receive_received_lsn{server="default"}')).toBe(0x4000100);
    expect(values.get('wal_receive_flushed_lsn{server="default"}')).toBe(0x4000000);
    expect(values.get('wal_receive_server_lsn{server="default"}')).toBe(0x4000180);
    expect(values.get('wal_receive_lag_bytes{server="default"}')).toBe(0x180);
    expect(values.get('wal_receive_segments_completed_total{server="default"}')).toBe(1);
    expect(values.get('wal_receive_connected{server="default"}')).toBe(1);
    expect(values.get('wal_receive_timeline{server="default"}')).toBe(1);
    expect(values.get('wal_receive_reconnects_total{server="default"}')).toBe(0);
    const last = values.get('wal_receive_last_message_timestamp_seconds{server="default"}')!;
    expect(Math.abs(last - Date.now() / 1000)).toBeLessThan(3600);
  });

  it('counts WAL received again after a reconnect, and errors by code', async () => {
    const registry = createMetricsRegistry({ processMetrics: false });
    const metrics = new ReceiveMetrics(registry, 'main');
    metrics.observe(connected);
    metrics.observe({ type: 'streaming-started', lsn: 0x1000000n, timeline: 1 });
    metrics.observe({
      type: 'progress',
      receivedLsn: 0x1000800n,
      durableLsn: 0x1000000n,
      serverWalEnd: 0x1000800n,
    });
    const error = new WalError('WAL_ERR_STREAM_TERMINATED', 'the server closed the connection', {
      retryable: true,
    });
    metrics.observe({ type: 'disconnected', error, retryInMs: 5000 });
    expect(metrics.health).toBe('waiting');
    let values = await samples(registry);
    expect(values.get('wal_receive_connected{server="main"}')).toBe(0);
    expect(values.get('wal_receive_reconnects_total{server="main"}')).toBe(1);
    expect(values.get('wal_receive_errors_total{server="main",code="WAL_ERR_STREAM_TERMINATED"}')).toBe(1);

    // The next connection starts again at the segment start: those bytes are received again.
    metrics.observe(connected);
    metrics.observe({ type: 'streaming-started', lsn: 0x1000000n, timeline: 1 });
    metrics.observe({
      type: 'progress',
      receivedLsn: 0x1000900n,
      durableLsn: 0x1000000n,
      serverWalEnd: 0x1000900n,
    });
    metrics.failed(new Error('no code'));
    expect(metrics.health).toBe('failed');
    values = await samples(registry);
    expect(values.get('wal_receive_received_bytes_total{server="main"}')).toBe(0x800 + 0x900);
    expect(values.get('wal_receive_errors_total{server="main",code="unknown"}')).toBe(1);
    expect(values.get('wal_receive_connected{server="main"}')).toBe(0);
  });

  it('counts the error of a disconnected event once when the run then fails on it (--no-loop)', async () => {
    const registry = createMetricsRegistry({ processMetrics: false });
    const metrics = new ReceiveMetrics(registry, 'default');
    const error = new WalError('WAL_ERR_STREAM_TERMINATED', 'terminated', { retryable: true });
    metrics.observe({ type: 'disconnected', error, retryInMs: 5000 });
    metrics.failed(error);
    expect(metrics.health).toBe('failed');
    const values = await samples(registry);
    expect(values.get('wal_receive_errors_total{server="default",code="WAL_ERR_STREAM_TERMINATED"}')).toBe(1);
  });

  it('moves the last message timestamp on what the server sent, not on a disconnect or a stop', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const registry = createMetricsRegistry({ processMetrics: false });
    const metrics = new ReceiveMetrics(registry, 'default');
    vi.setSystemTime(1_000_000_000_000);
    metrics.observe(connected);
    metrics.observe({ type: 'progress', receivedLsn: 0x1000000n, durableLsn: 0x1000000n, serverWalEnd: 0n });
    vi.setSystemTime(1_000_000_600_000);
    const error = new WalError('WAL_ERR_STREAM_TERMINATED', 'terminated', { retryable: true });
    metrics.observe({ type: 'disconnected', error, retryInMs: 5000 });
    metrics.observe({ type: 'stopped', reason: 'aborted', lsn: 0x1000000n, timeline: 1 });
    const values = await samples(registry);
    expect(values.get('wal_receive_last_message_timestamp_seconds{server="default"}')).toBe(1_000_000_000);
  });

  it('follows a timeline switch from the segment start of the switch point', async () => {
    const registry = createMetricsRegistry({ processMetrics: false });
    const metrics = new ReceiveMetrics(registry, 'default');
    metrics.observe(connected);
    metrics.observe({ type: 'streaming-started', lsn: 0x1000000n, timeline: 1 });
    metrics.observe({
      type: 'progress',
      receivedLsn: 0x1000300n,
      durableLsn: 0x1000300n,
      serverWalEnd: 0x1000300n,
    });
    metrics.observe({ type: 'timeline-switched', timeline: 2, lsn: 0x1000200n });
    metrics.observe({
      type: 'progress',
      receivedLsn: 0x1000400n,
      durableLsn: 0x1000400n,
      serverWalEnd: 0x1000400n,
    });
    const values = await samples(registry);
    expect(values.get('wal_receive_timeline{server="default"}')).toBe(2);
    expect(values.get('wal_receive_received_bytes_total{server="default"}')).toBe(0x300 + 0x400);
    expect(values.get('wal_receive_lag_bytes{server="default"}')).toBe(0);
  });

  it('never shows the flushed position below where streaming started (an empty directory reports 0)', async () => {
    const registry = createMetricsRegistry({ processMetrics: false });
    const metrics = new ReceiveMetrics(registry, 'default');
    metrics.observe(connected);
    metrics.observe({ type: 'streaming-started', lsn: 0x7000000n, timeline: 1 });
    metrics.observe({ type: 'progress', receivedLsn: 0x7000100n, durableLsn: 0n, serverWalEnd: 0x7000200n });
    const values = await samples(registry);
    expect(values.get('wal_receive_flushed_lsn{server="default"}')).toBe(0x7000000);
    expect(values.get('wal_receive_lag_bytes{server="default"}')).toBe(0x200);
  });

  it('shows no positions before the stream reports them, and the upload status once set', async () => {
    const registry = createMetricsRegistry({ processMetrics: false });
    const metrics = new ReceiveMetrics(registry, 'default');
    let values = await samples(registry);
    expect(values.get('wal_receive_connected{server="default"}')).toBe(0);
    expect(values.has('wal_receive_lag_bytes{server="default"}')).toBe(false);
    expect(values.has('wal_receive_upload_queued_files{server="default"}')).toBe(false);
    metrics.setUpload({ queuedFiles: 3, queuedBytes: 48 * 1024 * 1024, confirmedLsn: 0x5000000n });
    values = await samples(registry);
    expect(values.get('wal_receive_upload_queued_files{server="default"}')).toBe(3);
    expect(values.get('wal_receive_upload_queued_bytes{server="default"}')).toBe(48 * 1024 * 1024);
    expect(values.get('wal_receive_uploaded_lsn{server="default"}')).toBe(0x5000000);
  });

  it('reads a followed upload status at every scrape', async () => {
    const registry = createMetricsRegistry({ processMetrics: false });
    const metrics = new ReceiveMetrics(registry, 'default');
    metrics.setUpload({ queuedFiles: 9, queuedBytes: 9, confirmedLsn: 9n });
    let status = { queuedFiles: 2, queuedBytes: 1024, confirmedLsn: 0x1000000n };
    metrics.followUploads(() => status);
    let values = await samples(registry);
    expect(values.get('wal_receive_upload_queued_files{server="default"}')).toBe(2);
    expect(values.get('wal_receive_uploaded_lsn{server="default"}')).toBe(0x1000000);
    status = { queuedFiles: 0, queuedBytes: 0, confirmedLsn: 0x3000000n };
    values = await samples(registry);
    expect(values.get('wal_receive_upload_queued_files{server="default"}')).toBe(0);
    expect(values.get('wal_receive_upload_queued_bytes{server="default"}')).toBe(0);
    expect(values.get('wal_receive_uploaded_lsn{server="default"}')).toBe(0x3000000);
  });

  it('keeps servers apart, and drops a removed server’s series', async () => {
    const registry = createMetricsRegistry({ processMetrics: false });
    const first = new ReceiveMetrics(registry, 'first');
    const second = new ReceiveMetrics(registry, 'second');
    expect(() => new ReceiveMetrics(registry, 'first')).toThrow(MetricsError);
    first.observe({ type: 'segment-finished', lsn: 0x2000000n, timeline: 1 });
    let values = await samples(registry);
    expect(values.get('wal_receive_segments_completed_total{server="first"}')).toBe(1);
    expect(values.get('wal_receive_segments_completed_total{server="second"}')).toBe(0);
    first.remove();
    values = await samples(registry);
    expect(values.has('wal_receive_segments_completed_total{server="first"}')).toBe(false);
    expect(values.has('wal_receive_segments_completed_total{server="second"}')).toBe(true);
    // The name is free again, for a server restarted with a new configuration.
    new ReceiveMetrics(registry, 'first').remove();
    second.observe({ type: 'stopped', reason: 'aborted', lsn: 0x1000000n, timeline: 1 });
    expect(second.health).toBe('stopped');
  });

  it('summarizes health: healthy unless one failed, ready while all stream', () => {
    const health = (...states: ReceiveMetrics['health'][]) =>
      summarizeHealth(states.map((state) => ({ health: state })));
    expect(health('streaming', 'streaming')).toEqual({ healthy: true, ready: true });
    expect(health('streaming', 'waiting')).toEqual({ healthy: true, ready: false });
    expect(health('starting')).toEqual({ healthy: true, ready: false });
    expect(health('stopped')).toEqual({ healthy: true, ready: false });
    expect(health('streaming', 'failed')).toEqual({ healthy: false, ready: false });
  });
});
