import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { matchPasswordFileLine, readPasswordFile } from './index.js';
import { findPasswordInText } from './pgpass.js';

const key = { host: 'db.example.com', port: '5432', dbname: 'replication', user: 'alice' };

describe('.pgpass matching', () => {
  it('matches exact fields and * wildcards, in order', () => {
    expect(matchPasswordFileLine('db.example.com:5432:replication:alice:secret', key)).toBe('secret');
    expect(matchPasswordFileLine('*:*:*:*:any', key)).toBe('any');
    expect(matchPasswordFileLine('*:5432:*:alice:p', key)).toBe('p');
    expect(matchPasswordFileLine('db.example.com:5433:replication:alice:secret', key)).toBeUndefined();
    expect(matchPasswordFileLine('db.example.com:5432:replication:alic:secret', key)).toBeUndefined();
    expect(matchPasswordFileLine('db.example.com:5432:replication:alice2:secret', key)).toBeUndefined();
    // "*" only counts as a whole field: "*x" is literal.
    expect(matchPasswordFileLine('*x:*:*:*:p', key)).toBeUndefined();
  });

  it('honours backslash escapes in fields and in the password', () => {
    const colonKey = { host: 'h:1', port: '5432', dbname: 'd\\b', user: 'u*' };
    expect(matchPasswordFileLine('h\\:1:5432:d\\\\b:u*:pa\\:ss\\\\word', colonKey)).toBe('pa:ss\\word');
    // A literal "\*" matches only a user named "*".
    expect(matchPasswordFileLine('*:*:*:\\*:p', { ...key, user: '*' })).toBe('p');
    expect(matchPasswordFileLine('*:*:*:\\*:p', key)).toBeUndefined();
  });

  it('ends the password at the first unescaped colon', () => {
    expect(matchPasswordFileLine('*:*:*:*:one:two', key)).toBe('one');
  });

  it('skips comments and blank lines, strips CR, takes the first match', () => {
    const text = '# *:*:*:*:comment\r\n\r\n*:*:other:*:no\r\n*:*:*:alice:first\r\n*:*:*:*:second\n';
    expect(findPasswordInText(text, key)).toBe('first');
    expect(findPasswordInText('', key)).toBeUndefined();
  });

  it('does not match a line with too few fields', () => {
    expect(matchPasswordFileLine('db.example.com:5432:replication', key)).toBeUndefined();
  });
});

describe('readPasswordFile', () => {
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'pgpass-'));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('reads a 0600 file', async () => {
    const path = join(directory, 'good');
    await writeFile(path, '*:*:*:*:secret\n');
    await chmod(path, 0o600);
    const warnings: string[] = [];
    expect(await readPasswordFile(path, key, (warning) => warnings.push(warning))).toBe('secret');
    expect(warnings).toEqual([]);
  });

  it('ignores a file others can read, with libpq warning', async () => {
    const path = join(directory, 'open');
    await writeFile(path, '*:*:*:*:secret\n');
    await chmod(path, 0o640);
    const warnings: string[] = [];
    expect(await readPasswordFile(path, key, (warning) => warnings.push(warning))).toBeUndefined();
    expect(warnings).toEqual([
      `password file "${path}" has group or world access; permissions should be u=rw (0600) or less`,
    ]);
  });

  it('ignores something that is not a plain file', async () => {
    const path = join(directory, 'dir');
    await mkdir(path);
    const warnings: string[] = [];
    expect(await readPasswordFile(path, key, (warning) => warnings.push(warning))).toBeUndefined();
    expect(warnings).toEqual([`password file "${path}" is not a plain file`]);
  });

  it('silently ignores a missing file, and skips lookup without user or dbname', async () => {
    const warnings: string[] = [];
    expect(
      await readPasswordFile(join(directory, 'missing'), key, (warning) => warnings.push(warning)),
    ).toBeUndefined();
    const path = join(directory, 'good');
    expect(await readPasswordFile(path, { ...key, user: '' })).toBeUndefined();
    expect(await readPasswordFile(path, { ...key, dbname: '' })).toBeUndefined();
    expect(warnings).toEqual([]);
  });
});
