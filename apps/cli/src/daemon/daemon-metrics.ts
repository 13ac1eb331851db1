import {
  createMetricsRegistry,
  formatListenAddress,
  type ListenAddress,
  type MetricsServer,
  ReceiveMetrics,
  type Registry,
  startMetricsServer,
  summarizeHealth,
} from '@wal/metrics';
import type { ReceiveObserver } from '../receive.js';

/**
 * The daemon's one endpoint (`metrics_address`): /metrics with every server's series, labelled
 * with the server's name, and /healthz, /readyz over all of them (docs/adr/0013-metrics.md). Owns
 * each server's ReceiveMetrics, which outlive the server's runs: a restart or a changed entry
 * keeps counting; a server removed from the file loses its series.
 */
export class DaemonMetrics {
  /** `http://HOST:PORT/metrics`, with the port bound. */
  readonly url: string;
  private readonly servers: Map<string, ReceiveMetrics>;
  private readonly registry: Registry;
  private readonly endpoint: MetricsServer;

  private constructor(
    registry: Registry,
    servers: Map<string, ReceiveMetrics>,
    endpoint: MetricsServer,
    url: string,
  ) {
    this.registry = registry;
    this.servers = servers;
    this.endpoint = endpoint;
    this.url = url;
  }

  /** Listens on `address`; rejects with WAL_ERR_METRICS_LISTEN when it cannot. */
  static async start(address: ListenAddress): Promise<DaemonMetrics> {
    const registry = createMetricsRegistry();
    const servers = new Map<string, ReceiveMetrics>();
    const endpoint = await startMetricsServer({
      host: address.host,
      port: address.port,
      registry,
      health: () => summarizeHealth(servers.values()),
    });
    const url = `http://${formatListenAddress({ host: address.host, port: endpoint.port })}/metrics`;
    return new DaemonMetrics(registry, servers, endpoint, url);
  }

  /** What every run of server `name` reports to. */
  observerFor(name: string): ReceiveObserver {
    let metrics = this.servers.get(name);
    if (metrics === undefined) {
      metrics = new ReceiveMetrics(this.registry, name);
      this.servers.set(name, metrics);
    } else {
      // A changed entry's new runner: an s3:// directory may have become a local one, and the
      // old runs' sink is closed. Runs that upload report their own sink again.
      metrics.stopFollowingUploads();
    }
    const server = metrics;
    return {
      event: (event) => server.observe(event),
      failed: (error) => server.failed(error),
      uploads: (status) => server.followUploads(status),
    };
  }

  remove(name: string): void {
    this.servers.get(name)?.remove();
    this.servers.delete(name);
  }

  close(): Promise<void> {
    return this.endpoint.close();
  }
}
