import { WalError } from '@wal/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeUriComponent, isConnectionUri } from './conninfo.js';
import { ConnectionStringError, parseConnectionString } from './index.js';

function errorOf(text: string): ConnectionStringError {
  try {
    parseConnectionString(text);
  } catch (error) {
    expect(error).toBeInstanceOf(ConnectionStringError);
    expect((error as ConnectionStringError).code).toBe('WAL_ERR_CONNINFO');
    return error as ConnectionStringError;
  }
  throw new Error(`expected ${JSON.stringify(text)} to be rejected`);
}

describe('parseConnectionString: key=value', () => {
  it('reads settings separated by any white space, with spaces around "="', () => {
    expect(parseConnectionString(" host=db1\tport = 5433\n user='al ice'  dbname=replication ")).toEqual({
      host: 'db1',
      port: '5433',
      user: 'al ice',
      dbname: 'replication',
    });
  });

  it('honours backslash escapes in quoted and unquoted values', () => {
    expect(parseConnectionString("password='it\\'s \\\\ ok' options=a\\ b")).toEqual({
      password: "it's \\ ok",
      options: 'a b',
    });
  });

  it('accepts empty values and lets later settings win', () => {
    expect(parseConnectionString("port='' host=a host=b")).toEqual({ host: 'b', port: '' });
    expect(parseConnectionString('host=')).toEqual({ host: '' });
    // As libpq: blanks after '=' are skipped, so the next word becomes the value.
    expect(parseConnectionString('host= port=1')).toEqual({ host: 'port=1' });
    expect(parseConnectionString('')).toEqual({});
  });

  it('translates requiressl like libpq', () => {
    expect(parseConnectionString('requiressl=1')).toEqual({ sslmode: 'require' });
    expect(parseConnectionString('requiressl=0')).toEqual({ sslmode: 'prefer' });
  });

  it('gives libpq messages for bad strings', () => {
    expect(errorOf('mydb').message).toBe('missing "=" after "mydb" in connection info string');
    expect(errorOf('host x=y').message).toBe('missing "=" after "host" in connection info string');
    expect(errorOf("host='db").message).toBe('unterminated quoted string in connection info string');
    expect(errorOf('hots=db').message).toBe('invalid connection option "hots"');
  });
});

describe('parseConnectionString: URI', () => {
  it('recognises both prefixes only', () => {
    expect(isConnectionUri('postgresql://')).toBe(true);
    expect(isConnectionUri('postgres://x')).toBe(true);
    expect(isConnectionUri('postgre://x')).toBe(false);
    expect(parseConnectionString('postgresql://')).toEqual({});
  });

  it('parses user, password, host, port, dbname and parameters, percent-decoded', () => {
    expect(
      parseConnectionString(
        'postgresql://al%40ice:p%3Ass@db.example.com:5433/my%20db?application_name=x&sslmode=verify-full',
      ),
    ).toEqual({
      user: 'al@ice',
      password: 'p:ss',
      host: 'db.example.com',
      port: '5433',
      dbname: 'my db',
      application_name: 'x',
      sslmode: 'verify-full',
    });
  });

  it('parses host lists with per-host ports and IPv6 addresses', () => {
    expect(parseConnectionString('postgres://h1:1,[::1]:2,h3/db')).toEqual({
      host: 'h1,::1,h3',
      port: '1,2,',
      dbname: 'db',
    });
    expect(parseConnectionString('postgres://a,b')).toEqual({ host: 'a,b', port: ',' });
    expect(parseConnectionString('postgres://[fe80::1%25eth0]')).toEqual({ host: 'fe80::1%eth0' });
  });

  it('takes a Unix socket directory from a percent-encoded host or the host parameter', () => {
    expect(parseConnectionString('postgresql://%2Fvar%2Frun%2Fpostgresql/db')).toEqual({
      host: '/var/run/postgresql',
      dbname: 'db',
    });
    expect(parseConnectionString('postgresql:///db?host=/tmp&port=5433')).toEqual({
      dbname: 'db',
      host: '/tmp',
      port: '5433',
    });
  });

  it('leaves dbname unset when empty and accepts user without password', () => {
    expect(parseConnectionString('postgresql://bob@h/')).toEqual({ user: 'bob', host: 'h' });
    expect(parseConnectionString('postgresql://:secret@h')).toEqual({ password: 'secret', host: 'h' });
    expect(parseConnectionString('postgresql://h?')).toEqual({ host: 'h' });
  });

  it('translates ssl=true to sslmode=require (JDBC compatibility)', () => {
    expect(parseConnectionString('postgresql://h?ssl=true')).toEqual({ host: 'h', sslmode: 'require' });
  });

  it('gives libpq messages for bad URIs', () => {
    expect(errorOf('postgresql://h?foo=1').message).toBe('invalid URI query parameter: "foo"');
    expect(errorOf('postgresql://h?ssl=false').message).toBe('invalid URI query parameter: "ssl"');
    expect(errorOf('postgresql://h/db%zz').message).toBe('invalid percent-encoded token: "db%zz"');
    expect(errorOf('postgresql://h/db%2').message).toBe('invalid percent-encoded token: "db%2"');
    expect(errorOf('postgresql://h/db%00').message).toBe(
      'forbidden value %00 in percent-encoded value: "db%00"',
    );
    expect(errorOf('postgresql://h/my db').message).toBe(
      'unexpected spaces found in "my db", use percent-encoded spaces (%20) instead',
    );
    expect(errorOf('postgresql://h?a=b=c').message).toBe(
      'extra key/value separator "=" in URI query parameter: "a"',
    );
    expect(errorOf('postgresql://h?port').message).toBe(
      'missing key/value separator "=" in URI query parameter: "port"',
    );
    expect(errorOf('postgresql://[::1').message).toBe(
      'end of string reached when looking for matching "]" in IPv6 host address in URI: "postgresql://[::1"',
    );
    expect(errorOf('postgresql://[]/db').message).toBe(
      'IPv6 host address may not be empty in URI: "postgresql://[]/db"',
    );
    expect(errorOf('postgresql://[::1]x').message).toBe(
      'unexpected character "x" at position 19 in URI (expected ":" or "/"): "postgresql://[::1]x"',
    );
  });

  it('never puts a password in a message', () => {
    expect(errorOf('postgresql://u:se%zzcret@h').message).toBe('invalid percent-encoded token: the password');
    expect(errorOf('postgresql://h?password=se%00cret').message).toBe(
      'forbidden value %00 in percent-encoded value: the password',
    );
    expect(errorOf('postgresql://u:se cret@h').message).toBe(
      'unexpected spaces found in the password, use percent-encoded spaces (%20) instead',
    );
  });

  it('drops surrounding spaces of a component, as libpq', () => {
    expect(decodeUriComponent(' a%20b ')).toBe('a b');
  });
});

describe('parseConnectionString on arbitrary input', () => {
  it('returns keywords or throws ConnectionStringError, nothing else', () => {
    const alphabet = fc.constantFrom(..."postgresql://@:/?&=[]%,'\\ \t0aF%host=user=port".split(''));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string({ unit: alphabet }),
          fc.string({ unit: alphabet }).map((text) => `postgresql://${text}`),
        ),
        (text) => {
          try {
            const result = parseConnectionString(text);
            expect(typeof result).toBe('object');
          } catch (error) {
            expect(error).toBeInstanceOf(ConnectionStringError);
            expect(error).toBeInstanceOf(WalError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
