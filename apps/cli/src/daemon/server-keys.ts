import { RECEIVE_LONG_OPTIONS } from '../receive-options.js';

/**
 * Which keys a server of `wal daemon`'s file takes, and how each becomes the `wal receive`
 * argument it stands for (docs/adr/0014-wal-daemon.md, "Configuration"). A key is a long option's
 * name; its value is read by the same parser as on the command line, so it means the same there.
 */

/** The keys every server must have; `conninfo` stands for -d/--dbname, `directory` for -D. */
export const REQUIRED_SERVER_KEYS = ['name', 'conninfo', 'directory'] as const;

/** Long options that make no sense for a server a daemon keeps streaming, and why. */
export const REFUSED_SERVER_KEYS: Readonly<Record<string, string>> = {
  dbname: 'give the connection string as conninfo',
  'drop-slot': 'dropping a slot is a one-time action; run "wal receive --drop-slot --slot=NAME" instead',
  'if-not-exists': '"create-slot: true" already accepts a slot that exists',
  endpos: 'the daemon streams without an end; run "wal receive --endpos" for a bounded run',
  'no-loop': 'the daemon always reconnects, and restarts a server whose run ended',
  password: 'the daemon has no terminal to ask on; give the password in a password file or PGPASSWORD',
  'no-password': 'the daemon never asks for a password',
  progress: 'the daemon has no terminal to draw a progress line on',
  json: 'the log format is the whole process\'s; set "log_format: json" at the top of the file',
  'log-format': 'the log format is the whole process\'s; set "log_format" at the top of the file',
  'metrics-address': 'one endpoint serves every server; set "metrics_address" at the top of the file',
  help: 'not an option of a server',
  version: 'not an option of a server',
};

/** What a key's value must be, from its option's argument kind. */
export type KeyKind = 'flag' | 'count' | 'value' | 'optional-value';

/** `create-slot` is taken by the daemon itself: create the slot unless it exists, then stream. */
export const DAEMON_SERVER_KEYS: Readonly<Record<string, KeyKind>> = {
  'create-slot': 'flag',
};

/** The long options of `wal receive` a server takes, with the kind of value each wants. */
export const OPTION_SERVER_KEYS: Readonly<Record<string, KeyKind>> = Object.fromEntries(
  RECEIVE_LONG_OPTIONS.filter(
    (option) =>
      REFUSED_SERVER_KEYS[option.name] === undefined &&
      DAEMON_SERVER_KEYS[option.name] === undefined &&
      option.name !== 'directory',
  ).map((option) => [option.name, keyKind(option.name, option.argument)]),
);

function keyKind(name: string, argument: 'none' | 'required' | 'optional'): KeyKind {
  if (name === 'verbose') return 'count';
  if (argument === 'none') return 'flag';
  return argument === 'required' ? 'value' : 'optional-value';
}

/** Every key a server may have, for the "known keys" part of an unknown key's message. */
export function knownServerKeys(): string[] {
  return [...REQUIRED_SERVER_KEYS, ...Object.keys(DAEMON_SERVER_KEYS), ...Object.keys(OPTION_SERVER_KEYS)];
}

/**
 * The `wal receive` arguments for one key and its value, or a description of the value wanted
 * when the value has the wrong type. `verbose` takes `true` or a count; a flag `false` is absent.
 */
export function keyArguments(
  name: string,
  kind: KeyKind,
  value: unknown,
): { arguments: string[] } | { wanted: string } {
  const scalar = typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
  switch (kind) {
    case 'flag':
      if (typeof value !== 'boolean') return { wanted: 'true or false' };
      return { arguments: value ? [`--${name}`] : [] };
    case 'count':
      if (typeof value === 'boolean') return { arguments: value ? [`--${name}`] : [] };
      if (!Number.isInteger(value) || (value as number) < 0) return { wanted: 'true, false or a count' };
      return { arguments: Array.from({ length: value as number }, () => `--${name}`) };
    case 'value':
      if (!scalar) return { wanted: 'a string or a number' };
      return { arguments: [`--${name}=${String(value)}`] };
    case 'optional-value':
      if (value === true) return { arguments: [`--${name}`] };
      if (value === false) return { arguments: [] };
      if (!scalar || value === '') return { wanted: 'true, false or a file name' };
      return { arguments: [`--${name}=${String(value)}`] };
  }
}
