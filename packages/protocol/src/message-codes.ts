/**
 * Message type bytes (protocol.sgml "Message Formats"; PostgreSQL's `protocol.h`). The character
 * is in each comment; several characters mean different messages in the two directions.
 */
export const BackendMessageCode = {
  Authentication: 0x52, // 'R'
  ParameterStatus: 0x53, // 'S'
  BackendKeyData: 0x4b, // 'K'
  ReadyForQuery: 0x5a, // 'Z'
  RowDescription: 0x54, // 'T'
  DataRow: 0x44, // 'D'
  CommandComplete: 0x43, // 'C'
  EmptyQueryResponse: 0x49, // 'I'
  ErrorResponse: 0x45, // 'E'
  NoticeResponse: 0x4e, // 'N'
  CopyBothResponse: 0x57, // 'W'
  CopyOutResponse: 0x48, // 'H'
  CopyInResponse: 0x47, // 'G'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  NegotiateProtocolVersion: 0x76, // 'v'
} as const;

export const FrontendMessageCode = {
  /** PasswordMessage, SASLInitialResponse and SASLResponse share 'p'; the state tells them apart. */
  PasswordMessage: 0x70, // 'p'
  SASLInitialResponse: 0x70, // 'p'
  SASLResponse: 0x70, // 'p'
  Query: 0x51, // 'Q'
  Terminate: 0x58, // 'X'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyFail: 0x66, // 'f'
} as const;

/**
 * The byte a server answers an SSLRequest or GSSENCRequest with (protocol.sgml "SSL Session
 * Encryption"). A server too old to know the request answers with an ErrorResponse ('E') instead.
 */
export const EncryptionResponseCode = {
  SslAccepted: 0x53, // 'S'
  Refused: 0x4e, // 'N'
} as const;

/**
 * The first byte of a CopyData payload during physical replication (protocol-replication.sgml):
 * 'w', 'k' and 's' come from the server, 'r', 'h' and 'p' from the standby.
 */
export const ReplicationMessageType = {
  XLogData: 0x77, // 'w'
  PrimaryKeepalive: 0x6b, // 'k'
  PrimaryStatusUpdate: 0x73, // 's'
  StandbyStatusUpdate: 0x72, // 'r'
  HotStandbyFeedback: 0x68, // 'h'
  RequestPrimaryStatus: 0x70, // 'p'
} as const;

/**
 * The Int32 that starts a startup packet in place of a protocol version (`pqcomm.h`): 1234 in the
 * high 16 bits and a request number in the low 16 bits, so no real protocol version collides.
 */
export const StartupRequestCode = {
  CancelRequest: 80877102, // 1234 << 16 | 5678
  SSLRequest: 80877103, // 1234 << 16 | 5679
  GSSENCRequest: 80877104, // 1234 << 16 | 5680
} as const;

/** Protocol versions as sent in a StartupMessage: major << 16 | minor. */
export const ProtocolVersion = {
  V3_0: 196608, // 3 << 16 | 0
  /** PostgreSQL 18+: only BackendKeyData and CancelRequest differ (variable-length cancel key). */
  V3_2: 196610, // 3 << 16 | 2
} as const;

/** How a code byte reads in an error message. */
export function describeCode(code: number): string {
  return code >= 0x20 && code < 0x7f
    ? `'${String.fromCharCode(code)}'`
    : `0x${code.toString(16).padStart(2, '0')}`;
}
