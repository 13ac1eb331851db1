import { ClusterError } from './errors.js';
import { isSupportedVersion, type PostgresVersion, SUPPORTED_VERSIONS } from './versions.js';

export type PasswordEncryption = 'md5' | 'scram-sha-256';

export interface ClusterUser {
  name: string;
  password?: string;
  /** REPLICATION attribute: may open walsender connections. */
  replication?: boolean;
  /** SUPERUSER attribute. */
  superuser?: boolean;
  /** How the password is stored (default scram-sha-256). md5 lets tests cover md5 authentication. */
  passwordEncryption?: PasswordEncryption;
}

export interface ClusterOptions {
  /** Server major version (default 18). */
  version?: number;
  /** WAL segment size in MiB: a power of two from 1 to 1024 (default 16). */
  segmentSizeMb?: number;
  /** Serve TLS with a fresh CA and server certificate (SAN localhost, 127.0.0.1, ::1). */
  tls?: boolean;
  /** pg_hba.conf lines; default trusts local and loopback connections, replication included. */
  hba?: string[];
  /** postgresql.conf settings, written after (so overriding) the ones this package chooses. */
  settings?: Record<string, string>;
  /** Roles created before the server accepts connections. */
  users?: ClusterUser[];
}

export interface ResolvedClusterOptions {
  version: PostgresVersion;
  segmentSizeMb: number;
  tls: boolean;
  hba: string[];
  settings: Record<string, string>;
  users: ClusterUser[];
}

export const DEFAULT_VERSION: PostgresVersion = 18;
export const SUPERUSER = 'postgres';
/**
 * The role this package itself connects as, over the Unix socket, to run `cluster.sql()`. It has its
 * own pg_hba line so a test's authentication rules for `postgres` and its users stay exactly
 * what the test wrote.
 */
export const ADMIN_ROLE = 'wal_cluster_admin';

export const DEFAULT_HBA: readonly string[] = [
  'local all all trust',
  'local replication all trust',
  'host all all 127.0.0.1/32 trust',
  'host all all ::1/128 trust',
  'host replication all 127.0.0.1/32 trust',
  'host replication all ::1/128 trust',
];

const ROLE_NAME = /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/;
const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;

function invalid(message: string): ClusterError {
  return new ClusterError('WAL_ERR_CLUSTER_OPTIONS', message);
}

function hasLineBreakOrNul(text: string): boolean {
  return /[\r\n\0]/.test(text);
}

/** Checks every option before anything touches the disk, so a bad call fails fast and clearly. */
export function resolveClusterOptions(options: ClusterOptions = {}): ResolvedClusterOptions {
  const version = options.version ?? DEFAULT_VERSION;
  if (!isSupportedVersion(version)) {
    throw new ClusterError(
      'WAL_ERR_CLUSTER_VERSION',
      `version ${String(version)} is not supported; choose one of ${SUPPORTED_VERSIONS.join(', ')}.`,
    );
  }
  const segmentSizeMb = options.segmentSizeMb ?? 16;
  if (
    !Number.isInteger(segmentSizeMb) ||
    segmentSizeMb < 1 ||
    segmentSizeMb > 1024 ||
    (segmentSizeMb & (segmentSizeMb - 1)) !== 0
  ) {
    throw invalid(`segmentSizeMb ${String(segmentSizeMb)} is invalid; use a power of two from 1 to 1024.`);
  }
  const hba = options.hba ?? [...DEFAULT_HBA];
  checkHba(hba);
  const settings = options.settings ?? {};
  checkSettings(settings);
  const users = options.users ?? [];
  checkUsers(users);
  return {
    version,
    segmentSizeMb,
    tls: options.tls === true,
    hba: [...hba],
    settings: { ...settings },
    users,
  };
}

function checkHba(hba: readonly string[]): void {
  if (!Array.isArray(hba) || hba.length === 0) {
    throw invalid('hba must be a non-empty list of pg_hba.conf lines (omit it for the default).');
  }
  for (const line of hba) {
    if (typeof line !== 'string' || line.trim() === '' || hasLineBreakOrNul(line)) {
      throw invalid(`hba line ${JSON.stringify(line)} must be one non-empty pg_hba.conf line.`);
    }
  }
}

function checkSettings(settings: Record<string, string>): void {
  for (const [name, value] of Object.entries(settings)) {
    if (!SETTING_NAME.test(name))
      throw invalid(`setting name "${name}" is not a valid configuration parameter.`);
    if (typeof value !== 'string' || hasLineBreakOrNul(value)) {
      throw invalid(`setting ${name} must be a one-line string, got ${JSON.stringify(value)}.`);
    }
  }
}

/** Role names PostgreSQL accepts unquoted, unique, and passwords that fit one SQL line. */
function checkUsers(users: readonly ClusterUser[]): void {
  const seen = new Set<string>([ADMIN_ROLE, SUPERUSER]);
  for (const user of users) {
    if (typeof user?.name !== 'string' || !ROLE_NAME.test(user.name)) {
      throw invalid(
        `user name ${JSON.stringify(user?.name)} is invalid; use 1-63 letters, digits, "_", "$" or "-", not starting with a digit.`,
      );
    }
    if (user.name.startsWith('pg_')) throw invalid(`user name "${user.name}": the prefix pg_ is reserved.`);
    if (seen.has(user.name))
      throw invalid(`user "${user.name}" is listed twice or clashes with a built-in role.`);
    seen.add(user.name);
    if (
      user.password !== undefined &&
      (typeof user.password !== 'string' || hasLineBreakOrNul(user.password))
    ) {
      throw invalid(`user "${user.name}" has an invalid password (a one-line string without NUL is needed).`);
    }
    if (
      user.passwordEncryption !== undefined &&
      !['md5', 'scram-sha-256'].includes(user.passwordEncryption)
    ) {
      throw invalid(`user "${user.name}": passwordEncryption must be "md5" or "scram-sha-256".`);
    }
    if (user.passwordEncryption !== undefined && user.password === undefined) {
      throw invalid(`user "${user.name}": passwordEncryption needs a password.`);
    }
  }
}

/** A postgresql.conf value: always quoted, which every parameter type accepts. */
export function quoteSettingValue(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}

export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

export function renderSettings(settings: Record<string, string>): string {
  return Object.entries(settings)
    .map(([name, value]) => `${name} = ${quoteSettingValue(value)}`)
    .join('\n');
}

export function renderHba(lines: readonly string[]): string {
  return [
    '# Written by @wal/pg-cluster. The first lines let the helper itself in over the Unix socket.',
    `local all ${ADMIN_ROLE} trust`,
    // A standby of this cluster streams as the helper role over the primary's socket.
    `local replication ${ADMIN_ROLE} trust`,
    ...lines,
    '',
  ].join('\n');
}

/**
 * Statements for single-user mode (`postgres --single`): one per line, because there a newline
 * ends a statement. Passwords are hashed by the server under the chosen password_encryption.
 */
export function setupStatements(users: readonly ClusterUser[], superuserPassword: string): string[] {
  const statements = [
    `CREATE ROLE ${quoteIdentifier(ADMIN_ROLE)} SUPERUSER LOGIN REPLICATION`,
    "SET password_encryption = 'scram-sha-256'",
    `ALTER ROLE ${quoteIdentifier(SUPERUSER)} PASSWORD ${quoteLiteral(superuserPassword)}`,
  ];
  for (const user of users) {
    const attributes = ['LOGIN'];
    if (user.replication === true) attributes.push('REPLICATION');
    if (user.superuser === true) attributes.push('SUPERUSER');
    if (user.password !== undefined) {
      statements.push(
        `SET password_encryption = ${quoteLiteral(user.passwordEncryption ?? 'scram-sha-256')}`,
      );
      attributes.push(`PASSWORD ${quoteLiteral(user.password)}`);
    }
    statements.push(`CREATE ROLE ${quoteIdentifier(user.name)} ${attributes.join(' ')}`);
  }
  for (const statement of statements) {
    if (hasLineBreakOrNul(statement)) {
      throw invalid('Passwords must not contain line breaks (setup SQL runs one statement per line).');
    }
  }
  return statements;
}
