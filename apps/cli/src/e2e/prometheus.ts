/**
 * Helpers for the suites that check a metrics endpoint (`wal receive --metrics-address`, `wal
 * daemon`): the printed URL, scrapes parsed from Prometheus's text format, and a real Prometheus
 * (Debian's, with promtool) scraping the endpoint.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { RunningProcess, waitUntil } from './harness.js';

export const PROMETHEUS = '/usr/bin/prometheus';
export const PROMTOOL = '/usr/bin/promtool';
/** Whether Prometheus and promtool are installed (CI sets WAL_REQUIRE_CLIENT_TOOLS to insist). */
export const havePrometheus = existsSync(PROMETHEUS) && existsSync(PROMTOOL);

/** The metrics URL a `wal` process printed (`serving metrics at …`), in text or JSON logs. */
export async function metricsUrl(process: RunningProcess): Promise<string> {
  // In JSON lines the URL ends before a quote.
  await process.waitForStderr(/serving metrics at http:\/\/[^\s"]+\/metrics/);
  return /serving metrics at (http:\/\/[^\s"]+\/metrics)/.exec(process.stderr)![1]!;
}

/** `name{labels}` → value, from Prometheus's text format. */
export function parseSamples(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

export async function scrapeText(url: string): Promise<string> {
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`${url}: HTTP ${response.status}`);
  return await response.text();
}

/** A server's sample: `name{server="NAME"}`. */
export function serverSample(samples: Map<string, number>, name: string, server: string): number {
  const found = samples.get(`${name}{server="${server}"}`);
  if (found === undefined) throw new Error(`no ${name}{server="${server}"} in the scrape`);
  return found;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** An answer of Prometheus's instant query API (/api/v1/query). */
export interface PrometheusAnswer {
  readonly status: string;
  readonly data: { readonly result: { metric: Record<string, string>; value: [number, string] }[] };
}

export interface Prometheus {
  readonly url: string;
  readonly process: RunningProcess;
}

/**
 * Runs `use` with a Prometheus on loopback (a free port, data in `directory`) that scrapes `target`
 * (HOST:PORT) every second as job `job`, and stops it afterwards.
 */
export async function withPrometheus<T>(
  directory: string,
  target: string,
  job: string,
  use: (prometheus: Prometheus) => Promise<T>,
): Promise<T> {
  const config = join(directory, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      'scrape_configs:',
      `  - job_name: ${job}`,
      '    static_configs:',
      `      - targets: ['${target}']`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const process = new RunningProcess(
    PROMETHEUS,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(directory, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { PATH: '/usr/bin:/bin' },
    'prometheus',
  );
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitUntil(async () => (await fetch(`${url}/-/ready`).catch(() => undefined))?.status === 200, {
      description: `Prometheus ready at ${url}:\n${process.stderr}`,
    });
    return await use({ url, process });
  } finally {
    process.signal('SIGTERM');
    await process.wait(30_000);
  }
}

/** Asks `prometheus` for `query` until `accepted` says yes to the answer; returns that answer. */
export async function queryUntil(
  prometheus: Prometheus,
  query: string,
  accepted: (answer: PrometheusAnswer) => boolean,
  what: string,
): Promise<PrometheusAnswer> {
  const address = `${prometheus.url}/api/v1/query?query=${encodeURIComponent(query)}`;
  let answer: PrometheusAnswer | undefined;
  await waitUntil(
    async () => {
      answer = (await (await fetch(address)).json()) as PrometheusAnswer;
      return accepted(answer);
    },
    { intervalMs: 500, description: `Prometheus ${what}:\n${prometheus.process.stderr}` },
  );
  return answer!;
}
