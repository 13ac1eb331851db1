import { collectDefaultMetrics, Registry } from 'prom-client';
import type { ReceiveMetrics } from './receive-metrics.js';

export interface MetricsRegistryOptions {
  /** prom-client's default process and Node.js metrics (CPU, memory, event loop, GC). Default true. */
  readonly processMetrics?: boolean;
}

/** A registry of its own (not prom-client's global one), so two runs in one process never share series. */
export function createMetricsRegistry(options: MetricsRegistryOptions = {}): Registry {
  const registry = new Registry();
  if (options.processMetrics ?? true) {
    collectDefaultMetrics({ register: registry });
    for (const name of LINT_FAILING_DEFAULTS) registry.removeSingleMetric(name);
  }
  return registry;
}

/**
 * prom-client's gauges whose names end in `_total`, which `promtool check metrics` rejects (a
 * suffix reserved for counters); the same counts remain by type in `nodejs_active_handles`,
 * `nodejs_active_requests` and `nodejs_active_resources`.
 */
const LINT_FAILING_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

export interface HealthSummary {
  /** `/healthz`: no server has failed. */
  readonly healthy: boolean;
  /** `/readyz`: every server is streaming now. */
  readonly ready: boolean;
}

/** The health of a process archiving these servers (docs/adr/0013-metrics.md, "Health"). */
export function summarizeHealth(servers: Iterable<Pick<ReceiveMetrics, 'health'>>): HealthSummary {
  let healthy = true;
  let ready = true;
  for (const { health } of servers) {
    if (health === 'failed') healthy = false;
    if (health !== 'streaming') ready = false;
  }
  return { healthy, ready };
}
