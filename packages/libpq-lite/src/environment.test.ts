import { describe, expect, it } from 'vitest';
import { ConnectionStringError, defaultSocketDirectory, resolveSettings } from './index.js';

const noSocketDir = () => false;
const resolve = (parameters: Record<string, string>, env: Record<string, string | undefined> = {}) =>
  resolveSettings(parameters, {
    env: { HOME: '/home/u', ...env },
    socketDirectoryExists: noSocketDir,
    fileExists: () => false,
  });

function rejection(parameters: Record<string, string>, env: Record<string, string | undefined> = {}): string {
  try {
    resolve(parameters, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConnectionStringError);
    return (error as Error).message;
  }
  throw new Error('expected the settings to be rejected');
}

describe('resolveSettings', () => {
  it('fills unset keywords from PG* variables, explicit values win', () => {
    const settings = resolve(
      { user: 'explicit', replication: 'true' },
      {
        PGUSER: 'fromenv',
        PGHOST: 'db',
        PGPORT: '6000',
        PGPASSWORD: 'pw',
        PGAPPNAME: 'app',
        PGDATABASE: 'replication',
        PGSSLMODE: 'require',
        PGCONNECT_TIMEOUT: '1',
        PGCHANNELBINDING: 'require',
        PGOPTIONS: '-c x=y',
        PGPASSFILE: '/p',
        PGSSLROOTCERT: '/ca',
        PGSSLCERT: '/c',
        PGSSLKEY: '/k',
        PGTARGETSESSIONATTRS: 'read-write',
        PGSSLNEGOTIATION: 'direct',
      },
    );
    expect(settings.user).toBe('explicit');
    expect(settings.targets).toEqual([
      { host: 'db', hostaddr: '', port: 6000, socketPath: undefined, displayHost: 'db' },
    ]);
    expect(settings.password).toBe('pw');
    expect(settings.passfile).toBe('/p');
    expect(settings.sslmode).toBe('require');
    expect(settings.sslnegotiation).toBe('direct');
    expect(settings.sslrootcert).toBe('/ca');
    expect(settings.sslcert).toBe('/c');
    expect(settings.sslkey).toBe('/k');
    expect(settings.channelBinding).toBe('require');
    // libpq raises 1 second to 2.
    expect(settings.connectTimeoutMs).toBe(2000);
    expect(settings.startupParameters).toEqual({
      user: 'explicit',
      database: 'replication',
      replication: 'true',
      application_name: 'app',
      options: '-c x=y',
    });
  });

  it('uses defaults: Unix socket, port 5432, dbname = user, prefer, ~/.pgpass', () => {
    const settings = resolve({ user: 'u' });
    expect(settings.targets).toEqual([
      { host: '', hostaddr: '', port: 5432, socketPath: '/tmp/.s.PGSQL.5432', displayHost: '/tmp' },
    ]);
    expect(settings.dbname).toBe('u');
    expect(settings.sslmode).toBe('prefer');
    expect(settings.channelBinding).toBe('prefer');
    expect(settings.passfile).toBe('/home/u/.pgpass');
    expect(settings.sslrootcert).toBe('/home/u/.postgresql/root.crt');
    expect(settings.connectTimeoutMs).toBeUndefined();
    expect(settings.maxProtocolVersion).toEqual({ major: 3, minor: 0 });
  });

  it('prefers the Debian socket directory when it exists', () => {
    expect(defaultSocketDirectory((path) => path === '/var/run/postgresql')).toBe('/var/run/postgresql');
    expect(defaultSocketDirectory(() => false)).toBe('/tmp');
  });

  it('uses fallback_application_name only without application_name', () => {
    expect(resolve({ user: 'u', fallback_application_name: 'f' }).startupParameters.application_name).toBe(
      'f',
    );
    expect(
      resolve({ user: 'u', fallback_application_name: 'f', application_name: 'a' }).startupParameters
        .application_name,
    ).toBe('a');
  });

  it('maps PGREQUIRESSL when sslmode is unset', () => {
    expect(resolve({ user: 'u' }, { PGREQUIRESSL: '1' }).sslmode).toBe('require');
    expect(resolve({ user: 'u', sslmode: 'disable' }, { PGREQUIRESSL: '1' }).sslmode).toBe('disable');
  });

  it('expands host lists with per-host ports, hostaddr and socket directories', () => {
    const settings = resolve({ user: 'u', host: 'a,/sock,@abstract', port: '1,2,3' });
    expect(settings.targets.map((target) => [target.host, target.port, target.socketPath])).toEqual([
      ['a', 1, undefined],
      ['/sock', 2, '/sock/.s.PGSQL.2'],
      ['@abstract', 3, '\0abstract/.s.PGSQL.3'],
    ]);
    const single = resolve({ user: 'u', host: 'a,b', port: '7' });
    expect(single.targets.map((target) => target.port)).toEqual([7, 7]);
    const byAddress = resolve({ user: 'u', host: 'name', hostaddr: '127.0.0.1' });
    expect(byAddress.targets[0]).toMatchObject({
      host: 'name',
      hostaddr: '127.0.0.1',
      socketPath: undefined,
    });
    const addressOnly = resolve({ user: 'u', hostaddr: '::1' });
    expect(addressOnly.targets[0]).toMatchObject({ host: '', hostaddr: '::1', displayHost: '::1' });
    expect(resolve({ user: 'u', host: 'a,b', port: ',' }).targets.map((target) => target.port)).toEqual([
      5432, 5432,
    ]);
  });

  it('reads target_session_attrs from the keyword, then PGTARGETSESSIONATTRS, default any', () => {
    expect(resolve({ user: 'u' }).targetSessionAttrs).toBe('any');
    expect(resolve({ user: 'u' }, { PGTARGETSESSIONATTRS: 'standby' }).targetSessionAttrs).toBe('standby');
    expect(
      resolve({ user: 'u', target_session_attrs: 'prefer-standby' }, { PGTARGETSESSIONATTRS: 'standby' })
        .targetSessionAttrs,
    ).toBe('prefer-standby');
  });

  it('accepts protocol 3.2 through max_protocol_version', () => {
    expect(resolve({ user: 'u', max_protocol_version: 'latest' }).maxProtocolVersion.minor).toBe(2);
    expect(resolve({ user: 'u', max_protocol_version: '3.2' }).maxProtocolVersion.minor).toBe(2);
  });

  it('rejects bad values with libpq messages', () => {
    expect(rejection({ user: 'u', sslmode: 'bogus' })).toBe('invalid sslmode value: "bogus"');
    expect(rejection({ user: 'u', channel_binding: 'x' })).toBe('invalid channel_binding value: "x"');
    expect(rejection({ user: 'u', sslnegotiation: 'x' })).toBe('invalid sslnegotiation value: "x"');
    expect(rejection({ user: 'u', sslnegotiation: 'direct' })).toBe(
      'weak sslmode "prefer" may not be used with sslnegotiation=direct (use "require", "verify-ca", or "verify-full")',
    );
    expect(rejection({ user: 'u', sslrootcert: 'system', sslmode: 'require' })).toBe(
      'weak sslmode "require" may not be used with sslrootcert=system (use "verify-full")',
    );
    expect(rejection({ user: 'u', port: 'abc' })).toBe(
      'invalid integer value "abc" for connection option "port"',
    );
    expect(rejection({ user: 'u', port: '70000' })).toBe('invalid port number: "70000"');
    expect(rejection({ user: 'u', host: 'a,b,c', port: '1,2' })).toBe(
      'could not match 2 port numbers to 3 hosts',
    );
    expect(rejection({ user: 'u', host: 'a,b', hostaddr: '127.0.0.1' })).toBe(
      'could not match 2 host names to 1 hostaddr values',
    );
    expect(rejection({ user: 'u', connect_timeout: '10s' })).toBe(
      'invalid integer value "10s" for connection option "connect_timeout"',
    );
    expect(rejection({ user: 'u', max_protocol_version: '3.1' })).toBe(
      'invalid max_protocol_version value: "3.1"',
    );
    expect(rejection({ user: 'u', min_protocol_version: '3.2' })).toBe(
      'min_protocol_version is greater than max_protocol_version',
    );
    expect(rejection({ user: 'u', target_session_attrs: 'x' })).toBe(
      'invalid target_session_attrs value: "x"',
    );
    expect(
      rejection({ user: 'u', ssl_min_protocol_version: 'TLSv1.3', ssl_max_protocol_version: 'TLSv1.2' }),
    ).toBe('invalid SSL protocol version range');
    expect(rejection({ user: 'u', gssencmode: 'require' })).toBe(
      'gssencmode value "require" invalid when GSSAPI support is not compiled in',
    );
    expect(rejection({ user: 'u', require_auth: 'md5,!password' })).toBe(
      'negative require_auth method "!password" cannot be mixed with non-negative methods',
    );
    expect(rejection({ user: 'u', require_auth: 'kerberos' })).toBe('invalid require_auth value: "kerberos"');
    expect(rejection({ user: 'u', bogus: 'x' })).toBe('invalid connection option "bogus"');
    expect(rejection({ user: 'u' }, { PGSERVICE: 'main' })).toMatch(/^service "main" cannot be used/);
    expect(rejection({ user: 'u', requirepeer: 'postgres' })).toMatch(/^requirepeer is not supported/);
  });

  it('treats connect_timeout 0 as no timeout', () => {
    expect(resolve({ user: 'u', connect_timeout: '0' }).connectTimeoutMs).toBeUndefined();
    expect(resolve({ user: 'u', connect_timeout: ' 10 ' }).connectTimeoutMs).toBe(10_000);
  });
});
