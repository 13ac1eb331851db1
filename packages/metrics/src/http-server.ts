import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { formatListenAddress } from './address.js';
import { MetricsError } from './errors.js';
import type { HealthSummary } from './registry.js';

export interface MetricsServerOptions {
  readonly host: string;
  /** 0 picks a free port; `port` of the result says which. */
  readonly port: number;
  readonly registry: Registry;
  /** Asked on every `/healthz` and `/readyz` request. */
  readonly health: () => HealthSummary;
}

export interface MetricsServer {
  readonly port: number;
  /** Stops listening and ends open connections (a scrape in progress is cut). */
  close(): Promise<void>;
}

/**
 * Serves `/metrics` (Prometheus text format), `/healthz` and `/readyz` (200 or 503, with a one-word
 * body) over plain HTTP; anything else is 404. Resolves once listening; an address that cannot be
 * bound (in use, not local, no permission) rejects with WAL_ERR_METRICS_LISTEN.
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const server = createServer((request, response) => {
    answer(options, request, response).catch((error: unknown) => {
      if (!response.headersSent) respond(response, 500, `could not collect metrics: ${String(error)}\n`);
      else response.destroy();
    });
  });
  await listen(server, options);
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function listen(server: Server, options: MetricsServerOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException): void => {
      const address = formatListenAddress(options);
      reject(
        new MetricsError(
          'WAL_ERR_METRICS_LISTEN',
          `could not listen on ${address} for metrics: ${listenFailure(error)}`,
          { cause: error },
        ),
      );
    };
    server.once('error', failed);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off('error', failed);
      resolve();
    });
  });
}

function listenFailure(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'EADDRINUSE':
      return 'the address is already in use; choose another port or stop the process using it';
    case 'EADDRNOTAVAIL':
      return 'the address is not one of this machine; use a local address or 0.0.0.0';
    case 'EACCES':
      return 'permission denied; ports below 1024 need privileges, choose a higher port';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the host name could not be resolved';
    default:
      return error.message;
  }
}

async function answer(options: MetricsServerOptions, request: IncomingMessage, response: ServerResponse) {
  const path = (request.url ?? '/').split('?', 1)[0];
  const known = path === '/metrics' || path === '/healthz' || path === '/readyz';
  if (!known) return respond(response, 404, 'not found: try /metrics, /healthz or /readyz\n');
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    return respond(response, 405, 'method not allowed\n');
  }
  if (path === '/metrics') {
    const body = await options.registry.metrics();
    return respond(response, 200, body, options.registry.contentType, request.method === 'HEAD');
  }
  const health = options.health();
  const ok = path === '/healthz' ? health.healthy : health.ready;
  const word = path === '/healthz' ? (ok ? 'healthy' : 'unhealthy') : ok ? 'ready' : 'not ready';
  return respond(response, ok ? 200 : 503, `${word}\n`, undefined, request.method === 'HEAD');
}

function respond(
  response: ServerResponse,
  status: number,
  body: string,
  contentType = 'text/plain; charset=utf-8',
  headOnly = false,
): void {
  response.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  response.end(headOnly ? undefined : body);
}
