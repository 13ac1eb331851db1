import { existsSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { CONNECTION_KEYWORDS, isConnectionKeyword } from './conninfo.js';
import { ConnectionStringError } from './errors.js';
import { TARGET_SESSION_ATTRS, type TargetSessionAttrs } from './target-session.js';

export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
export type ChannelBindingMode = 'disable' | 'prefer' | 'require';
export type ProtocolVersionSetting = { major: 3; minor: 0 | 2 };

/** One place to try, in order (libpq's `connhost[]`). */
export interface HostTarget {
  /** The `host` entry as given ('' when only hostaddr or nothing was given). */
  host: string;
  /** Numeric address to connect to without a DNS lookup, or '' . */
  hostaddr: string;
  port: number;
  /** Path of the Unix-domain socket, when this target is one. */
  socketPath: string | undefined;
  /** The host as shown in messages and used for `.pgpass`. */
  displayHost: string;
}

export interface ConnectionSettings {
  targets: HostTarget[];
  user: string;
  dbname: string;
  password: string | undefined;
  passfile: string;
  sslmode: SslMode;
  sslnegotiation: 'postgres' | 'direct';
  sslrootcert: string;
  sslcert: string;
  sslkey: string;
  sslpassword: string | undefined;
  /** `disable` never sends a client certificate; `allow`/`require` send one when configured. */
  sslcertmode: 'disable' | 'allow' | 'require';
  sslcrl: string;
  sslsni: boolean;
  sslMinProtocolVersion: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  sslMaxProtocolVersion: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3' | undefined;
  channelBinding: ChannelBindingMode;
  /** Milliseconds per host/address, or undefined for none. */
  connectTimeoutMs: number | undefined;
  minProtocolVersion: ProtocolVersionSetting;
  maxProtocolVersion: ProtocolVersionSetting;
  /** Methods allowed by `require_auth`, or undefined when unrestricted. */
  requireAuth: { allowed: Set<string>; negated: boolean } | undefined;
  loadBalanceHosts: boolean;
  /** Which server a session must reach (libpq target_session_attrs), checked on every connect. */
  targetSessionAttrs: TargetSessionAttrs;
  keepalives: { enabled: boolean; idleMs: number };
  /** Parameters sent in the StartupMessage. */
  startupParameters: Record<string, string>;
}

/**
 * The Unix socket directory used when no host is given. libpq's compiled default is `/tmp`
 * upstream and `/var/run/postgresql` on Debian and derived distributions; we cannot know how the
 * server was built, so we take the Debian directory when it exists, else `/tmp`.
 */
export function defaultSocketDirectory(exists: (path: string) => boolean = existsSync): string {
  return exists('/var/run/postgresql') ? '/var/run/postgresql' : '/tmp';
}

const DEFAULT_PORT = 5432;

/** Fills unset keywords from the environment (`conninfo_add_defaults`). */
function applyEnvironment(
  parameters: Record<string, string>,
  env: Record<string, string | undefined>,
): Record<string, string> {
  const merged: Record<string, string> = {};
  for (const [keyword, value] of Object.entries(parameters)) {
    if (value === undefined) continue;
    if (!isConnectionKeyword(keyword)) {
      throw new ConnectionStringError(`invalid connection option "${keyword}"`);
    }
    merged[keyword] = value;
  }
  for (const [keyword, variable] of Object.entries(CONNECTION_KEYWORDS)) {
    if (variable === undefined || merged[keyword] !== undefined) continue;
    const value = env[variable];
    if (value !== undefined) merged[keyword] = value;
  }
  // Deprecated PGREQUIRESSL only applies when sslmode came from nowhere else.
  if (merged.sslmode === undefined && env.PGREQUIRESSL !== undefined) {
    merged.sslmode = env.PGREQUIRESSL.startsWith('1') ? 'require' : 'prefer';
  }
  return merged;
}

function oneOf<T extends string>(value: string, allowed: readonly T[], keyword: string): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new ConnectionStringError(`invalid ${keyword} value: "${value}"`);
}

/** libpq's `ParseIntParam`: surrounding white space allowed, nothing else. */
function parseIntegerParameter(value: string, keyword: string): number {
  const trimmed = value.trim();
  if (!/^[-+]?\d+$/.test(trimmed) || !Number.isSafeInteger(Number(trimmed))) {
    throw new ConnectionStringError(`invalid integer value "${value}" for connection option "${keyword}"`);
  }
  const number = Number(trimmed);
  if (number < -2147483648 || number > 2147483647) {
    throw new ConnectionStringError(`invalid integer value "${value}" for connection option "${keyword}"`);
  }
  return number;
}

function parseProtocolVersion(value: string, keyword: string): ProtocolVersionSetting {
  if (value === '3.0') return { major: 3, minor: 0 };
  if (value === '3.2' || value === 'latest') return { major: 3, minor: 2 };
  throw new ConnectionStringError(`invalid ${keyword} value: "${value}"`);
}

function splitList(value: string | undefined): string[] {
  if (value === undefined || value === '') return [];
  return value.split(',');
}

export interface ResolveOptions {
  env: Record<string, string | undefined>;
  /** Injected for tests. */
  socketDirectoryExists?: (path: string) => boolean;
  fileExists?: (path: string) => boolean;
}

/**
 * Turns keywords (explicit values win, then `PG*` variables, then defaults) into validated
 * settings, with libpq's error messages for bad values.
 */
export function resolveSettings(
  parameters: Record<string, string>,
  options: ResolveOptions,
): ConnectionSettings {
  const values = applyEnvironment(parameters, options.env);
  const env = options.env;
  const home = env.HOME !== undefined && env.HOME !== '' ? env.HOME : safeHomedir();
  const user = nonEmpty(values.user) ?? safeUserName();
  const dbname = nonEmpty(values.dbname) ?? user;
  const tls = resolveTlsSettings(values, home, options.fileExists ?? existsSync);
  const protocolVersions = resolveProtocolVersions(values);
  refuseUnsupportedSettings(values);
  const loadBalanceHosts =
    oneOf(values.load_balance_hosts ?? 'disable', ['disable', 'random'] as const, 'load_balance_hosts') ===
    'random';
  const timeouts = resolveTimeouts(values);
  const targets = resolveTargets(values, options.socketDirectoryExists);
  return {
    targets,
    user,
    dbname,
    password: values.password === '' ? undefined : values.password,
    passfile: nonEmpty(values.passfile) ?? join(home, '.pgpass'),
    ...tls,
    ...protocolVersions,
    ...timeouts,
    requireAuth: parseRequireAuth(values.require_auth),
    loadBalanceHosts,
    targetSessionAttrs: oneOf(
      values.target_session_attrs ?? 'any',
      TARGET_SESSION_ATTRS,
      'target_session_attrs',
    ),
    startupParameters: startupParametersFor(values, user, dbname),
  };
}

type TlsSettings = Pick<
  ConnectionSettings,
  | 'sslmode'
  | 'sslnegotiation'
  | 'sslrootcert'
  | 'sslcert'
  | 'sslkey'
  | 'sslpassword'
  | 'sslcertmode'
  | 'sslcrl'
  | 'sslsni'
  | 'sslMinProtocolVersion'
  | 'sslMaxProtocolVersion'
  | 'channelBinding'
>;

/** The ssl* keywords and channel_binding, refusing combinations libpq refuses as weak. */
function resolveTlsSettings(
  values: Record<string, string>,
  home: string,
  fileExists: (path: string) => boolean,
): TlsSettings {
  const sslmode = oneOf(
    values.sslmode ?? 'prefer',
    ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const,
    'sslmode',
  );
  const sslnegotiation = oneOf(
    values.sslnegotiation ?? 'postgres',
    ['postgres', 'direct'] as const,
    'sslnegotiation',
  );
  if (sslnegotiation === 'direct' && (sslmode === 'disable' || sslmode === 'allow' || sslmode === 'prefer')) {
    throw new ConnectionStringError(
      `weak sslmode "${sslmode}" may not be used with sslnegotiation=direct (use "require", "verify-ca", or "verify-full")`,
    );
  }
  const sslrootcert = nonEmpty(values.sslrootcert) ?? join(home, '.postgresql', 'root.crt');
  if (sslrootcert === 'system' && sslmode !== 'verify-full') {
    throw new ConnectionStringError(
      `weak sslmode "${sslmode}" may not be used with sslrootcert=system (use "verify-full")`,
    );
  }
  const channelBinding = oneOf(
    values.channel_binding ?? 'prefer',
    ['disable', 'prefer', 'require'] as const,
    'channel_binding',
  );
  const defaultCrl = join(home, '.postgresql', 'root.crl');
  return {
    sslmode,
    sslnegotiation,
    sslrootcert,
    sslcert: nonEmpty(values.sslcert) ?? join(home, '.postgresql', 'postgresql.crt'),
    sslkey: nonEmpty(values.sslkey) ?? join(home, '.postgresql', 'postgresql.key'),
    sslpassword: values.sslpassword,
    sslcertmode: oneOf(
      values.sslcertmode ?? 'allow',
      ['disable', 'allow', 'require'] as const,
      'sslcertmode',
    ),
    sslcrl: nonEmpty(values.sslcrl) ?? (fileExists(defaultCrl) ? defaultCrl : ''),
    sslsni: values.sslsni === undefined || values.sslsni !== '0',
    ...resolveTlsVersionRange(values),
    channelBinding,
  };
}

const TLS_VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;

function resolveTlsVersionRange(
  values: Record<string, string>,
): Pick<ConnectionSettings, 'sslMinProtocolVersion' | 'sslMaxProtocolVersion'> {
  const sslMinProtocolVersion = oneOf(
    nonEmpty(values.ssl_min_protocol_version) ?? 'TLSv1.2',
    TLS_VERSIONS,
    'ssl_min_protocol_version',
  );
  const maxText = nonEmpty(values.ssl_max_protocol_version);
  const sslMaxProtocolVersion =
    maxText === undefined ? undefined : oneOf(maxText, TLS_VERSIONS, 'ssl_max_protocol_version');
  if (
    sslMaxProtocolVersion !== undefined &&
    TLS_VERSIONS.indexOf(sslMaxProtocolVersion) < TLS_VERSIONS.indexOf(sslMinProtocolVersion)
  ) {
    throw new ConnectionStringError('invalid SSL protocol version range');
  }
  return { sslMinProtocolVersion, sslMaxProtocolVersion };
}

function resolveProtocolVersions(
  values: Record<string, string>,
): Pick<ConnectionSettings, 'minProtocolVersion' | 'maxProtocolVersion'> {
  const minProtocolVersion = parseProtocolVersion(
    nonEmpty(values.min_protocol_version) ?? '3.0',
    'min_protocol_version',
  );
  const maxProtocolVersion = parseProtocolVersion(
    nonEmpty(values.max_protocol_version) ?? '3.0',
    'max_protocol_version',
  );
  if (minProtocolVersion.minor > maxProtocolVersion.minor) {
    throw new ConnectionStringError('min_protocol_version is greater than max_protocol_version');
  }
  return { minProtocolVersion, maxProtocolVersion };
}

/**
 * Refuses rather than ignores settings whose absence would change who we talk to, and validates
 * the ones accepted only for compatibility.
 */
function refuseUnsupportedSettings(values: Record<string, string>): void {
  if (nonEmpty(values.service) !== undefined) {
    throw new ConnectionStringError(
      `service "${values.service}" cannot be used: connection service files are not supported by this client; ` +
        'put the settings in the connection string or PG* variables (unset PGSERVICE)',
    );
  }
  if (nonEmpty(values.requirepeer) !== undefined) {
    throw new ConnectionStringError(
      'requirepeer is not supported by this client; remove it or use TCP with sslmode=verify-full',
    );
  }
  if (values.sslcertmode === 'require') {
    throw new ConnectionStringError(
      'sslcertmode=require is not supported by this client (it cannot tell whether the server asked for a certificate); use "allow"',
    );
  }
  if (values.gssencmode === 'require') {
    throw new ConnectionStringError(
      'gssencmode value "require" invalid when GSSAPI support is not compiled in',
    );
  }
  if (values.gssencmode !== undefined)
    oneOf(values.gssencmode, ['disable', 'prefer', 'require'] as const, 'gssencmode');
}

function resolveTimeouts(
  values: Record<string, string>,
): Pick<ConnectionSettings, 'connectTimeoutMs' | 'keepalives'> {
  let connectTimeoutMs: number | undefined;
  if (nonEmpty(values.connect_timeout) !== undefined) {
    const seconds = parseIntegerParameter(values.connect_timeout!, 'connect_timeout');
    // libpq: zero or negative means wait forever; 1 second is raised to 2 (too easily hit).
    if (seconds > 0) connectTimeoutMs = Math.max(seconds, 2) * 1000;
  }
  const enabled =
    values.keepalives === undefined || parseIntegerParameter(values.keepalives, 'keepalives') !== 0;
  const idleSeconds = values.keepalives_idle
    ? parseIntegerParameter(values.keepalives_idle, 'keepalives_idle')
    : 0;
  return { connectTimeoutMs, keepalives: { enabled, idleMs: Math.max(idleSeconds, 0) * 1000 } };
}

function startupParametersFor(
  values: Record<string, string>,
  user: string,
  dbname: string,
): Record<string, string> {
  const startupParameters: Record<string, string> = { user, database: dbname };
  if (values.replication !== undefined && values.replication !== '') {
    startupParameters.replication = values.replication;
  }
  const applicationName = nonEmpty(values.application_name) ?? nonEmpty(values.fallback_application_name);
  if (applicationName !== undefined) startupParameters.application_name = applicationName;
  if (nonEmpty(values.options) !== undefined) startupParameters.options = values.options!;
  const clientEncoding = nonEmpty(values.client_encoding);
  // 'auto' asks libpq to derive the encoding from the locale; Node strings are UTF-8.
  if (clientEncoding !== undefined) {
    startupParameters.client_encoding = clientEncoding === 'auto' ? 'UTF8' : clientEncoding;
  }
  return startupParameters;
}

const AUTH_METHODS = ['password', 'md5', 'gss', 'sspi', 'scram-sha-256', 'oauth', 'none'];

/** `require_auth` (PG16+): all entries negated ('!md5') or none. */
function parseRequireAuth(value: string | undefined): ConnectionSettings['requireAuth'] {
  if (value === undefined || value === '') return undefined;
  const allowed = new Set<string>();
  let negated: boolean | undefined;
  for (const entry of value.split(',')) {
    const isNegated = entry.startsWith('!');
    const method = isNegated ? entry.slice(1) : entry;
    if (negated !== undefined && negated !== isNegated) {
      throw new ConnectionStringError(
        `negative require_auth method "${isNegated ? entry : `!${entry}`}" cannot be mixed with non-negative methods`,
      );
    }
    negated = isNegated;
    if (!AUTH_METHODS.includes(method)) {
      throw new ConnectionStringError(`invalid require_auth value: "${method}"`);
    }
    if (allowed.has(method)) {
      throw new ConnectionStringError(`require_auth method "${method}" is specified more than once`);
    }
    allowed.add(method);
  }
  return { allowed, negated: negated ?? false };
}

function resolveTargets(
  values: Record<string, string>,
  socketDirectoryExists: ((path: string) => boolean) | undefined,
): HostTarget[] {
  const hosts = splitList(values.host);
  const hostaddrs = splitList(values.hostaddr);
  const ports = splitList(values.port);
  const count = Math.max(hosts.length, hostaddrs.length, 1);
  if (hostaddrs.length > 0 && hosts.length > 0 && hostaddrs.length !== hosts.length) {
    throw new ConnectionStringError(
      `could not match ${hosts.length} host names to ${hostaddrs.length} hostaddr values`,
    );
  }
  if (ports.length > 1 && ports.length !== count) {
    throw new ConnectionStringError(`could not match ${ports.length} port numbers to ${count} hosts`);
  }
  const socketDirectory = defaultSocketDirectory(socketDirectoryExists);
  const targets: HostTarget[] = [];
  for (let index = 0; index < count; index++) {
    const host = hosts[index] ?? '';
    const hostaddr = hostaddrs[index] ?? '';
    const portText = (ports.length === 1 ? ports[0] : ports[index]) ?? '';
    let port = DEFAULT_PORT;
    if (portText.trim() !== '') {
      port = parseIntegerParameter(portText, 'port');
      if (port < 1 || port > 65535) throw new ConnectionStringError(`invalid port number: "${portText}"`);
    }
    let socketPath: string | undefined;
    let displayHost = host;
    if (hostaddr === '') {
      if (host === '') {
        socketPath = join(socketDirectory, `.s.PGSQL.${port}`);
        displayHost = socketDirectory;
      } else if (host.startsWith('/')) {
        socketPath = join(host, `.s.PGSQL.${port}`);
      } else if (host.startsWith('@')) {
        // Linux abstract namespace: a leading NUL byte instead of the '@'.
        socketPath = `\0${host.slice(1)}/.s.PGSQL.${port}`;
      }
    } else if (host === '') {
      displayHost = hostaddr;
    }
    targets.push({ host, hostaddr, port, socketPath, displayHost });
  }
  return targets;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function safeHomedir(): string {
  try {
    return homedir();
  } catch {
    return '';
  }
}

function safeUserName(): string {
  try {
    return userInfo().username;
  } catch {
    throw new ConnectionStringError('could not look up local user name: set the user keyword or PGUSER');
  }
}

/** Whether a target's `.pgpass` host is 'localhost' (no host, or the default socket directory). */
export function passwordFileHost(target: HostTarget, socketDirectory: string): string {
  if (target.host === '' && target.hostaddr !== '') return target.hostaddr;
  if (target.host === '' || target.host === socketDirectory) return 'localhost';
  return target.host;
}
