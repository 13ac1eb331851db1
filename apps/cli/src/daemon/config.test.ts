import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDaemonConfig, parseDaemonConfig } from './config.js';
import { DaemonConfigError } from './config-error.js';

const base = mkdtempSync(join(tmpdir(), 'wal-daemon-config-'));
for (const name of ['a', 'b', 'spool', 'spool2']) mkdirSync(join(base, name));
const FILE = join(base, 'daemon.yaml');

afterAll(() => rmSync(base, { recursive: true, force: true }));

function refusal(text: string): DaemonConfigError {
  try {
    parseDaemonConfig(FILE, text);
  } catch (error) {
    if (error instanceof DaemonConfigError) return error;
    throw error;
  }
  throw new Error('the configuration was accepted');
}

const serverA = [
  '  - name: main',
  '    conninfo: host=db1 user=archiver',
  `    directory: ${join(base, 'a')}`,
];

function s3Server(name: string, url: string, spool: string): string[] {
  return [`  - name: ${name}`, '    conninfo: x', `    directory: ${url}`, `    spool: ${spool}`];
}

describe('wal daemon configuration', () => {
  it('maps each key to the option of wal receive it names', () => {
    const config = parseDaemonConfig(
      FILE,
      [
        'metrics_address: 127.0.0.1:9187',
        'log_format: json',
        'servers:',
        ...serverA,
        '    slot: archive',
        '    create-slot: true',
        '    compress: lz4',
        '    status-interval: 3',
        '    verbose: 2',
        '    synchronous: true',
        '  - name: other',
        '    conninfo: host=db2',
        '    directory: b',
        '    no-sync: true',
      ].join('\n'),
    );
    expect(config.metricsAddress).toEqual({ host: '127.0.0.1', port: 9187 });
    expect(config.logFormat).toBe('json');
    const [main, other] = config.servers;
    expect(main).toMatchObject({ name: 'main', line: 4, ensureSlot: true });
    expect(main!.options).toMatchObject({
      action: 'stream',
      directory: join(base, 'a'),
      connectionString: 'host=db1 user=archiver',
      slot: 'archive',
      statusIntervalMs: 3000,
      verbose: 2,
      synchronous: true,
      password: 'never',
      ifNotExists: false,
    });
    expect(main!.options.compression.method).toBe('lz4');
    // A relative directory is taken from the file's directory.
    expect(other!.options).toMatchObject({ directory: join(base, 'b'), sync: false });
  });

  it('the identity changes with any key and not with the order of the keys', () => {
    const identity = (lines: string[]) =>
      parseDaemonConfig(FILE, ['servers:', ...lines].join('\n')).servers[0]!.identity;
    const first = identity([...serverA, '    slot: s']);
    expect(identity([serverA[0]!, '    slot: s', ...serverA.slice(1)])).toBe(first);
    expect(identity([...serverA, '    slot: t'])).not.toBe(first);
  });

  it.each([
    [
      'unknown top-level key',
      ['metrics_adress: 1:2', 'servers: []'],
      1,
      /key "metrics_adress"|metrics_adress: unknown key/,
    ],
    [
      'unknown server key',
      ['servers:', ...serverA, '    slto: x'],
      5,
      /server "main" key "slto": unknown key \(known keys: name, conninfo/,
    ],
    [
      'refused option',
      ['servers:', ...serverA, '    drop-slot: true'],
      5,
      /server "main" key "drop-slot": not taken by wal daemon: dropping a slot/,
    ],
    [
      'wrong type',
      ['servers:', ...serverA, '    synchronous: "yes"'],
      5,
      /server "main" key "synchronous": must be true or false/,
    ],
    ['list as value', ['servers:', ...serverA, '    slot: [a, b]'], 5, /key "slot": must be a single value/],
    [
      'missing name',
      ['servers:', '  - conninfo: x', `    directory: ${base}/a`],
      2,
      /servers\[0\] key "name": missing/,
    ],
    [
      'missing conninfo',
      ['servers:', '  - name: x', `    directory: ${base}/a`],
      2,
      /server "x" key "conninfo": missing/,
    ],
    [
      'missing directory',
      ['servers:', '  - name: x', '    conninfo: host=x'],
      2,
      /server "x" key "directory": missing/,
    ],
    [
      'absent directory',
      ['servers:', '  - name: x', '    conninfo: host=x', `    directory: ${base}/nope`],
      4,
      /key "directory": could not open directory ".*nope": No such file or directory/,
    ],
    [
      'duplicate name',
      ['servers:', ...serverA, '  - name: main', '    conninfo: x', `    directory: ${base}/b`],
      5,
      /server "main": the name is taken by the server at line 2/,
    ],
    [
      'shared directory',
      ['servers:', ...serverA, '  - name: two', '    conninfo: x', `    directory: ${base}/a/`],
      5,
      /server "two" key "directory": ".*a" is the directory of server "main" \(line 2\)/,
    ],
    [
      'bad option value',
      ['servers:', ...serverA, '    status-interval: soon'],
      5,
      /key "status-interval": invalid value "soon" for option -s\/--status-interval/,
    ],
    ['bad compression', ['servers:', ...serverA, '    compress: brotli'], 5, /key "compress": .*brotli/],
    [
      'option combination',
      ['servers:', ...serverA, '    synchronous: true', '    no-sync: true'],
      2,
      /server "main": cannot use --synchronous together with --no-sync/,
    ],
    [
      'create-slot without slot',
      ['servers:', ...serverA, '    create-slot: true'],
      5,
      /key "create-slot": needs a slot/,
    ],
    ['YAML syntax', ['servers:', ...serverA, '    slot: [a', '  - b: 1'], 6, /not valid YAML: /],
    [
      'unclosed quote at the end',
      ['servers:', ...serverA, '    slot: "archive', ''],
      5,
      /Missing closing "quote/,
    ],
    [
      'duplicate key',
      ['servers:', ...serverA, '    name: again'],
      5,
      /not valid YAML: Map keys must be unique/,
    ],
    ['no servers', ['log_format: text'], 1, /no "servers" list/],
    [
      'bad metrics address',
      ['metrics_address: localhost', 'servers: []'],
      1,
      /metrics_address: invalid metrics address "localhost": expected HOST:PORT/,
    ],
    [
      'bad server name',
      ['servers:', '  - name: "a b"', '    conninfo: x', `    directory: ${base}/a`],
      2,
      /key "name": "a b" is not a server name/,
    ],
  ])('%s: refused with the file, line and key', (_kind, lines, line, pattern) => {
    const error = refusal(lines.join('\n'));
    expect(error.code).toBe('WAL_ERR_CLI_DAEMON_CONFIG');
    expect(error.message.startsWith(`${FILE}:${line}: `), error.message).toBe(true);
    expect(error.message).toMatch(pattern);
  });

  it('an s3 directory takes a spool (relative to the file), ack and partial-upload-interval', () => {
    const config = parseDaemonConfig(
      FILE,
      [
        'servers:',
        ...serverA,
        '  - name: cloud',
        '    conninfo: host=db2',
        '    directory: s3://bucket/main/',
        '    spool: spool',
        '    ack: remote',
        '    partial-upload-interval: 5',
      ].join('\n'),
    );
    const cloud = config.servers[1]!;
    expect(cloud.storeUrl).toBe('s3://bucket/main');
    expect(config.servers[0]!.storeUrl).toBeUndefined();
    expect(cloud.options).toMatchObject({
      directory: 's3://bucket/main/',
      spool: join(base, 'spool'),
      ack: 'remote',
      partialUploadIntervalMs: 5000,
    });
  });

  it("an s3 server's identity changes with its ack", () => {
    const identity = (ack: string) =>
      parseDaemonConfig(
        FILE,
        ['servers:', ...s3Server('c', 's3://bucket/c', 'spool'), `    ack: ${ack}`].join('\n'),
      ).servers[0]!.identity;
    expect(identity('remote')).not.toBe(identity('local'));
  });

  it.each([
    [
      'no spool',
      ['servers:', '  - name: c', '    conninfo: x', '    directory: s3://bucket/c'],
      4,
      /server "c" key "directory": -D s3:\/\/… needs --spool=DIR: a local directory WAL is written to/,
    ],
    [
      'absent spool',
      ['servers:', ...s3Server('c', 's3://bucket/c', 'nope')],
      5,
      /server "c" key "spool": could not open directory ".*nope": No such file or directory/,
    ],
    [
      'empty spool',
      ['servers:', ...s3Server('c', 's3://bucket/c', '""')],
      5,
      /key "spool": must be a non-empty/,
    ],
    [
      'spool with a local directory',
      ['servers:', ...serverA, '    spool: spool'],
      5,
      /server "main" key "spool": --spool is only used with -D s3:\/\/BUCKET\/PREFIX/,
    ],
    [
      'ack remote with a local directory',
      ['servers:', ...serverA, '    ack: remote'],
      5,
      /server "main" key "ack": --ack=remote is only used with -D s3:\/\//,
    ],
    [
      'bad ack',
      ['servers:', ...s3Server('c', 's3://bucket/c', 'spool'), '    ack: cloud'],
      6,
      /server "c" key "ack": invalid value "cloud" for option --ack/,
    ],
    [
      'bad partial-upload-interval',
      ['servers:', ...s3Server('c', 's3://bucket/c', 'spool'), '    partial-upload-interval: soon'],
      6,
      /server "c" key "partial-upload-interval": invalid value "soon" for option --partial-upload-interval/,
    ],
    [
      'bad URL',
      ['servers:', ...s3Server('c', 's3://Bucket/c', 'spool')],
      4,
      /server "c" key "directory": "s3:\/\/Bucket\/c" is not a valid S3 location: the bucket name/,
    ],
    [
      'shared store location, spelled differently',
      ['servers:', ...s3Server('c', 's3://bucket/c', 'spool'), ...s3Server('d', 'S3://bucket/c/', 'spool2')],
      6,
      /server "d" key "directory": "s3:\/\/bucket\/c" is the directory of server "c" \(line 2\)/,
    ],
    [
      'shared spool',
      [
        'servers:',
        ...s3Server('c', 's3://bucket/c', 'spool'),
        ...s3Server('d', 's3://bucket/d', `${base}/spool/`),
      ],
      6,
      /server "d" key "spool": ".*spool" is the spool of server "c" \(line 2\)/,
    ],
    [
      "spool is another server's directory",
      ['servers:', ...serverA, ...s3Server('c', 's3://bucket/c', 'a')],
      5,
      /server "c" key "spool": ".*a" is the directory of server "main" \(line 2\)/,
    ],
    [
      "directory is another server's spool",
      ['servers:', ...s3Server('c', 's3://bucket/c', 'a'), ...serverA],
      6,
      /server "main" key "directory": ".*a" is the spool of server "c" \(line 2\)/,
    ],
  ])('object storage, %s: refused with the file, line and key', (_kind, lines, line, pattern) => {
    const error = refusal(lines.join('\n'));
    expect(error.code).toBe('WAL_ERR_CLI_DAEMON_CONFIG');
    expect(error.message.startsWith(`${FILE}:${line}: `), error.message).toBe(true);
    expect(error.message).toMatch(pattern);
  });

  it('an unreadable file is refused with its name', () => {
    expect(() => loadDaemonConfig(join(base, 'missing.yaml'))).toThrow(/missing\.yaml: could not read: /);
  });
});
