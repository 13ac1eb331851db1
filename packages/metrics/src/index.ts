export type { Registry } from 'prom-client';
export { formatListenAddress, type ListenAddress, parseListenAddress } from './address.js';
export { MetricsError, type MetricsErrorCode } from './errors.js';
export { type MetricsServer, type MetricsServerOptions, startMetricsServer } from './http-server.js';
export { type ReceiveHealth, ReceiveMetrics } from './receive-metrics.js';
export {
  createMetricsRegistry,
  type HealthSummary,
  type MetricsRegistryOptions,
  summarizeHealth,
} from './registry.js';
export type { UploadStatus } from './server-state.js';
