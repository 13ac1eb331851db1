import type { BackendMessage } from '@wal/protocol';
import { ProtocolError } from '@wal/protocol';
import type { ConnectionSettings } from '../environment.js';
import { AuthenticationError, ServerError } from '../errors.js';
import { SqlState } from '../sqlstate.js';
import type { Wire } from '../wire.js';
import { md5PasswordResponse } from './md5.js';
import { type ChannelBindingChoice, ScramClient } from './scram.js';

/** Where a password came from, so a failure can say so (libpq `pgpassfileWarning`). */
export interface PasswordSource {
  password: Buffer;
  /** Path of the password file it came from, when it did. */
  passwordFile?: string;
}

export interface AuthenticationContext {
  wire: Wire;
  settings: ConnectionSettings;
  /** Resolves the password on first need; undefined when none is available. */
  getPassword: () => Promise<PasswordSource | undefined>;
  /** Present when the connection is encrypted: the server certificate hash for channel binding. */
  tls: { certificateHash: () => Buffer } | undefined;
  /** Called for NegotiateProtocolVersion, which arrives before the first authentication request. */
  onNegotiateProtocolVersion: (
    message: Extract<BackendMessage, { type: 'NegotiateProtocolVersion' }>,
  ) => void;
  /** The password last used, so a 28P01 can name the password file. */
  usedPassword?: PasswordSource;
}

const UNSUPPORTED_METHODS: Record<number, string> = {
  1: 'Kerberos 4 authentication not supported',
  2: 'Kerberos 5 authentication not supported',
  4: 'Crypt authentication not supported',
  6: 'SCM_CRED authentication not supported',
  7: 'GSSAPI authentication not supported',
  8: 'GSSAPI authentication not supported',
  9: 'SSPI authentication not supported',
};

const METHOD_NAMES: Record<number, string> = { 7: 'gss', 8: 'gss', 9: 'sspi' };

/**
 * Runs the authentication exchange after the StartupMessage, up to and including AuthenticationOk
 * (libpq `pg_fe_sendauth`, `fe-auth.c`). An ErrorResponse becomes a coded error; the caller
 * decides whether to retry with another encryption method.
 */
export async function authenticate(context: AuthenticationContext): Promise<void> {
  const { wire, settings } = context;
  let scram: ScramClient | undefined;
  let sawRequest = false;
  for (;;) {
    const message = await wire.nextMessage();
    switch (message.type) {
      case 'NegotiateProtocolVersion':
        if (sawRequest) throw unexpected(message.type);
        context.onNegotiateProtocolVersion(message);
        continue;
      case 'NoticeResponse':
        continue;
      case 'ErrorResponse':
        throw mapStartupError(new ServerError(message.fields), context);
      case 'AuthenticationOk':
        checkAuthenticationOk(settings, scram, sawRequest);
        return;
      case 'AuthenticationCleartextPassword':
      case 'AuthenticationMD5Password':
        sawRequest = true;
        await sendPassword(message, context);
        continue;
      case 'AuthenticationSASL':
        if (scram !== undefined) throw unexpected(message.type);
        sawRequest = true;
        scram = await startScram(message.mechanisms, context);
        continue;
      case 'AuthenticationSASLContinue':
        if (scram === undefined) throw unexpected(message.type);
        wire.send({ type: 'SASLResponse', data: await scram.clientFinalMessage(message.data) });
        continue;
      case 'AuthenticationSASLFinal':
        if (scram === undefined) throw unexpected(message.type);
        scram.verifyServerFinal(message.data);
        continue;
      case 'AuthenticationRequest':
        throw unsupportedMethod(message.method, settings);
      default:
        throw unexpected(message.type);
    }
  }
}

/**
 * AuthenticationOk is only acceptable when the server proved itself as far as the settings demand:
 * a SCRAM exchange finished with the server's signature, and channel binding when required.
 */
function checkAuthenticationOk(
  settings: ConnectionSettings,
  scram: ScramClient | undefined,
  sawRequest: boolean,
): void {
  if (scram !== undefined && !scram.completed) {
    throw new AuthenticationError(
      'WAL_ERR_AUTH_INCOMPLETE',
      'server did not complete authentication: it accepted the login without proving it knows the password (SCRAM server signature missing)',
    );
  }
  if (scram === undefined && !sawRequest) {
    // trust: the server never asked for anything.
    checkChannelBindingAllowsNonSasl(settings, 'none');
    checkRequireAuth(settings, 'none');
  } else if (
    scram !== undefined &&
    settings.channelBinding === 'require' &&
    scram.mechanism !== 'SCRAM-SHA-256-PLUS'
  ) {
    throw new AuthenticationError(
      'WAL_ERR_AUTH_CHANNEL_BINDING',
      'channel binding required, but server authenticated client without channel binding',
    );
  }
}

/** Answers a cleartext or MD5 password request. */
async function sendPassword(
  message: Extract<BackendMessage, { type: 'AuthenticationCleartextPassword' | 'AuthenticationMD5Password' }>,
  context: AuthenticationContext,
): Promise<void> {
  const { settings, wire } = context;
  checkChannelBindingAllowsNonSasl(settings, 'password');
  checkRequireAuth(settings, message.type === 'AuthenticationMD5Password' ? 'md5' : 'password');
  const source = await requirePassword(context);
  wire.send({
    type: 'PasswordMessage',
    password:
      message.type === 'AuthenticationMD5Password'
        ? md5PasswordResponse(source.password, settings.user, message.salt)
        : source.password,
  });
}

/** Chooses the SASL mechanism and sends SASLInitialResponse. */
async function startScram(mechanisms: string[], context: AuthenticationContext): Promise<ScramClient> {
  checkRequireAuth(context.settings, 'scram-sha-256');
  const channelBinding = chooseChannelBinding(mechanisms, context);
  const source = await requirePassword(context);
  const scram = new ScramClient({ password: source.password, channelBinding });
  context.wire.send({
    type: 'SASLInitialResponse',
    mechanism: scram.mechanism,
    data: scram.clientFirstMessage(),
  });
  return scram;
}

function unsupportedMethod(method: number, settings: ConnectionSettings): AuthenticationError {
  const name = METHOD_NAMES[method];
  if (name !== undefined) checkRequireAuth(settings, name);
  return new AuthenticationError(
    'WAL_ERR_AUTH_UNSUPPORTED',
    `${UNSUPPORTED_METHODS[method] ?? `authentication method ${method} not supported`}; ` +
      'configure pg_hba.conf to use scram-sha-256, md5, password or trust for this client',
  );
}

function unexpected(type: string): ProtocolError {
  return new ProtocolError(
    'WAL_ERR_PROTOCOL_UNEXPECTED_MESSAGE',
    `expected an authentication request from the server, got ${type}`,
  );
}

function checkChannelBindingAllowsNonSasl(settings: ConnectionSettings, kind: 'password' | 'none'): void {
  if (settings.channelBinding !== 'require') return;
  throw new AuthenticationError(
    'WAL_ERR_AUTH_CHANNEL_BINDING',
    kind === 'none'
      ? 'channel binding required, but server authenticated client without channel binding'
      : "channel binding required but not supported by server's authentication request",
  );
}

const METHOD_DESCRIPTIONS: Record<string, string> = {
  password: 'server requested a cleartext password',
  md5: 'server requested a hashed password',
  'scram-sha-256': 'server requested SASL authentication',
  gss: 'server requested GSSAPI authentication',
  sspi: 'server requested SSPI authentication',
  none: 'server did not complete authentication',
};

/** `require_auth` (PG16+). */
function checkRequireAuth(settings: ConnectionSettings, method: string | undefined): void {
  const requirement = settings.requireAuth;
  if (requirement === undefined || method === undefined) return;
  const listed = requirement.allowed.has(method);
  if (listed !== requirement.negated) return;
  const text = [...requirement.allowed].map((entry) => (requirement.negated ? `!${entry}` : entry)).join(',');
  throw new AuthenticationError(
    'WAL_ERR_AUTH_UNSUPPORTED',
    `authentication method requirement "${text}" failed: ${METHOD_DESCRIPTIONS[method] ?? method}`,
  );
}

/** libpq `pg_SASL_init`: which mechanism and gs2 flag to use. */
function chooseChannelBinding(mechanisms: string[], context: AuthenticationContext): ChannelBindingChoice {
  const { settings, tls } = context;
  const offersPlus = mechanisms.includes('SCRAM-SHA-256-PLUS');
  const offersPlain = mechanisms.includes('SCRAM-SHA-256');
  if (offersPlus && tls === undefined) {
    throw new AuthenticationError(
      'WAL_ERR_AUTH_CHANNEL_BINDING',
      'server offered SCRAM-SHA-256-PLUS authentication over a non-SSL connection',
    );
  }
  if (settings.channelBinding === 'require') {
    if (tls === undefined) {
      throw new AuthenticationError(
        'WAL_ERR_AUTH_CHANNEL_BINDING',
        'channel binding required, but SSL not in use; use sslmode=require or stronger',
      );
    }
    if (!offersPlus) {
      throw new AuthenticationError(
        'WAL_ERR_AUTH_CHANNEL_BINDING',
        'channel binding is required, but server did not offer an authentication method that supports channel binding',
      );
    }
  }
  if (offersPlus && tls !== undefined && settings.channelBinding !== 'disable') {
    return { kind: 'tls-server-end-point', certificateHash: tls.certificateHash() };
  }
  if (!offersPlain) {
    throw new AuthenticationError(
      'WAL_ERR_AUTH_UNSUPPORTED',
      `none of the server's SASL authentication mechanisms are supported (offered: ${mechanisms.join(', ')})`,
    );
  }
  // 'y': we could bind but the server (apparently) cannot; lets the server detect a downgrade.
  if (tls !== undefined && settings.channelBinding !== 'disable') return { kind: 'unused' };
  return { kind: 'none' };
}

async function requirePassword(context: AuthenticationContext): Promise<PasswordSource> {
  const source = await context.getPassword();
  if (source === undefined || source.password.length === 0) {
    throw new AuthenticationError('WAL_ERR_AUTH_NO_PASSWORD', 'fe_sendauth: no password supplied', {
      needsPassword: true,
      advice:
        'The server requires a password: give one with PGPASSWORD, a password file (~/.pgpass) or a prompt.',
    });
  }
  context.usedPassword = source;
  return source;
}

/**
 * Turns startup ErrorResponses into coded errors. The message is libpq's (`FATAL:  …` with the
 * server's DETAIL and HINT lines; connect() puts `connection to server at … failed: ` before it);
 * what to do is the error's `advice`.
 */
export function mapStartupError(error: ServerError, context: AuthenticationContext): Error {
  const { settings } = context;
  switch (error.sqlState) {
    case SqlState.invalidPassword: {
      const file = context.usedPassword?.passwordFile;
      // fe-connect.c pgpassfileWarning(): a line of its own after the server's message.
      return new AuthenticationError(
        'WAL_ERR_AUTH_FAILED',
        `${error.message}${file !== undefined ? `\npassword retrieved from file "${file}"` : ''}`,
        {
          serverError: error,
          advice: `Check the password of role "${settings.user}" (and how pg_hba.conf authenticates this client).`,
        },
      );
    }
    case SqlState.invalidAuthorizationSpecification:
      return new AuthenticationError('WAL_ERR_AUTH_REJECTED', error.message, {
        serverError: error,
        advice:
          `The server refuses this login: check that role "${settings.user}" exists and that ` +
          'pg_hba.conf has a matching line (for physical replication the database column must be "replication").',
      });
    case SqlState.insufficientPrivilege:
      return new AuthenticationError('WAL_ERR_AUTH_NO_REPLICATION_PERMISSION', error.message, {
        serverError: error,
        advice: `Grant the permission with: ALTER ROLE ${quoteRoleForHint(settings.user)} REPLICATION;`,
      });
    default:
      return error;
  }
}

function quoteRoleForHint(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
