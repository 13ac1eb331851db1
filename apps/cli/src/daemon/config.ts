import { readFileSync, realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type ListenAddress, parseListenAddress } from '@wal/metrics/address';
import { formatS3Url, isS3Url, parseS3Url } from '@wal/s3/url';
import {
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  type Pair,
  parseDocument,
  type YAMLMap,
} from 'yaml';
import { checkDirectory } from '../receive.js';
import { parseReceiveCommandLine, type ReceiveOptions } from '../receive-options.js';
import { DaemonConfigError } from './config-error.js';
import {
  DAEMON_SERVER_KEYS,
  type KeyKind,
  keyArguments,
  knownServerKeys,
  OPTION_SERVER_KEYS,
  REFUSED_SERVER_KEYS,
} from './server-keys.js';

/**
 * `wal daemon`'s configuration file (YAML), read and checked whole before anything starts, so a
 * bad file is refused with its file, line and key (docs/adr/0014-wal-daemon.md, "Configuration").
 */

export interface ServerConfig {
  readonly name: string;
  /** The line of the server's entry. */
  readonly line: number;
  /** The options of `wal receive` the server's keys stand for: always the stream action. */
  readonly options: ReceiveOptions;
  /** `create-slot: true`: create the slot unless it exists, then stream. */
  readonly ensureSlot: boolean;
  /** The entry's keys and values in a stable order: a server whose identity changes is restarted. */
  readonly identity: string;
  /** `directory: s3://…`: the location normalised, so two spellings of one are seen as one. */
  readonly storeUrl: string | undefined;
}

/** Where a server's WAL goes: a local directory, or object storage through a local spool. */
interface ServerLocation {
  /** What `-D` is given: the absolute directory, or the URL as written. */
  readonly directory: string;
  readonly storeUrl: string | undefined;
  /** `--spool=DIR`, absolute, with an s3 directory. */
  readonly spoolArguments: string[];
}

export type LogFormat = 'text' | 'json';

export interface DaemonConfig {
  readonly file: string;
  readonly metricsAddress: ListenAddress | undefined;
  readonly logFormat: LogFormat;
  readonly servers: readonly ServerConfig[];
}

const TOP_LEVEL_KEYS = ['metrics_address', 'log_format', 'servers'];

/** Reads and checks `file`; throws a DaemonConfigError naming the line and key of the first problem. */
export function loadDaemonConfig(file: string): DaemonConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new DaemonConfigError(
      file,
      undefined,
      undefined,
      `could not read: ${(error as Error).message}`,
      error,
    );
  }
  return parseDaemonConfig(file, text);
}

export function parseDaemonConfig(file: string, text: string): DaemonConfig {
  const lines = new LineCounter();
  const document = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const syntax = document.errors[0];
  if (syntax !== undefined) {
    // An error found at the end of the file (an unclosed quote) is on its last line, not after it.
    const line = lines.linePos(Math.min(syntax.pos[0], Math.max(0, text.trimEnd().length - 1))).line;
    throw new DaemonConfigError(file, line, undefined, `not valid YAML: ${syntax.message.split('\n')[0]}`);
  }
  const reader = new ConfigReader(file, lines);
  const root = document.contents;
  if (!isMap(root)) throw reader.error(root, undefined, 'the file must be a mapping with a "servers" list');
  return reader.daemon(root);
}

/** A server entry's keys, each with its pair (for the line) and its plain value. */
type EntryValues = Map<string, { pair: Pair; value: unknown }>;

class ConfigReader {
  private readonly file: string;
  private readonly lines: LineCounter;

  constructor(file: string, lines: LineCounter) {
    this.file = file;
    this.lines = lines;
  }

  error(node: Node | Pair | null | undefined, key: string | undefined, problem: string, cause?: unknown) {
    return new DaemonConfigError(this.file, this.lineOf(node), key, problem, cause);
  }

  /** The line of a pair's key, or of a node; none for what the file does not have. */
  lineOf(node: Node | Pair | null | undefined): number | undefined {
    if (node === null || node === undefined) return undefined;
    const range = isPair(node) ? (node.key as Node | null)?.range : node.range;
    return range === undefined || range === null ? undefined : this.lines.linePos(range[0]).line;
  }

  daemon(root: YAMLMap): DaemonConfig {
    let metricsAddress: ListenAddress | undefined;
    let logFormat: LogFormat = 'text';
    let servers: ServerConfig[] | undefined;
    for (const pair of root.items) {
      const key = this.keyOf(pair, undefined);
      const value = pair.value as Node | null;
      if (key === 'metrics_address') metricsAddress = this.metricsAddress(pair, value);
      else if (key === 'log_format') logFormat = this.logFormat(pair, value);
      else if (key === 'servers') servers = this.servers(pair, value);
      else throw this.error(pair, key, `unknown key (known keys: ${TOP_LEVEL_KEYS.join(', ')})`);
    }
    if (servers === undefined) throw this.error(root, undefined, 'no "servers" list');
    return { file: this.file, metricsAddress, logFormat, servers };
  }

  private keyOf(pair: Pair, context: string | undefined): string {
    if (!isScalar(pair.key) || typeof pair.key.value !== 'string') {
      throw this.error(pair, context, 'a key must be a plain name');
    }
    return pair.key.value;
  }

  private metricsAddress(pair: Pair, value: Node | null): ListenAddress {
    const text = isScalar(value) ? value.value : undefined;
    try {
      if (typeof text !== 'string') throw new Error('expected HOST:PORT, [IPV6]:PORT or :PORT');
      return parseListenAddress(text);
    } catch (error) {
      throw this.error(pair, 'metrics_address', (error as Error).message, error);
    }
  }

  private logFormat(pair: Pair, value: Node | null): LogFormat {
    const text = isScalar(value) ? value.value : undefined;
    if (text !== 'text' && text !== 'json') throw this.error(pair, 'log_format', 'must be text or json');
    return text;
  }

  private servers(pair: Pair, value: Node | null): ServerConfig[] {
    if (!isSeq(value)) throw this.error(pair, 'servers', 'must be a list of servers');
    const servers: ServerConfig[] = [];
    for (const [index, entry] of value.items.entries()) {
      const server = this.server(entry as Node | null, index);
      this.checkUnique(servers, server, entry as Node);
      servers.push(server);
    }
    return servers;
  }

  /** One server's entry: its keys, their values through `wal receive`'s parser, its directory. */
  private server(entry: Node | null, index: number): ServerConfig {
    const label = `servers[${index}]`;
    if (!isMap(entry)) throw this.error(entry, label, 'must be a mapping with name, conninfo and directory');
    const values: EntryValues = new Map();
    for (const pair of entry.items) {
      const key = this.keyOf(pair, label);
      if (!isScalar(pair.value) && pair.value !== null) {
        throw this.error(pair, `${label} key "${key}"`, 'must be a single value, not a list or mapping');
      }
      values.set(key, { pair, value: isScalar(pair.value) ? pair.value.value : null });
    }
    const name = this.serverName(entry, values, label);
    const where = `server "${name}"`;
    const conninfo = this.requiredText(entry, values, 'conninfo', where);
    const location = this.serverLocation(entry, values, where);
    const archiveArgs = ['--directory', location.directory, ...location.spoolArguments];
    const keyArgs: string[] = [];
    let ensureSlot = false;
    for (const [key, { pair, value }] of values) {
      if (key === 'name' || key === 'conninfo' || key === 'directory') continue;
      if (key === 'spool' && location.storeUrl !== undefined) continue;
      if (key === 'create-slot') ensureSlot = this.argumentsOf(pair, where, key, 'flag', value).length > 0;
      else keyArgs.push(...this.optionArguments(pair, where, key, value, archiveArgs));
    }
    const argv = [...archiveArgs, '--dbname', conninfo, '--no-password', ...keyArgs];
    const options = this.parseOptions(entry, where, argv);
    if (ensureSlot && options.slot === undefined) {
      throw this.error(
        values.get('create-slot')!.pair,
        `${where} key "create-slot"`,
        'needs a slot: give slot: NAME',
      );
    }
    const identity = JSON.stringify([...values].map(([key, { value }]) => [key, value]).sort());
    const { storeUrl } = location;
    return { name, line: this.lineOf(entry) ?? 0, options, ensureSlot, identity, storeUrl };
  }

  private serverName(entry: YAMLMap, values: EntryValues, label: string): string {
    const name = this.requiredText(entry, values, 'name', label);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
      throw this.error(
        values.get('name')!.pair,
        `${label} key "name"`,
        `"${name}" is not a server name: use letters, digits, "_", "." and "-"`,
      );
    }
    return name;
  }

  private requiredText(entry: YAMLMap, values: EntryValues, key: string, where: string): string {
    const found = values.get(key);
    if (found === undefined) throw this.error(entry, `${where} key "${key}"`, 'missing');
    if (typeof found.value !== 'string' || found.value === '') {
      throw this.error(found.pair, `${where} key "${key}"`, 'must be a non-empty string');
    }
    return found.value;
  }

  /**
   * `directory`: a local directory, or `s3://BUCKET/PREFIX` with the `spool` key, as `-D` and
   * `--spool` of `wal receive`. The URL is checked here, so a bad one is refused before anything
   * starts; the store is opened (with the daemon's AWS configuration) when the server starts.
   */
  private serverLocation(entry: YAMLMap, values: EntryValues, where: string): ServerLocation {
    const given = this.requiredText(entry, values, 'directory', where);
    const directoryPair = values.get('directory')!.pair;
    if (!isS3Url(given)) {
      const directory = this.localDirectory(directoryPair, `${where} key "directory"`, given);
      return { directory, storeUrl: undefined, spoolArguments: [] };
    }
    let storeUrl: string;
    try {
      storeUrl = formatS3Url(parseS3Url(given));
    } catch (error) {
      throw this.error(directoryPair, `${where} key "directory"`, (error as Error).message, error);
    }
    const spool = values.get('spool');
    if (spool === undefined) {
      // `wal receive`'s own refusal of `-D s3://…` without `--spool`, reported at the directory.
      this.parseOptions(directoryPair, `${where} key "directory"`, ['--directory', given]);
      throw this.error(directoryPair, `${where} key "directory"`, 'an s3:// directory needs a spool');
    }
    if (typeof spool.value !== 'string' || spool.value === '') {
      throw this.error(spool.pair, `${where} key "spool"`, 'must be a non-empty string');
    }
    const spoolDirectory = this.localDirectory(spool.pair, `${where} key "spool"`, spool.value);
    return { directory: given, storeUrl, spoolArguments: [`--spool=${spoolDirectory}`] };
  }

  /** A local directory as an absolute path (relative ones from the file's directory), which must exist. */
  private localDirectory(pair: Pair, where: string, given: string): string {
    const directory = resolve(dirname(resolve(this.file)), given);
    try {
      checkDirectory(directory);
      return realpathSync(directory);
    } catch (error) {
      throw this.error(pair, where, (error as Error).message, error);
    }
  }

  private optionArguments(
    pair: Pair,
    where: string,
    key: string,
    value: unknown,
    archiveArgs: readonly string[],
  ): string[] {
    const refused = REFUSED_SERVER_KEYS[key];
    if (refused !== undefined)
      throw this.error(pair, `${where} key "${key}"`, `not taken by wal daemon: ${refused}`);
    const kind = OPTION_SERVER_KEYS[key] ?? DAEMON_SERVER_KEYS[key];
    if (kind === undefined) {
      throw this.error(
        pair,
        `${where} key "${key}"`,
        `unknown key (known keys: ${knownServerKeys().join(', ')})`,
      );
    }
    const args = this.argumentsOf(pair, where, key, kind, value);
    // The key alone through the parser, so a bad value is reported at its own line.
    this.parseOptions(pair, `${where} key "${key}"`, [...archiveArgs, ...args]);
    return args;
  }

  private argumentsOf(pair: Pair, where: string, key: string, kind: KeyKind, value: unknown): string[] {
    const result = keyArguments(key, kind, value);
    if ('wanted' in result) throw this.error(pair, `${where} key "${key}"`, `must be ${result.wanted}`);
    return result.arguments;
  }

  private parseOptions(node: Node | Pair, where: string, argv: string[]): ReceiveOptions {
    try {
      const commandLine = parseReceiveCommandLine(argv);
      if (commandLine.kind !== 'run') throw new Error(`unexpected ${commandLine.kind}`);
      return commandLine.options;
    } catch (error) {
      throw this.error(node, where, (error as Error).message, error);
    }
  }

  /**
   * Two servers never write to one place: not one name, directory, store location (normalised) or
   * spool, and no server's spool is another's directory.
   */
  private checkUnique(servers: readonly ServerConfig[], server: ServerConfig, entry: Node): void {
    const ownAs = (kind: string, place: string, other: ServerConfig, otherKind: string) =>
      this.error(
        entry,
        `server "${server.name}" key "${kind}"`,
        `"${place}" is the ${otherKind} of server "${other.name}" (line ${other.line}); give each server its own`,
      );
    for (const other of servers) {
      if (other.name === server.name) {
        throw this.error(
          entry,
          `server "${server.name}"`,
          `the name is taken by the server at line ${other.line}`,
        );
      }
      const place = localPlace(server);
      const otherPlace = localPlace(other);
      if (server.storeUrl !== undefined && server.storeUrl === other.storeUrl) {
        throw ownAs('directory', server.storeUrl, other, 'directory');
      }
      if (place.directory !== undefined && place.directory === otherPlace.directory) {
        throw ownAs('directory', place.directory, other, 'directory');
      }
      if (place.directory !== undefined && place.directory === otherPlace.spool) {
        throw ownAs('directory', place.directory, other, 'spool');
      }
      if (place.spool !== undefined && place.spool === otherPlace.spool) {
        throw ownAs('spool', place.spool, other, 'spool');
      }
      if (place.spool !== undefined && place.spool === otherPlace.directory) {
        throw ownAs('spool', place.spool, other, 'directory');
      }
    }
  }
}

/** A server's local directory, or its spool with an s3 directory. */
function localPlace(server: ServerConfig): { directory?: string; spool?: string } {
  return server.storeUrl === undefined
    ? { directory: server.options.directory }
    : { spool: server.options.spool };
}
