import {
  createMetricsRegistry,
  formatListenAddress,
  type ListenAddress,
  ReceiveMetrics,
  startMetricsServer,
  summarizeHealth,
} from '@wal/metrics';
import type { ReceiveObserver } from './receive.js';

/** `wal receive --metrics-address`: the endpoint, and the observer that feeds its one server. */
export interface ReceiveMetricsEndpoint {
  readonly observer: ReceiveObserver;
  /** `http://HOST:PORT/metrics`, with the port bound (a free one for port 0). */
  readonly url: string;
  close(): Promise<void>;
}

/** Serves the metrics of server `default` (docs/adr/0013-metrics.md); rejects with WAL_ERR_METRICS_LISTEN. */
export async function serveReceiveMetrics(address: ListenAddress): Promise<ReceiveMetricsEndpoint> {
  const registry = createMetricsRegistry();
  const metrics = new ReceiveMetrics(registry, 'default');
  const server = await startMetricsServer({
    host: address.host,
    port: address.port,
    registry,
    health: () => summarizeHealth([metrics]),
  });
  return {
    observer: {
      event: (event) => metrics.observe(event),
      failed: (error) => metrics.failed(error),
      uploads: (status) => metrics.followUploads(status),
    },
    url: `http://${formatListenAddress({ host: address.host, port: server.port })}/metrics`,
    close: () => server.close(),
  };
}
