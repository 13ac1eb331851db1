import { describe, expect, it } from 'vitest';
import { FALLBACK_APPLICATION_NAME, replicationConnectionParameters } from './connection-parameters.js';

const NONE = { host: undefined, username: undefined, port: undefined };

describe('replicationConnectionParameters (spec §1.4)', () => {
  it('asks for the replication pseudo-database by default', () => {
    expect(replicationConnectionParameters(undefined, NONE)).toEqual({
      dbname: 'replication',
      replication: 'true',
      fallback_application_name: FALLBACK_APPLICATION_NAME,
    });
  });

  it('lets -d override dbname but never replication, and skips empty values', () => {
    const parameters = replicationConnectionParameters(
      { dbname: 'postgres', replication: 'database', host: 'db1', sslmode: '', application_name: 'mine' },
      NONE,
    );
    expect(parameters).toEqual({
      dbname: 'postgres',
      replication: 'true',
      host: 'db1',
      application_name: 'mine',
      fallback_application_name: FALLBACK_APPLICATION_NAME,
    });
  });

  it('lets -h, -U and -p override the same keywords inside -d (observed PostgreSQL 15)', () => {
    const parameters = replicationConnectionParameters(
      { host: 'from-d', port: '55433', user: 'd-user' },
      { host: 'from-h', port: '55432', username: 'u-user' },
    );
    expect(parameters).toMatchObject({ host: 'from-h', port: '55432', user: 'u-user' });
  });

  it('ignores empty -h/-p/-U as libpq does, and adds a prompted password last', () => {
    const parameters = replicationConnectionParameters(
      { host: 'from-d', password: 'in-d' },
      { host: '', port: undefined, username: undefined, password: 'typed' },
    );
    expect(parameters).toMatchObject({ host: 'from-d', password: 'typed' });
  });
});
