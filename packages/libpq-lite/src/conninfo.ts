import { ConnectionStringError } from './errors.js';

/**
 * Every keyword libpq 18 accepts (`fe-connect.c` option table), with its environment variable.
 * Keywords we accept but do not act on are listed in the README; accepting them keeps connection
 * strings written for libpq working.
 */
export const CONNECTION_KEYWORDS: Readonly<Record<string, string | undefined>> = {
  service: 'PGSERVICE',
  servicefile: 'PGSERVICEFILE',
  user: 'PGUSER',
  password: 'PGPASSWORD',
  passfile: 'PGPASSFILE',
  channel_binding: 'PGCHANNELBINDING',
  connect_timeout: 'PGCONNECT_TIMEOUT',
  dbname: 'PGDATABASE',
  host: 'PGHOST',
  hostaddr: 'PGHOSTADDR',
  port: 'PGPORT',
  client_encoding: 'PGCLIENTENCODING',
  options: 'PGOPTIONS',
  application_name: 'PGAPPNAME',
  fallback_application_name: undefined,
  keepalives: undefined,
  keepalives_idle: undefined,
  keepalives_interval: undefined,
  keepalives_count: undefined,
  tcp_user_timeout: undefined,
  sslmode: 'PGSSLMODE',
  sslnegotiation: 'PGSSLNEGOTIATION',
  sslcompression: 'PGSSLCOMPRESSION',
  sslcert: 'PGSSLCERT',
  sslkey: 'PGSSLKEY',
  sslcertmode: 'PGSSLCERTMODE',
  sslpassword: undefined,
  sslrootcert: 'PGSSLROOTCERT',
  sslcrl: 'PGSSLCRL',
  sslcrldir: 'PGSSLCRLDIR',
  sslsni: 'PGSSLSNI',
  sslkeylogfile: undefined,
  requirepeer: 'PGREQUIREPEER',
  require_auth: 'PGREQUIREAUTH',
  ssl_min_protocol_version: 'PGSSLMINPROTOCOLVERSION',
  ssl_max_protocol_version: 'PGSSLMAXPROTOCOLVERSION',
  min_protocol_version: 'PGMINPROTOCOLVERSION',
  max_protocol_version: 'PGMAXPROTOCOLVERSION',
  gssencmode: 'PGGSSENCMODE',
  krbsrvname: 'PGKRBSRVNAME',
  gsslib: 'PGGSSLIB',
  gssdelegation: 'PGGSSDELEGATION',
  replication: undefined,
  target_session_attrs: 'PGTARGETSESSIONATTRS',
  load_balance_hosts: 'PGLOADBALANCEHOSTS',
  scram_client_key: undefined,
  scram_server_key: undefined,
  oauth_issuer: undefined,
  oauth_client_id: undefined,
  oauth_client_secret: undefined,
  oauth_scope: undefined,
  oauth_ca_file: 'PGOAUTHCAFILE',
};

export function isConnectionKeyword(keyword: string): boolean {
  return Object.hasOwn(CONNECTION_KEYWORDS, keyword);
}

/** True when `text` is a URI libpq would parse as such (`recognized_connection_string`). */
export function isConnectionUri(text: string): boolean {
  return uriPrefixLength(text) > 0;
}

function uriPrefixLength(text: string): number {
  if (text.startsWith('postgresql://')) return 'postgresql://'.length;
  if (text.startsWith('postgres://')) return 'postgres://'.length;
  return 0;
}

/**
 * Parses a libpq connection string: `key = value ...` or a `postgres[ql]://` URI.
 * Errors carry libpq's own messages (`conninfo_parse`, `conninfo_uri_parse_options`).
 * `requiressl=1|0` becomes `sslmode=require|prefer` and URI `ssl=true` becomes `sslmode=require`,
 * as libpq does. Later settings win over earlier ones.
 */
export function parseConnectionString(text: string): Record<string, string> {
  return isConnectionUri(text) ? parseUri(text) : parseKeywordValue(text);
}

// C's isspace() in the "C" locale.
function isSpace(character: string | undefined): boolean {
  return (
    character === ' ' ||
    character === '\t' ||
    character === '\n' ||
    character === '\r' ||
    character === '\v' ||
    character === '\f'
  );
}

function store(result: Record<string, string>, keyword: string, value: string): void {
  if (keyword === 'requiressl') {
    // Backwards compatibility, as libpq: only the first character counts.
    result.sslmode = value.startsWith('1') ? 'require' : 'prefer';
    return;
  }
  if (!isConnectionKeyword(keyword)) {
    throw new ConnectionStringError(`invalid connection option "${keyword}"`);
  }
  result[keyword] = value;
}

/** `keyword = value ...`, values bare or in single quotes, backslash escapes (libpq `conninfo_parse`). */
function parseKeywordValue(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  let position = 0;
  while (position < text.length) {
    if (isSpace(text[position])) {
      position++;
      continue;
    }
    const keyword = readKeyword(text, position);
    const parsed =
      text[keyword.position] === "'"
        ? readQuotedValue(text, keyword.position + 1)
        : readBareValue(text, keyword.position);
    store(result, keyword.name, parsed.value);
    position = parsed.position;
  }
  return result;
}

/** The keyword at `start`, its "=" and the spaces after it; returns where the value starts. */
function readKeyword(text: string, start: number): { name: string; position: number } {
  const length = text.length;
  let position = start;
  let nameEnd = -1;
  while (position < length) {
    const character = text[position];
    if (character === '=') break;
    if (isSpace(character)) {
      nameEnd = position;
      while (position < length && isSpace(text[position])) position++;
      break;
    }
    position++;
  }
  if (nameEnd < 0) nameEnd = position;
  const name = text.slice(start, nameEnd);
  if (text[position] !== '=') {
    throw new ConnectionStringError(`missing "=" after "${name}" in connection info string`);
  }
  position++;
  while (position < length && isSpace(text[position])) position++;
  return { name, position };
}

/** A value up to the next space; a backslash takes the next character literally. */
function readBareValue(text: string, start: number): { value: string; position: number } {
  let value = '';
  let position = start;
  while (position < text.length) {
    const character = text[position]!;
    if (isSpace(character)) {
      position++;
      break;
    }
    if (character === '\\') {
      position++;
      if (position < text.length) value += text[position++];
    } else {
      value += character;
      position++;
    }
  }
  return { value, position };
}

/** A value after its opening quote, up to the closing one; a backslash takes the next character. */
function readQuotedValue(text: string, start: number): { value: string; position: number } {
  let value = '';
  let position = start;
  for (;;) {
    if (position >= text.length) {
      throw new ConnectionStringError('unterminated quoted string in connection info string');
    }
    const character = text[position]!;
    if (character === '\\') {
      position++;
      if (position < text.length) value += text[position++];
      continue;
    }
    if (character === "'") return { value, position: position + 1 };
    value += character;
    position++;
  }
}

function hexDigitValue(character: string | undefined): number {
  if (character === undefined) return -1;
  const code = character.charCodeAt(0);
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x41 + 10;
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10;
  return -1;
}

/**
 * Percent-decodes one URI component as libpq's `conninfo_uri_decode`: surrounding spaces are
 * dropped, an inner space is an error, `%00` is forbidden. Decoded bytes are read as UTF-8.
 */
export function decodeUriComponent(text: string, secret = false): string {
  // libpq quotes the component in its messages; a password must never appear in one.
  const shown = secret ? 'the password' : `"${text}"`;
  const bytes: number[] = [];
  let position = 0;
  while (text[position] === ' ') position++;
  for (;;) {
    const character = text[position];
    if (character === undefined || character === ' ') break;
    if (character !== '%') {
      for (const byte of Buffer.from(character, 'utf8')) bytes.push(byte);
      position++;
      continue;
    }
    const high = hexDigitValue(text[position + 1]);
    const low = high < 0 ? -1 : hexDigitValue(text[position + 2]);
    if (high < 0 || low < 0) {
      throw new ConnectionStringError(`invalid percent-encoded token: ${shown}`);
    }
    const byte = (high << 4) | low;
    if (byte === 0) {
      throw new ConnectionStringError(`forbidden value %00 in percent-encoded value: ${shown}`);
    }
    bytes.push(byte);
    position += 3;
  }
  while (text[position] === ' ') position++;
  if (position < text.length) {
    throw new ConnectionStringError(
      `unexpected spaces found in ${shown}, use percent-encoded spaces (%20) instead`,
    );
  }
  return Buffer.from(bytes).toString('utf8');
}

function isSecret(keyword: string): boolean {
  return keyword === 'password' || keyword === 'sslpassword' || keyword.startsWith('oauth_client_secret');
}

function storeDecoded(result: Record<string, string>, keyword: string, value: string): void {
  // libpq looks the keyword up before it decodes the value.
  if (!isConnectionKeyword(keyword) && keyword !== 'requiressl') {
    throw new ConnectionStringError(`invalid connection option "${keyword}"`);
  }
  store(result, keyword, decodeUriComponent(value, isSecret(keyword)));
}

/**
 * `postgres[ql]://[user[:password]@][host][:port][,...][/dbname][?param=value&...]`
 * (libpq `conninfo_uri_parse_options`).
 */
function parseUri(uri: string): Record<string, string> {
  const result: Record<string, string> = {};
  const length = uri.length;
  let position = parseUriCredentials(uri, uriPrefixLength(uri), result);
  let terminator: string | undefined;
  ({ position, terminator } = parseUriHosts(uri, position, result));
  if (terminator !== undefined && terminator !== '?') {
    const databaseStart = ++position;
    while (position < length && uri[position] !== '?') position++;
    const database = uri.slice(databaseStart, position);
    terminator = uri[position];
    // An empty dbname would force the default (user name) and hide PGDATABASE: leave it unset.
    if (database !== '') storeDecoded(result, 'dbname', database);
  }
  if (terminator !== undefined) {
    parseUriQuery(uri.slice(position + 1), result);
  }
  return result;
}

/** Looks ahead for "user[:password]@"; returns where the host list starts. */
function parseUriCredentials(uri: string, start: number, result: Record<string, string>): number {
  let position = start;
  while (position < uri.length && uri[position] !== '@' && uri[position] !== '/') position++;
  if (uri[position] !== '@') return start;
  const credentialsEnd = position;
  let userEnd = start;
  while (userEnd < credentialsEnd && uri[userEnd] !== ':') userEnd++;
  const user = uri.slice(start, userEnd);
  if (user !== '') storeDecoded(result, 'user', user);
  if (userEnd < credentialsEnd) {
    const password = uri.slice(userEnd + 1, credentialsEnd);
    if (password !== '') storeDecoded(result, 'password', password);
  }
  return credentialsEnd + 1;
}

/**
 * "host[:port]" entries separated by commas, hosts in brackets for IPv6. Returns the position and
 * character ('/', '?' or undefined at the end) after the list.
 */
function parseUriHosts(
  uri: string,
  start: number,
  result: Record<string, string>,
): { position: number; terminator: string | undefined } {
  const length = uri.length;
  const hosts: string[] = [];
  const ports: string[] = [];
  let position = start;
  let terminator: string | undefined;
  for (;;) {
    let host: string;
    if (uri[position] === '[') {
      ({ host, position } = readBracketedHost(uri, position));
    } else {
      const hostStart = position;
      while (position < length && !':/?,'.includes(uri[position]!)) position++;
      host = uri.slice(hostStart, position);
    }
    hosts.push(host);
    terminator = uri[position];
    let port = '';
    if (terminator === ':') {
      const portStart = ++position;
      while (position < length && !'/?,'.includes(uri[position]!)) position++;
      port = uri.slice(portStart, position);
      terminator = uri[position];
    }
    ports.push(port);
    if (terminator !== ',') break;
    position++;
  }
  const hostList = hosts.join(',');
  const portList = ports.join(',');
  if (hostList !== '') storeDecoded(result, 'host', hostList);
  // As libpq: "h1,h2" without ports stores port ",", which later means the default for each host.
  if (portList !== '') storeDecoded(result, 'port', portList);
  return { position, terminator };
}

/** "[address]" at `start`: the address and the position after the "]". */
function readBracketedHost(uri: string, start: number): { host: string; position: number } {
  const hostStart = start + 1;
  let position = hostStart;
  while (position < uri.length && uri[position] !== ']') position++;
  if (position >= uri.length) {
    throw new ConnectionStringError(
      `end of string reached when looking for matching "]" in IPv6 host address in URI: "${uri}"`,
    );
  }
  if (position === hostStart) {
    throw new ConnectionStringError(`IPv6 host address may not be empty in URI: "${uri}"`);
  }
  const host = uri.slice(hostStart, position);
  position++;
  const next = uri[position];
  if (next !== undefined && next !== ':' && next !== '/' && next !== '?' && next !== ',') {
    throw new ConnectionStringError(
      `unexpected character "${next}" at position ${position + 1} in URI (expected ":" or "/"): "${uri}"`,
    );
  }
  return { host, position };
}

function parseUriQuery(query: string, result: Record<string, string>): void {
  let position = 0;
  while (position < query.length) {
    const keywordStart = position;
    let valueStart = -1;
    let keywordEnd = -1;
    let end: number;
    for (;;) {
      const character = query[position];
      if (character === '=') {
        if (valueStart >= 0) {
          throw new ConnectionStringError(
            `extra key/value separator "=" in URI query parameter: "${query.slice(keywordStart, keywordEnd)}"`,
          );
        }
        keywordEnd = position;
        valueStart = ++position;
      } else if (character === '&' || character === undefined) {
        end = position;
        if (character === '&') position++;
        if (valueStart < 0) {
          throw new ConnectionStringError(
            `missing key/value separator "=" in URI query parameter: "${query.slice(keywordStart, end)}"`,
          );
        }
        break;
      } else {
        position++;
      }
    }
    let keyword = decodeUriComponent(query.slice(keywordStart, keywordEnd));
    let value = decodeUriComponent(query.slice(valueStart, end), isSecret(keyword));
    // JDBC compatibility, as libpq.
    if (keyword === 'ssl' && value === 'true') {
      keyword = 'sslmode';
      value = 'require';
    }
    if (!isConnectionKeyword(keyword) && keyword !== 'requiressl') {
      throw new ConnectionStringError(`invalid URI query parameter: "${keyword}"`);
    }
    store(result, keyword, value);
  }
}
