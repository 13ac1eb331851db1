import { randomBytes } from 'node:crypto';
import { appendFile, chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { type ServerBinaries, serverBinaries } from './binaries.js';
import {
  type CertificateAuthority,
  type CertificateFiles,
  createCertificateAuthority,
  issueCertificate,
  writeCertificateFiles,
} from './certificates.js';
import { forgetLeftover, type Leftover, trackLeftover } from './cleanup.js';
import {
  ADMIN_ROLE,
  type ClusterOptions,
  type ResolvedClusterOptions,
  renderHba,
  renderSettings,
  resolveClusterOptions,
  SUPERUSER,
  setupStatements,
} from './configuration.js';
import { ClusterError } from './errors.js';
import {
  findFreePort,
  logTail,
  PortConflictError,
  runToCompletion,
  ServerProcess,
} from './server-process.js';
import { giveToServerUser, type ServerUser, serverUser } from './server-user.js';
import type { PostgresVersion } from './versions.js';

const PORT_ATTEMPTS = 5;

export interface ClusterCertificates {
  /** The CA that signed the server certificate: give it to clients as `sslrootcert`. */
  readonly caCertPath: string;
  readonly serverCertPath: string;
  readonly serverKeyPath: string;
}

/** A row as node-postgres returns it: int8 and numeric as strings, pg_lsn as 'X/X' text. */
export type Row = Record<string, unknown>;

/**
 * A throwaway PostgreSQL server in its own temporary directory. `stop()` shuts it down and removes
 * the directory; a process exit does the same for clusters a test forgot.
 */
export class Cluster {
  readonly version: PostgresVersion;
  readonly host = '127.0.0.1' as const;
  /** Root of everything this cluster owns (data, socket, certificates, log). */
  readonly baseDir: string;
  readonly dataDir: string;
  readonly pgWalDir: string;
  readonly socketDir: string;
  readonly logPath: string;
  /** The bootstrap superuser (also has REPLICATION). */
  readonly superuser = SUPERUSER;
  /** Password of `superuser`, for pg_hba rules that ask for one. */
  readonly superuserPassword: string;
  /** WAL segment size in bytes. */
  readonly segmentSize: number;
  readonly certificates: ClusterCertificates | undefined;
  readonly binaries: ServerBinaries;
  /** Who the server runs as (`nobody` when this process is root). */
  readonly serverUser: ServerUser;

  #port: number;
  #listenAddresses = '127.0.0.1';
  #customListenAddresses: boolean;
  #server: ServerProcess | undefined;
  #leftover: Leftover;
  #authority: CertificateAuthority | undefined;
  #admin: Promise<pg.Client> | undefined;
  #stopped = false;
  #clientCertificates = 0;

  /** @internal Use startCluster(). */
  constructor(fields: {
    binaries: ServerBinaries;
    baseDir: string;
    superuserPassword: string;
    segmentSize: number;
    leftover: Leftover;
    certificates?: ClusterCertificates;
    authority?: CertificateAuthority;
    /** The caller set listen_addresses in settings: the file's value stands. */
    customListenAddresses?: boolean;
  }) {
    this.#customListenAddresses = fields.customListenAddresses === true;
    this.binaries = fields.binaries;
    this.version = fields.binaries.version;
    this.baseDir = fields.baseDir;
    this.dataDir = join(fields.baseDir, 'data');
    this.pgWalDir = join(this.dataDir, 'pg_wal');
    this.socketDir = join(fields.baseDir, 'socket');
    this.logPath = join(fields.baseDir, 'server.log');
    this.superuserPassword = fields.superuserPassword;
    this.segmentSize = fields.segmentSize;
    this.certificates = fields.certificates;
    this.#authority = fields.authority;
    this.#leftover = fields.leftover;
    this.serverUser = serverUser();
    this.#port = 0;
  }

  /**
   * The TCP port on 127.0.0.1 (and ::1 when the machine has IPv6 loopback), also the Unix socket's
   * number. May change on restart if another process took it meanwhile.
   */
  get port(): number {
    return this.#port;
  }

  get running(): boolean {
    return this.#server !== undefined && !this.#server.hasExited;
  }

  get description(): string {
    return `PostgreSQL ${this.version} in ${this.dataDir}`;
  }

  /** libpq keywords for a TCP connection as the superuser; overrides win. */
  connectionParameters(overrides: Record<string, string> = {}): Record<string, string> {
    return {
      host: this.host,
      port: String(this.#port),
      user: this.superuser,
      dbname: 'postgres',
      ...overrides,
    };
  }

  /** The same as a libpq key=value connection string (values quoted as libpq requires). */
  connectionString(overrides: Record<string, string> = {}): string {
    return Object.entries(this.connectionParameters(overrides))
      .map(([key, value]) => `${key}='${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`)
      .join(' ');
  }

  /** The last lines of the server log, for assertions messages and debugging. */
  async logTail(lines = 40): Promise<string> {
    return await logTail(this.logPath, lines);
  }

  /**
   * Runs SQL as a superuser over the Unix socket (node-postgres: an independent client, so it can
   * serve as a test oracle) and returns the rows of the last statement. Without `values` several
   * statements may be sent at once (simple query); with `values`, one statement with $1, $2...
   */
  async sql<T extends Row = Row>(text: string, values?: unknown[]): Promise<T[]> {
    this.#assertNotStopped();
    const client = await this.#adminClient();
    try {
      const result = (await (values === undefined ? client.query(text) : client.query(text, values))) as
        | pg.QueryResult<T>
        | pg.QueryResult<T>[];
      const last = Array.isArray(result) ? result[result.length - 1] : result;
      return last?.rows ?? [];
    } catch (error) {
      const sqlState =
        typeof (error as { code?: unknown }).code === 'string' ? (error as { code: string }).code : undefined;
      // The SQL text is left out of the message: it may carry a password.
      throw new ClusterError(
        'WAL_ERR_CLUSTER_SQL',
        `SQL on ${this.description} failed: ${(error as Error).message}`,
        sqlState === undefined ? { cause: error } : { cause: error, sqlState },
      );
    }
  }

  /**
   * Runs `text` until its first column is true (e.g. "SELECT pg_last_wal_replay_lsn() >= '0/3000060'"),
   * for states that arrive asynchronously such as replay on a standby. Throws after `timeoutMs`.
   */
  async waitFor(text: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const [row] = await this.sql(text);
      if (row !== undefined && Object.values(row)[0] === true) return;
      if (Date.now() > deadline) {
        throw new ClusterError(
          'WAL_ERR_CLUSTER_SQL',
          `${this.description}: the condition did not become true within ${timeoutMs / 1000} s.`,
        );
      }
      await delay(50);
    }
  }

  async #adminClient(): Promise<pg.Client> {
    if (this.#admin === undefined) {
      const connecting = (async () => {
        const client = new pg.Client({
          host: this.socketDir,
          port: this.#port,
          user: ADMIN_ROLE,
          database: 'postgres',
        });
        // A server shutdown ends the connection with an error event; without a listener that
        // would be an uncaught exception. The next sql() call connects anew.
        client.on('error', () => {
          if (this.#admin === connecting) this.#admin = undefined;
        });
        client.on('end', () => {
          if (this.#admin === connecting) this.#admin = undefined;
        });
        await client.connect();
        return client;
      })();
      this.#admin = connecting;
      connecting.catch(() => {
        if (this.#admin === connecting) this.#admin = undefined;
      });
    }
    try {
      return await this.#admin;
    } catch (error) {
      throw new ClusterError(
        'WAL_ERR_CLUSTER_SQL',
        `Could not connect to ${this.description} over ${this.socketDir}: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  async #closeAdminClient(): Promise<void> {
    const admin = this.#admin;
    this.#admin = undefined;
    if (admin === undefined) return;
    try {
      await (await admin).end();
    } catch {
      // Already closed or never connected.
    }
  }

  /** @internal Starts the postmaster, choosing another free port when the current one is taken. */
  async startServer(keepPort: boolean): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (!keepPort || this.#port === 0) {
        const free = await findFreePort();
        this.#port = free.port;
        this.#listenAddresses = free.ipv6 ? '127.0.0.1,::1' : '127.0.0.1';
      }
      try {
        this.#server = await ServerProcess.start({
          postgres: this.binaries.postgres,
          dataDir: this.dataDir,
          port: this.#port,
          listenAddresses: this.#customListenAddresses ? undefined : this.#listenAddresses,
          logPath: this.logPath,
          home: this.baseDir,
          description: this.description,
        });
        this.#leftover.pid = this.#server.pid;
        return;
      } catch (error) {
        if (!(error instanceof PortConflictError) || attempt >= PORT_ATTEMPTS) throw error;
        keepPort = false;
      }
    }
  }

  /**
   * Shuts the server down but keeps its files, e.g. to test a receiver's reconnect: 'fast'
   * (SIGINT, the walsender sends what it has and ends) or 'immediate' (SIGQUIT, like a crash).
   */
  async shutdown(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    this.#assertNotStopped();
    await this.#closeAdminClient();
    await this.#server?.stop(mode);
    this.#leftover.pid = undefined;
  }

  /** Starts the server again after shutdown() (same port unless another process took it). */
  async start(): Promise<void> {
    this.#assertNotStopped();
    if (this.running) return;
    await this.startServer(true);
  }

  /** Fast shutdown and start again. */
  async restart(): Promise<void> {
    await this.shutdown('fast');
    await this.start();
  }

  #assertNotStopped(): void {
    if (this.#stopped) {
      throw new ClusterError(
        'WAL_ERR_CLUSTER_STOPPED',
        `${this.description} was stopped; start a new cluster.`,
      );
    }
  }

  /** Promotes a standby (pg_promote, waiting until it accepts writes). */
  async promote(): Promise<void> {
    const rows = await this.sql<{ promoted: boolean }>('SELECT pg_promote(true, 60) AS promoted');
    if (rows[0]?.promoted !== true) {
      throw new ClusterError(
        'WAL_ERR_CLUSTER_STANDBY',
        `${this.description} did not finish promotion within 60 s. Server log:\n${await this.logTail()}`,
      );
    }
  }

  /**
   * Issues a client certificate for `commonName` (the user name for `cert` authentication)
   * signed by this cluster's CA, written next to the CA; the key file is 0600 as libpq requires.
   */
  async createClientCertificate(commonName: string): Promise<CertificateFiles> {
    if (this.#authority === undefined || this.certificates === undefined) {
      throw new ClusterError(
        'WAL_ERR_CLUSTER_TLS',
        'Client certificates need a cluster started with tls: true.',
      );
    }
    const issued = await issueCertificate(this.#authority, { commonName, usage: 'client' });
    this.#clientCertificates += 1;
    return await writeCertificateFiles(
      join(this.baseDir, 'tls'),
      `client-${this.#clientCertificates}`,
      issued,
    );
  }

  /** Fast shutdown, then removes the temporary directory. Safe to call twice. */
  async stop(): Promise<void> {
    this.#stopped = true;
    let failure: unknown;
    try {
      await this.#closeAdminClient();
      await this.#server?.stop('fast');
    } catch (error) {
      failure = error;
    }
    this.#leftover.pid = undefined;
    await rm(this.baseDir, { recursive: true, force: true, maxRetries: 5 });
    forgetLeftover(this.#leftover);
    if (failure !== undefined) {
      throw new ClusterError('WAL_ERR_CLUSTER_STOP', `Stopping ${this.description} failed.`, {
        cause: failure,
      });
    }
  }
}

async function prepareCertificates(
  baseDir: string,
): Promise<{ certificates: ClusterCertificates; authority: CertificateAuthority }> {
  const directory = join(baseDir, 'tls');
  await mkdir(directory, { mode: 0o755 });
  await chmod(directory, 0o755);
  const authority = await createCertificateAuthority();
  const caCertPath = join(directory, 'ca.crt');
  await writeFile(caCertPath, authority.certificatePem, { mode: 0o644 });
  const server = await issueCertificate(authority, {
    commonName: 'localhost',
    usage: 'server',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1', '::1'],
  });
  const files = await writeCertificateFiles(directory, 'server', server);
  // The server checks that its key belongs to the user it runs as and is 0600.
  await giveToServerUser(files.keyPath);
  return {
    certificates: { caCertPath, serverCertPath: files.certPath, serverKeyPath: files.keyPath },
    authority,
  };
}

function baseSettings(cluster: Cluster, options: ResolvedClusterOptions): Record<string, string> {
  const settings: Record<string, string> = {
    listen_addresses: cluster.host,
    unix_socket_directories: cluster.socketDir,
    wal_level: 'replica',
    max_wal_senders: '10',
    max_replication_slots: '10',
    max_connections: '40',
    shared_buffers: '16MB',
    // Throwaway data: durability only costs time. A test about sync behaviour can set fsync=on.
    fsync: 'off',
    // Autovacuum writes WAL at moments no test chose; off keeps WAL contents predictable.
    autovacuum: 'off',
    logging_collector: 'off',
    log_destination: 'stderr',
    log_line_prefix: '%m [%p] %q%u@%d ',
    password_encryption: 'scram-sha-256',
  };
  if (cluster.certificates !== undefined) {
    settings.ssl = 'on';
    settings.ssl_cert_file = cluster.certificates.serverCertPath;
    settings.ssl_key_file = cluster.certificates.serverKeyPath;
    // Lets pg_hba `cert` / `clientcert=verify-full` rules verify client certificates.
    settings.ssl_ca_file = cluster.certificates.caCertPath;
  }
  return { ...settings, ...options.settings };
}

/**
 * initdb into a fresh temporary directory, configure, create roles (single-user mode, before any
 * connection is possible), and start on a free port. On any failure everything is removed and
 * the error carries the log tail.
 */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const resolved = resolveClusterOptions(options);
  const binaries = await serverBinaries(resolved.version);
  // Short path: a Unix socket path must fit in 107 bytes.
  const baseDir = await mkdtemp(join(tmpdir(), 'wal-pg-'));
  const leftover = trackLeftover(baseDir);
  let cluster: Cluster | undefined;
  try {
    await giveToServerUser(baseDir);
    const tls = resolved.tls ? await prepareCertificates(baseDir) : undefined;
    cluster = new Cluster({
      binaries,
      baseDir,
      superuserPassword: randomBytes(18).toString('base64url'),
      segmentSize: resolved.segmentSizeMb * 1024 * 1024,
      leftover,
      customListenAddresses: 'listen_addresses' in resolved.settings,
      ...(tls === undefined ? {} : { certificates: tls.certificates, authority: tls.authority }),
    });
    await mkdir(cluster.socketDir, { mode: 0o700 });
    await giveToServerUser(cluster.socketDir);

    await initializeDataDirectory(cluster, resolved);
    await createRoles(cluster, resolved);
    await cluster.startServer(false);
    return cluster;
  } catch (error) {
    if (cluster !== undefined) {
      await cluster.stop().catch(() => undefined);
    } else {
      await rm(baseDir, { recursive: true, force: true, maxRetries: 5 }).catch(() => undefined);
      forgetLeftover(leftover);
    }
    throw error;
  }
}

/** initdb, then our settings appended to `postgresql.conf` and our own `pg_hba.conf`. */
async function initializeDataDirectory(cluster: Cluster, resolved: ResolvedClusterOptions): Promise<void> {
  const initdb = await runToCompletion(
    cluster.binaries.initdb,
    [
      '-D',
      cluster.dataDir,
      '-U',
      SUPERUSER,
      '--auth=trust',
      '--encoding=UTF8',
      '--no-locale',
      '--no-sync',
      '--no-instructions',
      `--wal-segsize=${resolved.segmentSizeMb}`,
    ],
    { home: cluster.baseDir, logPath: cluster.logPath },
  );
  if (initdb.exitCode !== 0) {
    throw new ClusterError(
      'WAL_ERR_CLUSTER_INITDB',
      `initdb for ${cluster.description} failed (exit ${String(initdb.exitCode ?? initdb.signal)}):\n${initdb.output.trim()}`,
    );
  }
  // Appended after initdb's defaults, so these win (the last occurrence of a setting counts).
  await appendFile(
    join(cluster.dataDir, 'postgresql.conf'),
    `\n# Written by @wal/pg-cluster\n${renderSettings(baseSettings(cluster, resolved))}\n`,
  );
  await writeFile(join(cluster.dataDir, 'pg_hba.conf'), renderHba(resolved.hba));
}

/** The roles and passwords, in single-user mode: no connection is possible before they exist. */
async function createRoles(cluster: Cluster, resolved: ResolvedClusterOptions): Promise<void> {
  const statements = setupStatements(resolved.users, cluster.superuserPassword);
  const setup = await runToCompletion(
    cluster.binaries.postgres,
    [
      '--single',
      '-D',
      cluster.dataDir,
      '-F',
      '-c',
      'exit_on_error=on',
      // Failed statements would be logged in full, passwords included.
      '-c',
      'log_min_error_statement=panic',
      'postgres',
    ],
    { home: cluster.baseDir, logPath: cluster.logPath, input: `${statements.join('\n')}\n` },
  );
  if (setup.exitCode !== 0) {
    throw new ClusterError(
      'WAL_ERR_CLUSTER_SETUP',
      `Creating roles in ${cluster.description} (single-user mode) failed (exit ${String(setup.exitCode ?? setup.signal)}):\n` +
        setup.output
          .split('\n')
          .filter((line) => !/PASSWORD/i.test(line))
          .join('\n')
          .trim(),
    );
  }
}
