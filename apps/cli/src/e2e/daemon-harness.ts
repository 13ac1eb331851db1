/**
 * Helpers for the `wal daemon` suite: a configuration file written from plain objects, the built
 * daemon started as a process, walsenders looked up by application name, and a listener standing
 * in for systemd's notify socket. (Its metrics endpoint is read with ./prometheus.ts.)
 */
import { existsSync, writeFileSync } from 'node:fs';
import type { Cluster } from '@wal/pg-cluster';
import { CLI_BIN, clusterEnvironment, RunningProcess, scalar, waitUntil } from './harness.js';

export type ServerEntry = Readonly<Record<string, string | number | boolean>>;

/** A server entry for `cluster`, its walsender named `application` in pg_stat_replication. */
export function serverEntry(
  cluster: Cluster,
  name: string,
  directory: string,
  extra: ServerEntry = {},
): ServerEntry {
  return {
    name,
    conninfo: cluster.connectionString({ dbname: 'replication', application_name: applicationName(name) }),
    directory,
    ...extra,
  };
}

export function applicationName(server: string): string {
  return `daemon_${server}`;
}

/** YAML of `servers` (and top-level `extra` lines), one key per line, in the given order. */
export function daemonYaml(servers: readonly ServerEntry[], extra: readonly string[] = []): string {
  const lines = [...extra, 'servers:'];
  for (const server of servers) {
    Object.entries(server).forEach(([key, value], index) => {
      lines.push(`${index === 0 ? '  - ' : '    '}${key}: ${JSON.stringify(value)}`);
    });
  }
  return `${lines.join('\n')}\n`;
}

export function writeDaemonConfig(
  path: string,
  servers: readonly ServerEntry[],
  extra: readonly string[] = [],
): void {
  writeFileSync(path, daemonYaml(servers, extra));
}

/** `node bin/run.js daemon -c FILE`, with PG* variables of the test run removed. */
export function startDaemon(
  cluster: Cluster,
  configFile: string,
  env: Record<string, string> = {},
): RunningProcess {
  return new RunningProcess(
    process.execPath,
    [CLI_BIN, 'daemon', '-c', configFile],
    clusterEnvironment(cluster, env),
    `wal daemon -c ${configFile}`,
  );
}

/** The pid of the server's walsender while it streams, or undefined. */
export async function walsenderPid(cluster: Cluster, server: string): Promise<number | undefined> {
  const pid = await scalar(
    cluster,
    `SELECT pid FROM pg_stat_replication WHERE application_name = '${applicationName(server)}' AND state = 'streaming'`,
  );
  return pid === null ? undefined : Number(pid);
}

export async function waitForWalsender(
  cluster: Cluster,
  server: string,
  timeoutMs = 30_000,
): Promise<number> {
  let pid: number | undefined;
  await waitUntil(
    async () => {
      pid = await walsenderPid(cluster, server);
      return pid !== undefined;
    },
    { timeoutMs, description: `the walsender of daemon server "${server}"` },
  );
  return pid!;
}

export async function waitForNoWalsender(cluster: Cluster, server: string): Promise<void> {
  await waitUntil(
    async () =>
      (await scalar(
        cluster,
        `SELECT count(*) FROM pg_stat_replication WHERE application_name = '${applicationName(server)}'`,
      )) === '0',
    { description: `no walsender for daemon server "${server}"` },
  );
}

/** A python3 on PATH, for the notify listener (Node.js has no unix datagram sockets). */
export function python(): string | undefined {
  return ['/usr/bin/python3', '/usr/local/bin/python3'].find((path) => existsSync(path));
}

/**
 * A unix datagram socket at `path`, standing in for systemd's: every datagram it receives, its
 * lines joined by `|`, one per line of `messages`.
 */
export class NotifyListener {
  readonly path: string;
  private readonly process: RunningProcess;

  constructor(pythonPath: string, path: string) {
    this.path = path;
    const script = [
      'import socket, sys',
      'server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      'server.bind(sys.argv[1])',
      'print("listening", flush=True)',
      'while True:',
      '    print(server.recv(65536).decode().replace("\\n", "|"), flush=True)',
    ].join('\n');
    this.process = new RunningProcess(pythonPath, ['-c', script, path], process.env, 'notify listener');
  }

  async ready(): Promise<void> {
    await waitUntil(() => this.process.stdout.includes('listening'), { description: 'the notify listener' });
  }

  /** The datagrams received, without systemd-notify's BARRIER=1 ones. */
  get messages(): string[] {
    return this.process.stdout
      .split('\n')
      .filter((line) => line !== '' && line !== 'listening' && line !== 'BARRIER=1');
  }

  async waitFor(pattern: RegExp): Promise<void> {
    await waitUntil(() => this.messages.some((message) => pattern.test(message)), {
      description: `a notify message matching ${pattern} (have: ${this.messages.join(' ; ')})`,
    });
  }

  stop(): void {
    this.process.signal('SIGKILL');
  }
}
