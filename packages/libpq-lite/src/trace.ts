import type { BackendMessage, FrontendMessage } from '@wal/protocol';

/** Receives one line per protocol message, like libpq's `PQtrace`. */
export type TraceSink = (line: string) => void;

const FRAME_HEADER_LENGTH = 5;

function quote(text: string): string {
  return JSON.stringify(text);
}

/** SCRAM proofs and signatures allow an offline dictionary attack on the password: hide them. */
function redactScram(text: string): string {
  return text.replace(/(^|,)(p|v)=[^,]*/g, '$1$2=[redacted]');
}

/** One trace line for a message we send. Passwords and SCRAM proofs never appear. */
export function describeFrontend(message: FrontendMessage, frameLength: number): string {
  const prefix = `F\t${frameLength}\t${message.type}`;
  switch (message.type) {
    case 'StartupMessage':
      return `${prefix}\t${message.protocolVersion >> 16}.${message.protocolVersion & 0xffff}\t${Object.entries(
        message.parameters,
      )
        .map(([name, value]) => `${name}=${quote(value)}`)
        .join(' ')}`;
    case 'PasswordMessage':
      return `${prefix}\t[redacted]`;
    case 'SASLInitialResponse':
      return `${prefix}\t${quote(message.mechanism)}\t${message.data === null ? 'null' : quote(message.data.toString('utf8'))}`;
    case 'SASLResponse':
      return `${prefix}\t${quote(redactScram(message.data.toString('utf8')))}`;
    case 'Query':
      return `${prefix}\t${quote(message.sql)}`;
    case 'CopyData':
      return `${prefix}\t${message.data.length} bytes${describeCopyType(message.data)}`;
    case 'CopyFail':
      return `${prefix}\t${quote(message.message)}`;
    default:
      return prefix;
  }
}

function describeCopyType(data: Buffer): string {
  return data.length > 0 ? ` '${String.fromCharCode(data[0]!)}'` : '';
}

/** One trace line for a message we received. */
export function describeBackend(message: BackendMessage, payloadLength: number): string {
  const prefix = `B\t${payloadLength + FRAME_HEADER_LENGTH}\t${message.type}`;
  switch (message.type) {
    case 'AuthenticationSASL':
      return `${prefix}\t${message.mechanisms.map(quote).join(' ')}`;
    case 'AuthenticationSASLContinue':
      return `${prefix}\t${quote(message.data.toString('utf8'))}`;
    case 'AuthenticationSASLFinal':
      return `${prefix}\t${quote(redactScram(message.data.toString('utf8')))}`;
    case 'AuthenticationRequest':
      return `${prefix}\t${message.method}`;
    case 'ParameterStatus':
      return `${prefix}\t${quote(message.name)}\t${quote(message.value)}`;
    case 'BackendKeyData':
      return `${prefix}\t${message.processId}\t[${message.secretKey.length}-byte key]`;
    case 'ReadyForQuery':
      return `${prefix}\t${message.transactionStatus}`;
    case 'RowDescription':
      return `${prefix}\t${message.fields.map((field) => `${quote(field.name)}:${field.typeOid}`).join(' ')}`;
    case 'DataRow':
      return `${prefix}\t${message.values
        .map((value) => (value === null ? 'NULL' : quote(value.toString('utf8'))))
        .join(' ')}`;
    case 'CommandComplete':
      return `${prefix}\t${quote(message.tag)}`;
    case 'ErrorResponse':
    case 'NoticeResponse':
      return `${prefix}\t${message.fields.severity} ${message.fields.code} ${quote(message.fields.message)}`;
    case 'CopyBothResponse':
    case 'CopyInResponse':
    case 'CopyOutResponse':
      return `${prefix}\t${message.format}\t${message.columnFormats.length}`;
    case 'CopyData':
      return `${prefix}\t${message.data.length} bytes${describeCopyType(message.data)}`;
    case 'NegotiateProtocolVersion':
      return `${prefix}\t3.${message.newestMinorVersion}\t${message.unrecognizedOptions.map(quote).join(' ')}`;
    default:
      return prefix;
  }
}
