/**
 * The libpq keywords `wal receive` connects with, merged the way pg_receivewal's GetConnection()
 * builds its keyword array (streamutil.c:61-150, spec §1.4), where a later entry overrides an
 * earlier one:
 *
 *   1. dbname=replication
 *   2. every non-empty keyword of -d (a dbname there wins over step 1, as in PostgreSQL 17+)
 *   3. replication=true (cannot be overridden)
 *   4. fallback_application_name
 *   5. -h, -U, -p: these override the same keywords inside -d. PostgreSQL's documentation says
 *      the opposite, but libpq's merge order is what scripts rely on (observed on PostgreSQL 15).
 *   6. password, once a prompt has been answered.
 */
export interface ConnectionOverrides {
  readonly host: string | undefined;
  readonly username: string | undefined;
  readonly port: string | undefined;
  readonly password?: string | undefined;
}

export const FALLBACK_APPLICATION_NAME = 'wal receive';

export function replicationConnectionParameters(
  fromConnectionString: Readonly<Record<string, string>> | undefined,
  overrides: ConnectionOverrides,
): Record<string, string> {
  const parameters: Record<string, string> = { dbname: 'replication' };
  for (const [keyword, value] of Object.entries(fromConnectionString ?? {})) {
    if (value !== '') parameters[keyword] = value;
  }
  parameters.replication = 'true';
  parameters.fallback_application_name = FALLBACK_APPLICATION_NAME;
  // libpq's conninfo_array_parse skips empty values, so `-h ''` leaves the host alone.
  const later: [string, string | undefined][] = [
    ['host', overrides.host],
    ['user', overrides.username],
    ['port', overrides.port],
    ['password', overrides.password],
  ];
  for (const [keyword, value] of later) {
    if (value !== undefined && value !== '') parameters[keyword] = value;
  }
  return parameters;
}
