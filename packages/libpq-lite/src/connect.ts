import { lookup } from 'node:dns/promises';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import {
  BackendMessageCode,
  EncryptionResponseCode,
  encodeFrontendMessage,
  lookupErrorText,
  type NoticeFields,
  ProtocolError,
  systemErrorText,
  WalError,
} from '@wal/protocol';
import {
  type AuthenticationContext,
  authenticate,
  mapStartupError,
  type PasswordSource,
} from './auth/authenticate.js';
import { tlsServerEndPointHash } from './certificate-hash.js';
import { Connection } from './connection.js';
import {
  type ConnectionSettings,
  defaultSocketDirectory,
  type HostTarget,
  passwordFileHost,
  resolveSettings,
} from './environment.js';
import {
  AuthenticationError,
  ConnectionError,
  ConnectionStringError,
  ServerError,
  TlsError,
} from './errors.js';
import { readPasswordFile } from './pgpass.js';
import { SocketReader } from './socket-reader.js';
import { checkTargetSession, type SessionRequirement, sessionPasses } from './target-session.js';
import { startTls } from './tls.js';
import type { TraceSink } from './trace.js';
import { Wire } from './wire.js';

export interface ConnectOptions {
  /** Environment for `PG*` variables and HOME; default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Asked once, when the server wants a password and none was configured. */
  passwordPrompt?: () => Promise<string>;
  signal?: AbortSignal;
  /** Wire trace, one line per message; passwords and SCRAM proofs are redacted. */
  trace?: TraceSink;
  /** Warnings libpq prints on stderr (password file permissions...). */
  onWarning?: (message: string) => void;
  /**
   * Every NoticeResponse of the session (NOTICE, WARNING, ...), raw, when it is read: before the
   * result of the command it came with, as libpq's notice processor sees it (which prints
   * `NOTICE:  …` on stderr). Without it notices are dropped. Must not throw.
   */
  onNotice?: (notice: NoticeFields) => void;
}

type Address = { kind: 'tcp'; address: string; family: 4 | 6 } | { kind: 'unix'; path: string };
type EncryptionMethod = 'plain' | 'ssl';

/**
 * Opens a session (libpq `PQconnectdbParams` + `PQconnectPoll`): for each host, each address,
 * each allowed encryption method in sslmode order, until one succeeds. Authentication failures
 * stop the search; refused connections, timeouts and "the database system is starting up" move on.
 */
export async function connect(
  parameters: Record<string, string>,
  options: ConnectOptions = {},
): Promise<Connection> {
  const settings = resolveSettings(parameters, { env: options.env ?? process.env });
  const targets = settings.loadBalanceHosts ? shuffle([...settings.targets]) : settings.targets;
  const socketDirectory = defaultSocketDirectory();
  const failures: WalError[] = [];
  const prompt = promptOnce(options.passwordPrompt);

  // prefer-standby runs the host list twice, the second time taking any server (libpq).
  const passes = sessionPasses(settings.targetSessionAttrs);
  const attempts = passes.flatMap((requirement) => targets.map((target) => ({ target, requirement })));
  for (const { target, requirement } of attempts) {
    const getPassword = passwordLookup(settings, target, socketDirectory, options.onWarning, prompt);
    let addresses: Address[];
    try {
      addresses = await resolveAddresses(target);
    } catch (error) {
      failures.push(toWalError(error));
      continue;
    }
    for (const address of addresses) {
      const outcome = await tryEncryptionMethods(
        { settings, target, address, options, getPassword },
        failures,
      );
      if (outcome instanceof Connection) {
        const rejected = await checkSession(outcome, requirement, settings, options.signal);
        if (rejected === undefined) return outcome;
        // libpq: the next host, not the next address of this one.
        failures.push(rejected);
        break;
      }
      if (outcome === 'next-host') break;
    }
  }
  throw combineFailures(failures);
}

/**
 * target_session_attrs for one established session (libpq CONNECTION_CHECK_TARGET). A rejected
 * session is closed politely. The abort signal ends a check that waits for the server.
 */
async function checkSession(
  connection: Connection,
  requirement: SessionRequirement,
  settings: ConnectionSettings,
  signal: AbortSignal | undefined,
): Promise<WalError | undefined> {
  const onAbort = (): void => connection.destroy();
  signal?.addEventListener('abort', onAbort, { once: true });
  let rejected: WalError | undefined;
  try {
    rejected = await checkTargetSession(connection, requirement, settings.startupParameters.replication);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (signal?.aborted) {
    connection.destroy();
    throw abortError(signal);
  }
  if (rejected !== undefined) await connection.close();
  return rejected;
}

/** The prompt, asked at most once per `connect()` whatever the number of hosts. */
function promptOnce(prompt: (() => Promise<string>) | undefined): (() => Promise<string>) | undefined {
  if (prompt === undefined) return undefined;
  let answer: Promise<string> | undefined;
  return () => {
    answer ??= prompt();
    return answer;
  };
}

/**
 * Where a target's password comes from, looked up on first need: the `password` keyword, then the
 * password file entry for that host, then the prompt (libpq `PQconnectPoll` / `passwordFromFile`).
 */
function passwordLookup(
  settings: ConnectionSettings,
  target: HostTarget,
  socketDirectory: string,
  onWarning: ConnectOptions['onWarning'],
  prompt: (() => Promise<string>) | undefined,
): () => Promise<PasswordSource | undefined> {
  let fromFile: Promise<PasswordSource | undefined> | undefined;
  return async () => {
    if (settings.password !== undefined) return { password: Buffer.from(settings.password, 'utf8') };
    fromFile ??= readPasswordFile(
      settings.passfile,
      {
        host: passwordFileHost(target, socketDirectory),
        port: String(target.port),
        dbname: settings.dbname,
        user: settings.user,
      },
      onWarning,
    ).then((password) =>
      password === undefined
        ? undefined
        : { password: Buffer.from(password, 'utf8'), passwordFile: settings.passfile },
    );
    const source = await fromFile;
    if (source !== undefined) return source;
    if (prompt === undefined) return undefined;
    return { password: Buffer.from(await prompt(), 'utf8') };
  };
}

/**
 * One address with each allowed encryption method in turn. Records the failure that ends the
 * address in `failures`, throws the ones another host would not fix, and says where to go next.
 */
async function tryEncryptionMethods(
  input: Omit<AttemptInput, 'method' | 'onSslRefused'>,
  failures: WalError[],
): Promise<Connection | 'next-address' | 'next-host'> {
  const { options } = input;
  const methods = encryptionMethods(input.settings, input.address);
  // After an 'N' the attempt already went on in plaintext, so libpq has no plaintext method left
  // (it removes it): a wrong password is then sent once, not twice.
  let plaintextUsed = false;
  const onSslRefused = (): void => {
    plaintextUsed = true;
  };
  for (let index = 0; index < methods.length; index++) {
    try {
      return await attempt({ ...input, method: methods[index]!, onSslRefused });
    } catch (error) {
      if (options.signal?.aborted) throw abortError(options.signal);
      const failure = toWalError(error);
      const next = methods[index + 1];
      const nextUseful = next !== undefined && !(next === 'plain' && plaintextUsed);
      if (nextUseful && retriesWithNextMethod(failure)) continue;
      if (isFinal(failure)) throw failure;
      failures.push(failure);
      // "The database system is starting up" and other server errors: try the next host.
      return failure instanceof ServerError ? 'next-host' : 'next-address';
    }
  }
  return 'next-address';
}

function toWalError(error: unknown): WalError {
  if (error instanceof WalError) return error;
  return new ConnectionError(
    'WAL_ERR_CONNECTION_FAILED',
    error instanceof Error ? error.message : String(error),
    {
      cause: error,
    },
  );
}

/** libpq reconnects with the next method after a TLS failure or any ErrorResponse during startup. */
function retriesWithNextMethod(error: WalError): boolean {
  if (error instanceof ServerError) return true;
  if (error instanceof AuthenticationError) return error.serverError !== undefined;
  if (error instanceof TlsError) {
    return (
      error.code !== 'WAL_ERR_TLS_ROOT_CERT_MISSING' &&
      error.code !== 'WAL_ERR_TLS_CONFIG' &&
      error.code !== 'WAL_ERR_TLS_CERTIFICATE_HASH'
    );
  }
  return false;
}

/** Errors that another host would not fix. */
function isFinal(error: WalError): boolean {
  if (error instanceof AuthenticationError || error instanceof ConnectionStringError) return true;
  if (error instanceof TlsError)
    return error.code === 'WAL_ERR_TLS_ROOT_CERT_MISSING' || error.code === 'WAL_ERR_TLS_CONFIG';
  if (error instanceof ConnectionError) return error.code === 'WAL_ERR_CONNECTION_PROTOCOL_VERSION';
  return error instanceof ProtocolError;
}

function combineFailures(failures: WalError[]): WalError {
  const last = failures.at(-1);
  if (last === undefined) return new ConnectionError('WAL_ERR_CONNECTION_FAILED', 'no host to connect to');
  if (failures.length > 1) {
    // Like libpq, report every host's failure, so the user sees why each was skipped.
    last.message = failures.map((failure) => failure.message).join('\n');
  }
  return last;
}

function shuffle<T>(items: T[]): T[] {
  for (let index = items.length - 1; index > 0; index--) {
    const other = Math.floor(Math.random() * (index + 1));
    [items[index], items[other]] = [items[other]!, items[index]!];
  }
  return items;
}

async function resolveAddresses(target: HostTarget): Promise<Address[]> {
  if (target.socketPath !== undefined) return [{ kind: 'unix', path: target.socketPath }];
  const host = target.hostaddr !== '' ? target.hostaddr : target.host;
  const family = isIP(host);
  if (family !== 0) return [{ kind: 'tcp', address: host, family: family as 4 | 6 }];
  if (target.hostaddr !== '') {
    throw new ConnectionStringError(`could not parse network address "${target.hostaddr}"`);
  }
  try {
    const results = await lookup(host, { all: true, verbatim: true });
    return results.map((result) => ({
      kind: 'tcp',
      address: result.address,
      family: result.family as 4 | 6,
    }));
  } catch (error) {
    throw new ConnectionError(
      'WAL_ERR_CONNECTION_HOST_NOT_FOUND',
      `could not translate host name "${host}" to address: ${lookupErrorText(error)}`,
      { cause: error },
    );
  }
}

/** `init_allowed_encryption_methods`: order by sslmode; Unix sockets never use SSL. */
function encryptionMethods(settings: ConnectionSettings, address: Address): EncryptionMethod[] {
  if (address.kind === 'unix') return ['plain'];
  switch (settings.sslmode) {
    case 'disable':
      return ['plain'];
    case 'allow':
      return ['plain', 'ssl'];
    case 'prefer':
      return ['ssl', 'plain'];
    default:
      return ['ssl'];
  }
}

function describe(target: HostTarget, address: Address): string {
  if (address.kind === 'unix') return `server on socket "${address.path.replace('\0', '@')}"`;
  const name =
    target.host !== '' && target.host !== address.address
      ? `"${target.host}" (${address.address})`
      : `"${address.address}"`;
  return `server at ${name}, port ${target.port}`;
}

function abortError(signal: AbortSignal): ConnectionError {
  return new ConnectionError('WAL_ERR_CONNECTION_ABORTED', 'connection attempt aborted', {
    cause: signal.reason,
  });
}

interface AttemptInput {
  settings: ConnectionSettings;
  target: HostTarget;
  address: Address;
  method: EncryptionMethod;
  options: ConnectOptions;
  getPassword: () => Promise<PasswordSource | undefined>;
  /** Called when the server answered 'N' and the attempt went on in plaintext on the same socket. */
  onSslRefused: () => void;
}

/**
 * One connection attempt, bounded by connect_timeout and the abort signal: whichever fires
 * destroys the sockets, which makes the pending step fail.
 */
async function attempt(input: AttemptInput): Promise<Connection> {
  const { settings, options } = input;
  const description = describe(input.target, input.address);
  const sockets: Socket[] = [];
  let interruption: WalError | undefined;
  const interrupt = (error: WalError): void => {
    interruption ??= error;
    for (const socket of sockets) socket.destroy();
  };
  let timer: NodeJS.Timeout | undefined;
  if (settings.connectTimeoutMs !== undefined) {
    timer = setTimeout(
      () =>
        interrupt(
          new ConnectionError(
            'WAL_ERR_CONNECTION_TIMEOUT',
            `connection to ${description} failed: timeout expired after ${settings.connectTimeoutMs! / 1000} s ` +
              '(connect_timeout); check that the server is reachable and not overloaded',
          ),
        ),
      settings.connectTimeoutMs,
    );
    timer.unref();
  }
  const onAbort = (): void => interrupt(abortError(options.signal!));
  if (options.signal?.aborted) throw abortError(options.signal);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await establish(input, description, (socket) => {
      sockets.push(socket);
      if (interruption !== undefined) socket.destroy();
    });
  } catch (error) {
    for (const socket of sockets) socket.destroy();
    throw interruption ?? attributed(error, description);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * libpq puts `connection to server at "H", port P failed: ` before the server's refusal and the
 * client's own authentication failures (fe-connect.c, PostgreSQL 14+); transport failures say
 * where in their own words already.
 */
function attributed(error: unknown, description: string): unknown {
  if (error instanceof AuthenticationError || error instanceof ServerError) {
    error.message = `connection to ${description} failed: ${error.message}`;
  }
  return error;
}

function openSocket(
  address: Address,
  target: HostTarget,
  description: string,
  settings: ConnectionSettings,
): Promise<{ socket: Socket; reader: SocketReader }> {
  return new Promise<{ socket: Socket; reader: SocketReader }>((resolve, reject) => {
    // Reads go into large buffers (SocketReader) instead of a fresh 64 KiB Buffer per read.
    const reader = new SocketReader();
    const socket =
      address.kind === 'unix'
        ? netConnect({ path: address.path, onread: reader.options })
        : netConnect({
            host: address.address,
            port: target.port,
            family: address.family,
            onread: reader.options,
          });
    const onError = (error: NodeJS.ErrnoException): void => {
      socket.destroy();
      const refused = error.code === 'ECONNREFUSED' || error.code === 'ENOENT';
      const advice =
        address.kind === 'unix'
          ? 'Is the server running locally and accepting connections on that socket?'
          : 'Is the server running on that host and accepting TCP/IP connections?';
      reject(
        new ConnectionError(
          refused ? 'WAL_ERR_CONNECTION_REFUSED' : 'WAL_ERR_CONNECTION_FAILED',
          `connection to ${description} failed: ${systemErrorText(error) ?? error.message}\n\t${advice}`,
          { cause: error },
        ),
      );
    };
    const onClose = (): void => onError(Object.assign(new Error('socket closed'), { code: 'ECONNRESET' }));
    socket.once('error', onError);
    socket.once('close', onClose);
    socket.once('connect', () => {
      socket.removeListener('error', onError);
      socket.removeListener('close', onClose);
      socket.setNoDelay(true);
      if (address.kind === 'tcp' && settings.keepalives.enabled) {
        socket.setKeepAlive(true, settings.keepalives.idleMs);
      }
      resolve({ socket, reader });
    });
  });
}

/** Reads the one-byte answer to SSLRequest, keeping anything that came with it for the CVE check. */
function readSslResponse(socket: Socket, reader: SocketReader, description: string): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const cleanup = (): void => {
      reader.target = undefined;
      socket.removeListener('error', onError);
      socket.removeListener('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      cleanup();
      resolve(chunk);
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(
        new ConnectionError(
          'WAL_ERR_CONNECTION_CLOSED',
          `connection to ${description} failed during SSL negotiation: ${error.message}`,
          {
            cause: error,
          },
        ),
      );
    };
    const onClose = (): void => {
      cleanup();
      reject(
        new ConnectionError(
          'WAL_ERR_CONNECTION_CLOSED',
          `${description} closed the connection unexpectedly during SSL negotiation`,
        ),
      );
    };
    socket.once('error', onError);
    socket.once('close', onClose);
    reader.target = onData;
  });
}

/**
 * One session on one address: socket, encryption, startup, authentication, then the server's
 * parameters until ReadyForQuery (`PQconnectPoll`'s states, in order).
 */
async function establish(
  input: AttemptInput,
  description: string,
  track: (socket: Socket) => void,
): Promise<Connection> {
  const { settings, target, address, method, options } = input;
  const { socket: rawSocket, reader } = await openSocket(address, target, description, settings);
  track(rawSocket);
  const tlsSocket = method === 'ssl' ? await negotiateTls(input, rawSocket, reader, description) : undefined;
  if (tlsSocket !== undefined) track(tlsSocket);

  // After a TLS handshake the TLS socket reads the raw socket itself; its plaintext comes as 'data'.
  const wire = new Wire(tlsSocket ?? rawSocket, {
    trace: options.trace,
    onNotice: options.onNotice,
    description,
    reader: tlsSocket === undefined ? reader : undefined,
  });
  let protocolVersion = (3 << 16) | settings.maxProtocolVersion.minor;
  wire.send({ type: 'StartupMessage', protocolVersion, parameters: settings.startupParameters });

  const context: AuthenticationContext = {
    wire,
    settings,
    getPassword: input.getPassword,
    tls:
      tlsSocket === undefined
        ? undefined
        : { certificateHash: () => tlsServerEndPointHash(tlsSocket.getPeerCertificate().raw) },
    onNegotiateProtocolVersion: (message) => {
      protocolVersion = negotiatedProtocolVersion(message, protocolVersion & 0xffff, settings);
    },
  };
  await authenticate(context);
  const session = await awaitReadyForQuery(context, description);
  return new Connection({
    wire,
    ...session,
    protocolVersion,
    host: address.kind === 'unix' ? target.displayHost : target.host || address.address,
    port: target.port,
    usesTls: tlsSocket !== undefined,
  });
}

/**
 * TLS on a new socket, by the configured negotiation. Undefined when the server refused an
 * SSLRequest and sslmode lets the attempt go on in plaintext on the same socket.
 */
async function negotiateTls(
  input: AttemptInput,
  rawSocket: Socket,
  reader: SocketReader,
  description: string,
): Promise<TLSSocket | undefined> {
  const { settings, target, options } = input;
  if (settings.sslnegotiation === 'direct') {
    options.trace?.('F\t-\tTLS ClientHello (direct, ALPN "postgresql")');
    return startTls(rawSocket, settings, target, { direct: true, description });
  }
  const request = encodeFrontendMessage({ type: 'SSLRequest' });
  options.trace?.(`F\t${request.length}\tSSLRequest`);
  rawSocket.write(request);
  const response = await readSslResponse(rawSocket, reader, description);
  // Never show an 'E' body: the server has not been authenticated (CVE-2024-10977).
  options.trace?.(`B\t1\tSSLResponse\t${describeSslAnswer(response[0])}`);
  if (response[0] === EncryptionResponseCode.SslAccepted) {
    if (response.length > 1) {
      // Bytes before the handshake could be injected by a man in the middle (CVE-2021-23222).
      throw new TlsError(
        'WAL_ERR_TLS_UNENCRYPTED_DATA',
        `received unencrypted data after SSL response from ${description}; possible man-in-the-middle attack`,
      );
    }
    return startTls(rawSocket, settings, target, { direct: false, description });
  }
  checkSslRefusal(response, settings, description);
  input.onSslRefused();
  return undefined;
}

function describeSslAnswer(answer: number | undefined): string {
  const known =
    answer === EncryptionResponseCode.SslAccepted ||
    answer === EncryptionResponseCode.Refused ||
    answer === BackendMessageCode.ErrorResponse;
  return known ? String.fromCharCode(answer) : '?';
}

/** Returns when the answer is a clean 'N' that sslmode accepts; throws for anything else. */
function checkSslRefusal(response: Buffer, settings: ConnectionSettings, description: string): void {
  const answer = response[0];
  if (answer === EncryptionResponseCode.Refused) {
    if (settings.sslmode !== 'prefer' && settings.sslmode !== 'allow') {
      throw new TlsError(
        'WAL_ERR_TLS_NOT_SUPPORTED',
        `connection to ${description} failed: server does not support SSL, but SSL was required`,
        { advice: `sslmode=${settings.sslmode} needs SSL: enable ssl on the server or use sslmode=prefer.` },
      );
    }
    if (response.length > 1) {
      throw new TlsError(
        'WAL_ERR_TLS_UNENCRYPTED_DATA',
        `received unencrypted data after SSL response from ${description}`,
      );
    }
    return;
  }
  if (answer === BackendMessageCode.ErrorResponse) {
    throw new TlsError(
      'WAL_ERR_TLS_SERVER_ERROR',
      `${description} sent an error response during SSL exchange (see the server log)`,
      { retryable: true },
    );
  }
  throw new TlsError(
    'WAL_ERR_TLS_INVALID_RESPONSE',
    `received invalid response to SSL negotiation from ${description}: ${answer === undefined ? 'nothing' : JSON.stringify(String.fromCharCode(answer))}`,
  );
}

/**
 * The protocol version after a NegotiateProtocolVersion: a lower minor version, within
 * min_protocol_version, and no options we did not send (`pqGetNegotiateProtocolVersion3`).
 */
function negotiatedProtocolVersion(
  message: { newestMinorVersion: number; unrecognizedOptions: string[] },
  requestedMinor: number,
  settings: ConnectionSettings,
): number {
  if (message.newestMinorVersion >= requestedMinor) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_NEGOTIATION',
      'received invalid protocol negotiation message: server requested downgrade to a higher-numbered version',
    );
  }
  if (message.unrecognizedOptions.length > 0) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_NEGOTIATION',
      `server rejected protocol options we did not send: ${message.unrecognizedOptions.join(', ')}`,
    );
  }
  if (message.newestMinorVersion < settings.minProtocolVersion.minor) {
    throw new ConnectionError(
      'WAL_ERR_CONNECTION_PROTOCOL_VERSION',
      `server only supports protocol version 3.${message.newestMinorVersion}, but min_protocol_version was set to 3.${settings.minProtocolVersion.minor}`,
    );
  }
  return (3 << 16) | message.newestMinorVersion;
}

/** After AuthenticationOk: the server's parameters and cancel key, until ReadyForQuery. */
async function awaitReadyForQuery(
  context: AuthenticationContext,
  description: string,
): Promise<{ parameters: Map<string, string>; processId: number; secretKey: Buffer }> {
  const { wire } = context;
  const session = {
    parameters: new Map<string, string>(),
    processId: 0,
    secretKey: Buffer.alloc(0) as Buffer,
  };
  for (;;) {
    const message = await wire.nextMessage();
    switch (message.type) {
      case 'ParameterStatus':
        session.parameters.set(message.name, message.value);
        continue;
      case 'BackendKeyData':
        session.processId = message.processId;
        session.secretKey = message.secretKey;
        continue;
      case 'NoticeResponse':
        continue;
      case 'ErrorResponse':
        // For example "permission denied to start WAL sender" (42501), after AuthenticationOk.
        throw mapStartupError(new ServerError(message.fields), context);
      case 'ReadyForQuery':
        wire.established = true;
        return session;
      default:
        throw new ProtocolError(
          'WAL_ERR_PROTOCOL_UNEXPECTED_MESSAGE',
          `unexpected ${message.type} from ${description} while waiting for the session to start`,
        );
    }
  }
}
