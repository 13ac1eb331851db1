import { WalError } from '@wal/protocol';
import { CommandLineError, UnknownOptionError } from './errors.js';
import type { Logger } from './log.js';

/**
 * One place that turns an error into stderr lines: the message as `error:`, in pg_receivewal's
 * words (the server's DETAIL and HINT inside it, as libpq formats them), and, under the name
 * `wal receive` only, our suggestion for an error without a HINT on a `hint:` line of its own
 * (docs/adr/0006-receiver-deviations.md, "Messages"). Suggestions are keyed by stable codes (and
 * SQLSTATEs), never by message text. The libraries' messages name no command-line flag; the
 * suggestions here are where flags are named, built from the data an error carries (the slot of a
 * WAL_ERR_STREAM_SLOT_* error).
 */

type Suggestion = string | ((error: WalError) => string | undefined);

const SUGGESTIONS_BY_CODE: Readonly<Record<string, Suggestion>> = {
  WAL_ERR_CONNECTION_REFUSED: 'Check the host and port given by -h and -p, by -d, or by PGHOST and PGPORT.',
  WAL_ERR_CONNECTION_TIMEOUT:
    'The server did not answer in time: check the host name, firewalls and connect_timeout.',
  WAL_ERR_AUTH_FAILED: 'Check the user name (-U) and the password given by -W, PGPASSWORD or ~/.pgpass.',
  WAL_ERR_AUTH_NO_PASSWORD:
    'The server wants a password: give one with -W, PGPASSWORD or ~/.pgpass (and leave out -w).',
  WAL_ERR_AUTH_UNSUPPORTED:
    'The server asked for an authentication method wal does not speak; use scram-sha-256, md5 or password in pg_hba.conf.',
  WAL_ERR_CONNINFO: 'The -d value must be keyword=value pairs or a postgresql:// URI.',
  WAL_ERR_TLS_NOT_SUPPORTED:
    'The server does not offer SSL: enable ssl on the server, or give sslmode=prefer in -d or PGSSLMODE.',
  WAL_ERR_SINK_MISMATCH:
    'The directory holds WAL from another cluster or segment size; give this server its own directory.',
  WAL_ERR_STREAM_SLOT_MISSING: (error) => {
    const slot = slotOf(error);
    return slot === undefined ? undefined : `Create the slot first with --create-slot --slot=${slot}.`;
  },
  WAL_ERR_STREAM_DATABASE_SPECIFIC:
    'wal receive asks for a physical replication connection (replication=true), but the server answered with a database connection.',
  WAL_ERR_STREAM_WAL_REMOVED: (error) =>
    slotOf(error) === undefined
      ? 'Give a slot with --slot (create it with --create-slot) so the server keeps WAL until it is received.'
      : recreateSlot(error),
  WAL_ERR_STREAM_SLOT_INVALIDATED: recreateSlot,
};

function recreateSlot(error: WalError): string | undefined {
  const slot = slotOf(error);
  return slot === undefined
    ? undefined
    : `Drop the slot with --drop-slot --slot=${slot}, create it again with --create-slot --slot=${slot}, then start again.`;
}

const SUGGESTIONS_BY_SQLSTATE: Readonly<Record<string, string>> = {
  '28000':
    'Allow replication connections for this user and host in pg_hba.conf ("host replication USER ADDRESS METHOD").',
  '42501': 'The user needs the REPLICATION attribute: ALTER ROLE name REPLICATION.',
  '42704': 'Create the slot first with --create-slot --slot=NAME.',
  '42710': 'Add --if-not-exists to accept a slot that already exists.',
  '53300': 'The server has no free WAL sender: raise max_wal_senders or stop another client.',
  '55006': 'Another client is streaming from this slot: stop it or use another slot.',
  '58P01':
    'The server has already removed that WAL: stream through a replication slot so it keeps WAL until received.',
};

/**
 * A `wal daemon` server's configuration has keys, not flags: where the suggestion above names a
 * flag, the daemon's names the key (docs/adr/0014-wal-daemon.md).
 */
const DAEMON_SUGGESTIONS: Readonly<Record<string, Suggestion>> = {
  WAL_ERR_CONNECTION_REFUSED: "Check the host and port in the server's conninfo (or its host and port keys).",
  WAL_ERR_AUTH_FAILED:
    "Check the user name and the password: the server's conninfo, a password file or PGPASSWORD.",
  WAL_ERR_AUTH_NO_PASSWORD:
    "The server wants a password: give one in the server's conninfo, a password file (PGPASSFILE) or PGPASSWORD.",
  WAL_ERR_CONNINFO: 'conninfo must be keyword=value pairs or a postgresql:// URI.',
  WAL_ERR_TLS_NOT_SUPPORTED:
    "The server does not offer SSL: enable ssl on the server, or give sslmode=prefer in the server's conninfo.",
  WAL_ERR_STREAM_SLOT_MISSING:
    'Add "create-slot: true" to the server\'s entry and reload, or create the slot.',
  '42704': 'Add "create-slot: true" to the server\'s entry and reload, or create the slot.',
  WAL_ERR_STREAM_WAL_REMOVED: (error) =>
    slotOf(error) === undefined
      ? 'Give the server a slot ("slot: NAME" with "create-slot: true") so the server keeps WAL until it is received.'
      : daemonRecreateSlot(error),
  WAL_ERR_STREAM_SLOT_INVALIDATED: (error) => daemonRecreateSlot(error),
};

function daemonRecreateSlot(error: WalError): string | undefined {
  const slot = slotOf(error);
  return slot === undefined
    ? undefined
    : `Drop the slot (wal receive --drop-slot --slot=${slot}); with "create-slot: true" the server creates it again on its next start.`;
}

/** The suggestion for a `wal daemon` server's error, or undefined to use `wal receive`'s. */
function daemonSuggestionFor(error: WalError): string | undefined {
  const suggestion = DAEMON_SUGGESTIONS[sqlStateOf(error) ?? ''] ?? DAEMON_SUGGESTIONS[error.code];
  return typeof suggestion === 'function' ? suggestion(error) : suggestion;
}

export function suggestionFor(error: WalError, daemon = false): string | undefined {
  if (daemon) {
    const suggestion = daemonSuggestionFor(error);
    if (suggestion !== undefined) return suggestion;
  }
  const bySqlState = sqlStateOf(error);
  // A slot that --drop-slot does not find needs no creating.
  if (bySqlState === '42704' && commandOf(error)?.startsWith('DROP_REPLICATION_SLOT')) return undefined;
  if (bySqlState !== undefined && SUGGESTIONS_BY_SQLSTATE[bySqlState] !== undefined) {
    return SUGGESTIONS_BY_SQLSTATE[bySqlState];
  }
  const byCode = SUGGESTIONS_BY_CODE[error.code];
  if (typeof byCode === 'function') return byCode(error);
  if (byCode !== undefined) return byCode;
  if (error.code.startsWith('WAL_ERR_TLS_')) {
    return 'Check sslmode, sslrootcert and the server certificate; --trace shows the conversation.';
  }
  return undefined;
}

/** The hint line pg_receivewal prints after a refused command line. */
export function helpHint(program: string): string {
  return `Try "${program} --help" for more information.`;
}

/** What the run knows that an error may not carry: the slot of the command line. */
export interface ReportContext {
  readonly slot?: string | undefined;
}

type Wording = (error: WalError, context: ReportContext) => string;

/**
 * Errors printed in pg_receivewal's words rather than the library's (scripts match its stderr);
 * the library's message says more, the hint keeps the advice.
 */
const MESSAGES_BY_CODE: Readonly<Record<string, Wording>> = {
  // The server's message as pg_receivewal prints it; the library's advice is the hint.
  WAL_ERR_STREAM_WAL_REMOVED: (error) => (error.cause instanceof Error ? error.cause.message : error.message),
  WAL_ERR_STREAM_SLOT_MISSING: (error, context) =>
    `replication slot "${slotOf(error) ?? context.slot}" does not exist`,
  WAL_ERR_STREAM_DATABASE_SPECIFIC: (error, context) => {
    const slot = slotOf(error) ?? context.slot;
    return `${slot === undefined ? 'replication connection' : `replication connection using slot "${slot}"`} is unexpectedly database specific`;
  },
};

/**
 * Where our message says more than pg_receivewal's, its words under the drop-in name (the library's
 * message is the one `wal receive` prints).
 */
const PG_RECEIVEWAL_MESSAGES_BY_CODE: Readonly<Record<string, Wording>> = {
  // receivelog.c, after CopyDone from a server that shuts down; ours adds where and why.
  WAL_ERR_STREAM_TERMINATED: () => 'replication stream was terminated before stop point',
};

function wordingFor(logger: Logger, error: WalError): Wording | undefined {
  return (
    (logger.ownWording ? undefined : PG_RECEIVEWAL_MESSAGES_BY_CODE[error.code]) ??
    MESSAGES_BY_CODE[error.code]
  );
}

export function reportError(logger: Logger, error: unknown, context: ReportContext = {}): void {
  if (error instanceof UnknownOptionError) {
    // Without a message: an option getopt knows but the option loop refuses (the hint alone).
    if (error.message !== '') logger.bare(error.message);
    logger.hint(helpHint(logger.program));
    return;
  }
  if (error instanceof CommandLineError) {
    logger.error(error.message, logger.json ? { code: error.code } : undefined);
    if (error.detail !== undefined) logger.detail(error.detail);
    if (error.hint) logger.hint(helpHint(logger.program));
    return;
  }
  if (error instanceof WalError) {
    const server = serverFieldsOf(error);
    const message = wordingFor(logger, error)?.(error, context) ?? error.message;
    logger.error(
      message,
      logger.json
        ? { code: error.code, ...(server.sqlState ? { sqlState: server.sqlState } : {}) }
        : undefined,
    );
    // The server's DETAIL and HINT are part of the message in libpq's form (`\nHINT:  …`), as
    // pg_receivewal prints them; a line of their own only when the message does not carry them.
    if (server.detail && !message.includes(server.detail)) logger.detail(server.detail);
    if (server.hint !== undefined) {
      if (!message.includes(server.hint)) logger.hint(server.hint);
      return;
    }
    const daemon = logger.server !== undefined;
    const suggestion = logger.ownWording ? (suggestionFor(error, daemon) ?? adviceOf(error)) : undefined;
    if (suggestion) logger.hint(suggestion);
    return;
  }
  logger.error(error instanceof Error ? error.message : String(error));
}

interface ServerFields {
  sqlState: string | undefined;
  detail: string | undefined;
  hint: string | undefined;
}

/** libpq-lite's ServerError keeps SQLSTATE, DETAIL and HINT; read them without depending on its class. */
function serverFieldsOf(error: WalError): ServerFields {
  const candidate = error as WalError & {
    sqlState?: unknown;
    detail?: unknown;
    hint?: unknown;
    fields?: { detail?: unknown; hint?: unknown };
  };
  const text = (value: unknown): string | undefined =>
    typeof value === 'string' && value !== '' ? value : undefined;
  return {
    sqlState: text(candidate.sqlState),
    detail: text(candidate.detail) ?? text(candidate.fields?.detail),
    hint: text(candidate.hint) ?? text(candidate.fields?.hint),
  };
}

function sqlStateOf(error: WalError): string | undefined {
  return serverFieldsOf(error).sqlState;
}

/** The library's own advice (AuthenticationError, SinkError), read without depending on their classes. */
function adviceOf(error: WalError): string | undefined {
  const advice = (error as WalError & { advice?: unknown }).advice;
  return typeof advice === 'string' && advice !== '' ? advice : undefined;
}

/** The replication command a ReplicationCommandError is about, read without depending on its class. */
function commandOf(error: WalError): string | undefined {
  const command = (error as WalError & { command?: unknown }).command;
  return typeof command === 'string' ? command : undefined;
}

/** The slot a stream error is about, read without depending on StreamError's class. */
function slotOf(error: WalError): string | undefined {
  const slot = (error as WalError & { slot?: unknown }).slot;
  return typeof slot === 'string' && slot !== '' ? slot : undefined;
}
