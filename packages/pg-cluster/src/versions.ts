import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { ClusterError } from './errors.js';

/** The major versions whose server binaries this package ships (npm aliases pg14..pg18). */
export const SUPPORTED_VERSIONS = [14, 15, 16, 17, 18] as const;
export type PostgresVersion = (typeof SUPPORTED_VERSIONS)[number];

/** Where Debian's `postgresql-15` package puts its programs; `.ci/run` installs it there. */
export const DEBIAN_CLIENT_TOOLS_PATH = '/usr/lib/postgresql/15/bin';

/** The client programs the comparison tests use as oracles. */
export const CLIENT_TOOLS = [
  'psql',
  'pg_receivewal',
  'pg_basebackup',
  'pg_waldump',
  'pgbench',
  'pg_archivecleanup',
] as const;

export function isSupportedVersion(value: unknown): value is PostgresVersion {
  return typeof value === 'number' && (SUPPORTED_VERSIONS as readonly number[]).includes(value);
}

/**
 * The server versions the integration tests run against: `WAL_TEST_PG_VERSIONS` ("14,18"), or all
 * supported ones. A typo must not silently shrink the matrix, so unknown entries throw.
 */
export function testedVersions(env: Record<string, string | undefined> = process.env): PostgresVersion[] {
  const text = env.WAL_TEST_PG_VERSIONS?.trim();
  if (text === undefined || text === '') return [...SUPPORTED_VERSIONS];
  const versions: PostgresVersion[] = [];
  for (const entry of text.split(',')) {
    const trimmed = entry.trim();
    const version = /^\d+$/.test(trimmed) ? Number(trimmed) : Number.NaN;
    if (!isSupportedVersion(version)) {
      throw new ClusterError(
        'WAL_ERR_CLUSTER_VERSION',
        `WAL_TEST_PG_VERSIONS="${text}" names "${trimmed}", which is not a supported PostgreSQL major version; ` +
          `use a comma-separated list of ${SUPPORTED_VERSIONS.join(', ')}.`,
      );
    }
    if (!versions.includes(version)) versions.push(version);
  }
  return versions.sort((left, right) => left - right);
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The directory with PostgreSQL's own client programs (`psql`, `pg_receivewal`, `pg_waldump`, ...):
 * `$WAL_PG_CLIENT_BIN` when set, else Debian's PostgreSQL 15 directory; undefined when `pg_waldump`
 * and `pg_receivewal` are not both there, so callers can skip comparison tests and say so.
 */
export function clientToolsPath(env: Record<string, string | undefined> = process.env): string | undefined {
  const directory = env.WAL_PG_CLIENT_BIN?.trim() || DEBIAN_CLIENT_TOOLS_PATH;
  const complete = ['pg_waldump', 'pg_receivewal'].every((tool) => isExecutable(join(directory, tool)));
  return complete ? directory : undefined;
}

/** Path of one client program, or undefined when it is missing. */
export function clientTool(
  name: (typeof CLIENT_TOOLS)[number],
  env: Record<string, string | undefined> = process.env,
): string | undefined {
  const directory = clientToolsPath(env);
  if (directory === undefined) return undefined;
  const path = join(directory, name);
  return isExecutable(path) ? path : undefined;
}
