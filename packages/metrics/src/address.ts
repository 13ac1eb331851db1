import { MetricsError } from './errors.js';

export interface ListenAddress {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
}

/**
 * `HOST:PORT`, `[IPV6]:PORT` or `:PORT` (every interface), as Prometheus exporters take their
 * listen address. The port is decimal, 0-65535.
 */
export function parseListenAddress(text: string): ListenAddress {
  const match = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = match === null ? Number.NaN : Number(match[3]);
  if (match === null || port > 65535) {
    throw new MetricsError(
      'WAL_ERR_METRICS_ADDRESS',
      `invalid metrics address "${text}": expected HOST:PORT, [IPV6]:PORT or :PORT with a port from 0 to 65535`,
    );
  }
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? '::' : host, port };
}

/** `host:port`, with brackets around an IPv6 address. */
export function formatListenAddress(address: ListenAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
