/**
 * SQLSTATE codes this package reacts to, named after PostgreSQL's `errcodes.txt`, and the retry
 * classification shared by the connection and the receive loop.
 */
export const SqlState = {
  invalidPassword: '28P01',
  invalidAuthorizationSpecification: '28000',
  insufficientPrivilege: '42501',
  invalidCatalogName: '3D000',
  cannotConnectNow: '57P03',
  adminShutdown: '57P01',
  crashShutdown: '57P02',
  tooManyConnections: '53300',
  configurationLimitExceeded: '53400',
  objectInUse: '55006',
  objectNotInPrerequisiteState: '55000',
  undefinedObject: '42704',
  duplicateObject: '42710',
  undefinedFile: '58P01',
  syntaxError: '42601',
  featureNotSupported: '0A000',
  protocolViolation: '08P01',
} as const;

/**
 * Whether reconnecting later can help with a server error. Wrong password, missing permission or
 * a removed WAL segment need an operator; a server that is starting, shutting down, full, or a
 * slot still held by a dying walsender (55006) heal by themselves.
 */
export function isRetryableSqlState(sqlState: string): boolean {
  switch (sqlState) {
    case SqlState.cannotConnectNow:
    case SqlState.adminShutdown:
    case SqlState.crashShutdown:
    case SqlState.tooManyConnections:
    case SqlState.objectInUse:
      return true;
    default:
      // Class 08 (connection exception) is transient by definition.
      return sqlState.startsWith('08');
  }
}
