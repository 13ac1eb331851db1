import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServerError } from '@wal/libpq-lite';
import { WalError } from '@wal/protocol';
import { StreamError } from '@wal/stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Logger } from './log.js';
import {
  DROP_IN_NAME,
  invokedAsDropIn,
  type ReceiveEnvironment,
  receiveFastPathArguments,
  receiveMain,
  runReceive,
  runReceiveCommand,
} from './receive.js';
import { receiveHelpText } from './receive-help.js';
import { parseReceiveCommandLine, type ReceiveOptions } from './receive-options.js';
import { CapturedOutput } from './test-support.js';

/**
 * `wal receive` (src/receive.ts), in the order a run takes it: the fast path bin/run.js asks,
 * the process around the command, the command line through `receiveMain`, then `runReceive`
 * against fake connections and streams.
 */

describe('receiveFastPathArguments', () => {
  it('takes `receive` with its arguments, minus the command name', () => {
    expect(receiveFastPathArguments(['receive'])).toEqual([]);
    expect(receiveFastPathArguments(['receive', '-D', 'wal', '--endpos=0/3000000', '-V'])).toEqual([
      '-D',
      'wal',
      '--endpos=0/3000000',
      '-V',
    ]);
    expect(receiveFastPathArguments(['receive', '--version'])).toEqual(['--version']);
    expect(receiveFastPathArguments(['receive', '-?'])).toEqual(['-?']);
  });

  it('leaves every other command line to oclif', () => {
    expect(receiveFastPathArguments([])).toBeUndefined();
    expect(receiveFastPathArguments(['--help'])).toBeUndefined();
    expect(receiveFastPathArguments(['--version'])).toBeUndefined();
    expect(receiveFastPathArguments(['demo'])).toBeUndefined();
    expect(receiveFastPathArguments(['receiver'])).toBeUndefined();
    expect(receiveFastPathArguments(['help', 'receive'])).toBeUndefined();
    expect(receiveFastPathArguments(['-D', 'wal', 'receive'])).toBeUndefined();
  });

  it('leaves `--help` before `--` to oclif, which answers it anywhere on the line', () => {
    expect(receiveFastPathArguments(['receive', '--help'])).toBeUndefined();
    expect(receiveFastPathArguments(['receive', '-D', 'wal', '--help'])).toBeUndefined();
    expect(receiveFastPathArguments(['receive', '--', '--help'])).toEqual(['--', '--help']);
    // Only the exact flag: `-h` is pg_receivewal's host, and `--help=x` is not oclif's flag.
    expect(receiveFastPathArguments(['receive', '-h', 'db1'])).toEqual(['-h', 'db1']);
    expect(receiveFastPathArguments(['receive', '--help=x'])).toEqual(['--help=x']);
  });
});

describe('the process around the command (runReceiveCommand)', () => {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };

  async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const stdout = new CapturedOutput();
    const stderr = new CapturedOutput();
    const code = await runReceiveCommand(argv, { stdout, stderr });
    return { code, stdout: stdout.text, stderr: stderr.text };
  }

  describe('runReceiveCommand (wal receive without oclif)', () => {
    it('prints the version oclif reported: the package version, program `wal receive`', async () => {
      for (const flag of ['--version', '-V']) {
        expect(await run(flag)).toEqual({
          code: 0,
          stdout: `wal receive (wal) ${manifest.version}\n`,
          stderr: '',
        });
      }
    });

    it('prints the pg_receivewal-style help for -?', async () => {
      expect(await run('-?')).toEqual({ code: 0, stdout: receiveHelpText('wal receive'), stderr: '' });
    });

    it('refuses a bad command line with exit 1 and the hint, as through oclif', async () => {
      const result = await run('--bogus');
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toBe(
        `wal receive: unrecognized option '--bogus'\nwal receive: hint: Try "wal receive --help" for more information.\n`,
      );
    });

    it('reports an error that escapes the command the way BaseCommand did: one error line, exit 1', async () => {
      const stderr = new CapturedOutput();
      const stdout = {
        write(): never {
          throw new Error('stdout is gone');
        },
      };
      const code = await runReceiveCommand(['--version'], { stdout, stderr });
      expect(code).toBe(1);
      expect(stderr.text).toBe('wal receive: error: stdout is gone\n');
    });
  });

  describe('under the name pg_receivewal (a symlink to bin/run.js)', () => {
    it('is recognised by the base name of the script path Node.js reports', () => {
      expect(invokedAsDropIn('/usr/local/bin/pg_receivewal')).toBe(true);
      expect(invokedAsDropIn('/opt/wal/apps/cli/bin/run.js')).toBe(false);
      expect(invokedAsDropIn('/usr/local/bin/pg_receivewal.old')).toBe(false);
      expect(invokedAsDropIn('/srv/pg_receivewal/run.js')).toBe(false);
      expect(invokedAsDropIn(undefined)).toBe(false);
    });

    async function runAs(...argv: string[]): Promise<{ code: number; stderr: string }> {
      const stdout = new CapturedOutput();
      const stderr = new CapturedOutput();
      const code = await runReceiveCommand(argv, { stdout, stderr }, DROP_IN_NAME);
      return { code, stderr: stderr.text };
    }

    it('names itself pg_receivewal in every line, hint included', async () => {
      expect(await runAs('--bogus')).toEqual({
        code: 1,
        stderr:
          "pg_receivewal: unrecognized option '--bogus'\n" +
          'pg_receivewal: hint: Try "pg_receivewal --help" for more information.\n',
      });
    });

    it('refuses zstd as pg_receivewal 15 does, whatever Node.js offers', async () => {
      const directory = mkdtempSync(join(tmpdir(), 'wal-drop-in-'));
      try {
        expect(await runAs('-D', directory, '-Z', 'zstd')).toEqual({
          code: 1,
          stderr: 'pg_receivewal: error: compression with ZSTD is not yet supported\n',
        });
      } finally {
        rmSync(directory, { recursive: true });
      }
    });
  });
});

describe('the command line (receiveMain)', () => {
  /**
   * PostgreSQL's TAP test src/bin/pg_basebackup/t/020_pg_receivewal.pl, cases 1-10 (spec §8.2),
   * with `pg_receivewal` read as `wal receive`. None of them reaches a server: a connection attempt
   * would fail this suite, because the environment below has none to give.
   */

  let directory: string;

  beforeAll(() => {
    directory = mkdtempSync(join(tmpdir(), 'wal-cli-main-'));
  });

  afterAll(() => {
    rmSync(directory, { recursive: true, force: true });
  });

  async function run(...argv: string[]) {
    const stdout = new CapturedOutput();
    const stderr = new CapturedOutput();
    const code = await receiveMain(argv, {
      program: 'wal receive',
      version: '1.2.3',
      stdout,
      stderr,
      environment: {
        connect: async () => {
          throw new Error('this test must not connect');
        },
      },
    });
    return { code, stdout: stdout.text, stderr: stderr.text };
  }

  const HINT = 'wal receive: hint: Try "wal receive --help" for more information.\n';

  describe('TAP 020_pg_receivewal.pl cases 1-10', () => {
    it('1. --help: exit 0, stdout only, no line over 95 characters', async () => {
      for (const flag of ['--help', '-?']) {
        const result = await run(flag);
        expect(result.code).toBe(0);
        expect(result.stdout).not.toBe('');
        expect(result.stderr).toBe('');
        for (const line of result.stdout.split('\n')) expect(line.length).toBeLessThanOrEqual(95);
        expect(result.stdout).toContain('Connection options:');
        expect(result.stdout).toContain('Optional actions:');
      }
    });

    it('2. --version: exit 0, stdout only', async () => {
      for (const flag of ['--version', '-V']) {
        const result = await run(flag);
        expect(result).toEqual({ code: 0, stdout: 'wal receive (wal) 1.2.3\n', stderr: '' });
      }
    });

    it('3. an unknown option: the complaint and the hint, exit 1', async () => {
      expect(await run('--not-a-valid-option')).toEqual({
        code: 1,
        stdout: '',
        stderr: `wal receive: unrecognized option '--not-a-valid-option'\n${HINT}`,
      });
    });

    it('4. no arguments: no target directory', async () => {
      expect(await run()).toEqual({
        code: 1,
        stdout: '',
        stderr: `wal receive: error: no target directory specified\n${HINT}`,
      });
    });

    it.each(['123456789/0', '1/2/3'])('5-6. --endpos %s: could not parse end position', async (lsn) => {
      const result = await run('--directory', directory, '--endpos', lsn);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(`wal receive: error: could not parse end position "${lsn}"\n`);
    });

    it('7. --create-slot with --drop-slot', async () => {
      const result = await run('--directory', directory, '--create-slot', '--drop-slot');
      expect(result).toEqual({
        code: 1,
        stdout: '',
        stderr: `wal receive: error: cannot use --create-slot together with --drop-slot\n${HINT}`,
      });
    });

    it('8. --create-slot without --slot', async () => {
      const result = await run('--directory', directory, '--create-slot');
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(
        `wal receive: error: --create-slot needs a slot to be specified using --slot\n${HINT}`,
      );
    });

    it('9. --synchronous with --no-sync', async () => {
      const result = await run('--directory', directory, '--synchronous', '--no-sync');
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(
        `wal receive: error: cannot use --synchronous together with --no-sync\n${HINT}`,
      );
    });

    it('10. --compress none:1', async () => {
      const result = await run('--directory', directory, '--compress', 'none:1');
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        /^wal receive: error: invalid compression specification: compression algorithm "none" does not accept a compression level\n$/,
      );
    });
  });

  describe('receiveMain: more refusals', () => {
    it('refuses a missing directory before connecting', async () => {
      const missing = join(directory, 'nope');
      expect(await run('-D', missing)).toEqual({
        code: 1,
        stdout: '',
        stderr: `wal receive: error: could not open directory "${missing}": No such file or directory\n`,
      });
    });

    it('refuses --version anywhere but first, as pg_receivewal does', async () => {
      const result = await run('-D', directory, '--version');
      expect(result.code).toBe(1);
      // pg_receivewal 15's getopt knows --version; its option loop answers with the hint alone.
      expect(result.stderr).toBe(HINT);
    });

    it('reports a refused command line as JSON with --json', async () => {
      const result = await run('--json', '-s', 'abc');
      expect(result.code).toBe(1);
      const record = JSON.parse(result.stderr);
      expect(record).toMatchObject({
        level: 'error',
        program: 'wal receive',
        message: 'invalid value "abc" for option -s/--status-interval',
        code: 'WAL_ERR_CLI_INVALID_VALUE',
        // The label of the metrics of `wal receive`'s one server.
        server: 'default',
      });
    });

    it('status interval range message has no hint, as pg_fatal', async () => {
      expect(await run('-D', directory, '-s', '2147484')).toEqual({
        code: 1,
        stdout: '',
        stderr: 'wal receive: error: -s/--status-interval must be in range 0..2147483\n',
      });
    });
  });
});

/** A server error as libpq-lite raises it (code, SQLSTATE, severity). */
/** libpq-lite's own error for an ErrorResponse, as the connection raises it. */
function serverError(code: string, message: string): ServerError {
  return new ServerError({ severity: 'ERROR', code, message });
}

interface FakeConnection {
  calls: string[];
  identifySystem(): Promise<{
    systemId: bigint;
    timeline: number;
    xlogPosition: bigint;
    databaseName: string | null;
  }>;
  createReplicationSlot(
    slot: string,
    options?: { reserveWal?: boolean },
  ): Promise<{ slotName: string; consistentPoint: bigint }>;
  dropReplicationSlot(slot: string): Promise<void>;
  close(): Promise<void>;
  destroy(): void;
}

function fakeConnection(overrides: Partial<FakeConnection> = {}): FakeConnection {
  const calls: string[] = [];
  return {
    calls,
    async identifySystem() {
      calls.push('IDENTIFY_SYSTEM');
      return { systemId: 7n, timeline: 1, xlogPosition: 0x3000000n, databaseName: null };
    },
    async createReplicationSlot(slot, options) {
      calls.push(`CREATE ${slot} reserveWal=${options?.reserveWal}`);
      return { slotName: slot, consistentPoint: 0n };
    },
    async dropReplicationSlot(slot) {
      calls.push(`DROP ${slot}`);
    },
    async close() {
      calls.push('close');
    },
    destroy() {
      calls.push('destroy');
    },
    ...overrides,
  };
}

type AnyEvent = Record<string, unknown> & { type: string };

interface Harness {
  stderr: CapturedOutput;
  connectCalls: { parameters: Record<string, string>; options: Record<string, unknown> }[];
  receiveCalls: Record<string, unknown>[];
  sinkCalls: Record<string, unknown>[];
  prompts: number;
  stopHandler: (() => void) | undefined;
  unsubscribed: boolean;
  environment: ReceiveEnvironment;
}

function harness(
  setup: {
    connections?: (FakeConnection | Error)[];
    events?: (options: Record<string, unknown>, harness: Harness) => AsyncIterable<AnyEvent>;
    json?: boolean;
    isTTY?: boolean;
    parseConnectionString?: (text: string) => Record<string, string>;
    password?: string;
  } = {},
): Harness {
  const connections = setup.connections ?? [fakeConnection()];
  const state: Harness = {
    stderr: new CapturedOutput(setup.isTTY ?? false),
    connectCalls: [],
    receiveCalls: [],
    sinkCalls: [],
    prompts: 0,
    stopHandler: undefined,
    unsubscribed: false,
    environment: undefined as unknown as ReceiveEnvironment,
  };
  const environment = {
    logger: new Logger({ program: 'wal receive', output: state.stderr, json: setup.json ?? false }),
    env: { PGTEST: '1' },
    parseConnectionString:
      setup.parseConnectionString ??
      ((text: string) =>
        Object.fromEntries(text.split(' ').map((pair) => pair.split('=') as [string, string]))),
    connect: async (parameters: Record<string, string>, options: Record<string, unknown>) => {
      state.connectCalls.push({ parameters, options });
      const next = connections.shift();
      if (next === undefined) throw new Error('no more fake connections');
      if (next instanceof Error) throw next;
      return next;
    },
    receiveWal: (options: Record<string, unknown>) => {
      state.receiveCalls.push(options);
      return setup.events ? setup.events(options, state) : (async function* () {})();
    },
    createSink: (options: Record<string, unknown>) => {
      state.sinkCalls.push(options);
      return { kind: 'fake sink' };
    },
    promptPassword: async () => {
      state.prompts += 1;
      return setup.password ?? 'secret';
    },
    onStopSignal: (handler: () => void) => {
      state.stopHandler = handler;
      return () => {
        state.unsubscribed = true;
      };
    },
    now: () => 0,
  };
  state.environment = environment as unknown as ReceiveEnvironment;
  return state;
}

let directory: string;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'wal-cli-test-'));
});

afterEach(() => {
  rmSync(directory, { recursive: true, force: true });
});

function options(...argv: string[]): ReceiveOptions {
  const parsed = parseReceiveCommandLine(argv, { zstd: false, nodeVersion: 'v20' });
  if (parsed.kind !== 'run') throw new Error('not a run');
  return parsed.options;
}

describe('runReceive: startup', () => {
  it('refuses a missing directory before connecting, and never creates it', async () => {
    const test = harness();
    const missing = join(directory, 'missing');
    expect(await runReceive(options('-D', missing, '-d', 'bad'), test.environment)).toBe(1);
    expect(test.stderr.text).toBe(
      `wal receive: error: could not open directory "${missing}": No such file or directory\n`,
    );
    expect(test.connectCalls).toHaveLength(0);
  });

  it('refuses a file given as the directory', async () => {
    const file = join(directory, 'file');
    writeFileSync(file, '');
    const test = harness();
    expect(await runReceive(options('-D', file), test.environment)).toBe(1);
    expect(test.stderr.text).toContain(`could not open directory "${file}": Not a directory`);
  });

  it('reports a connection string error and exits 1', async () => {
    const test = harness({
      parseConnectionString: () => {
        throw new WalError('WAL_ERR_CONNINFO', 'missing "=" after "bad" in connection info string');
      },
    });
    expect(await runReceive(options('-D', directory, '-d', 'bad'), test.environment)).toBe(1);
    expect(test.stderr.lines[0]).toBe(
      'wal receive: error: missing "=" after "bad" in connection info string',
    );
    expect(test.stderr.lines[1]).toMatch(/^wal receive: hint: .*postgresql:\/\/ URI/);
    expect(test.connectCalls).toHaveLength(0);
  });

  it('exits 1 when the first connection fails, without retrying or trapping signals (spec §10 item 1)', async () => {
    const refused = new WalError(
      'WAL_ERR_CONNECTION_REFUSED',
      'connection to server at "127.0.0.1", port 1 failed: Connection refused',
      { retryable: true },
    );
    const test = harness({ connections: [refused] });
    expect(await runReceive(options('-D', directory, '-p', '1'), test.environment)).toBe(1);
    expect(test.connectCalls).toHaveLength(1);
    expect(test.receiveCalls).toHaveLength(0);
    expect(test.stopHandler).toBeUndefined();
    expect(test.stderr.lines[0]).toBe(
      'wal receive: error: connection to server at "127.0.0.1", port 1 failed: Connection refused',
    );
    expect(test.stderr.lines[1]).toContain('hint: Check the host and port');
  });

  it('connects with the parameters merged as pg_receivewal merges them', async () => {
    const test = harness();
    await runReceive(options('-D', directory, '-d', 'host=a port=1 user=x', '-p', '2'), test.environment);
    expect(test.connectCalls[0]?.parameters).toEqual({
      dbname: 'replication',
      host: 'a',
      port: '2',
      user: 'x',
      replication: 'true',
      fallback_application_name: 'wal receive',
    });
    expect(test.connectCalls[0]?.options.env).toEqual({ PGTEST: '1' });
    expect(typeof test.connectCalls[0]?.options.passwordPrompt).toBe('function');
    expect(test.connectCalls[0]?.options.trace).toBeUndefined();
  });

  it('-W asks before the first attempt and sends the password', async () => {
    const test = harness();
    await runReceive(options('-D', directory, '-W'), test.environment);
    expect(test.prompts).toBe(1);
    expect(test.connectCalls[0]?.parameters.password).toBe('secret');
  });

  it('-w never asks', async () => {
    const test = harness();
    await runReceive(options('-D', directory, '-w'), test.environment);
    expect(test.connectCalls[0]?.options.passwordPrompt).toBeUndefined();
  });

  it('keeps a prompted password for reconnections', async () => {
    const test = harness({
      connections: [fakeConnection(), fakeConnection()],
      events: (receiveOptions) =>
        (async function* () {
          await (receiveOptions.connect as () => Promise<unknown>)();
          await (receiveOptions.connect as () => Promise<unknown>)();
          yield { type: 'stopped', reason: 'endpos', lsn: 1n, timeline: 1 };
        })(),
    });
    const original = test.environment.connect!;
    let first = true;
    (test.environment as { connect: unknown }).connect = async (
      parameters: Record<string, string>,
      connectOptions: { passwordPrompt?: () => Promise<string> },
    ) => {
      if (first) {
        first = false;
        await connectOptions.passwordPrompt?.();
      }
      return original(parameters, connectOptions as never);
    };
    expect(await runReceive(options('-D', directory), test.environment)).toBe(0);
    expect(test.prompts).toBe(1);
    expect(test.connectCalls).toHaveLength(2);
    expect(test.connectCalls[0]?.parameters.password).toBeUndefined();
    expect(test.connectCalls[1]?.parameters.password).toBe('secret');
  });

  it('refuses a database-specific connection', async () => {
    const connection = fakeConnection({
      async identifySystem() {
        return { systemId: 1n, timeline: 1, xlogPosition: 0n, databaseName: 'postgres' };
      },
    });
    // The check is receiveWal's: this stand-in fails the way it does, with its message.
    const test = harness({
      connections: [connection],
      events: (receiveOptions) => ({
        [Symbol.asyncIterator]: () => ({
          async next(): Promise<IteratorResult<AnyEvent>> {
            const streaming = await (receiveOptions.connect as () => Promise<FakeConnection>)();
            const system = await streaming.identifySystem();
            streaming.destroy();
            throw new StreamError(
              'WAL_ERR_STREAM_DATABASE_SPECIFIC',
              `replication connection using slot "a" is unexpectedly database specific (database "${system.databaseName}"); connect with replication=true, not replication=database.`,
            );
          },
        }),
      }),
    });
    expect(await runReceive(options('-D', directory, '-S', 'a'), test.environment)).toBe(1);
    expect(test.stderr.lines[0]).toBe(
      'wal receive: error: replication connection using slot "a" is unexpectedly database specific',
    );
    expect(connection.calls).toContain('destroy');
  });

  it('sends the wire trace to stderr with --trace', async () => {
    const test = harness();
    await runReceive(options('-D', directory, '--trace'), test.environment);
    const trace = test.connectCalls[0]?.options.trace as (line: string) => void;
    trace('F 13 Query "IDENTIFY_SYSTEM"');
    expect(test.stderr.text).toContain('wal receive: trace: F 13 Query "IDENTIFY_SYSTEM"\n');
  });
});

describe('runReceive: slot actions', () => {
  it('refuses a database-specific connection before a slot action, with the same code and words', async () => {
    const connection = fakeConnection({
      async identifySystem() {
        connection.calls.push('IDENTIFY_SYSTEM');
        return { systemId: 1n, timeline: 1, xlogPosition: 0n, databaseName: 'postgres' };
      },
    });
    const test = harness({ connections: [connection], json: true });
    expect(await runReceive(options('--create-slot', '-S', 'a'), test.environment)).toBe(1);
    expect(connection.calls).toEqual(['IDENTIFY_SYSTEM', 'destroy']);
    const [record] = test.stderr.lines.map((line) => JSON.parse(line));
    expect(record).toMatchObject({
      level: 'error',
      code: 'WAL_ERR_STREAM_DATABASE_SPECIFIC',
      message: 'replication connection using slot "a" is unexpectedly database specific',
    });
  });

  it('creates a physical slot without reserving WAL, then exits 0', async () => {
    const connection = fakeConnection();
    const test = harness({ connections: [connection] });
    expect(await runReceive(options('--create-slot', '-S', 'test', '-v'), test.environment)).toBe(0);
    expect(connection.calls).toEqual(['IDENTIFY_SYSTEM', 'CREATE test reserveWal=false', 'close']);
    expect(test.stderr.text).toBe('wal receive: creating replication slot "test"\n');
    expect(test.receiveCalls).toHaveLength(0);
  });

  it('fails on an existing slot, unless --if-not-exists', async () => {
    const exists = () =>
      fakeConnection({
        async createReplicationSlot() {
          throw serverError('42710', 'replication slot "test" already exists');
        },
      });
    const failing = harness({ connections: [exists()] });
    expect(await runReceive(options('--create-slot', '-S', 'test'), failing.environment)).toBe(1);
    expect(failing.stderr.lines[0]).toBe(
      'wal receive: error: could not send replication command "CREATE_REPLICATION_SLOT "test" PHYSICAL": ' +
        'ERROR:  replication slot "test" already exists',
    );
    expect(failing.stderr.lines[1]).toBe(
      'wal receive: hint: Add --if-not-exists to accept a slot that already exists.',
    );

    const tolerant = harness({ connections: [exists()] });
    expect(
      await runReceive(options('--create-slot', '-S', 'test', '--if-not-exists'), tolerant.environment),
    ).toBe(0);
    expect(tolerant.stderr.text).toBe('');
  });

  it('--if-not-exists does not hide other errors', async () => {
    const test = harness({
      connections: [
        fakeConnection({
          async createReplicationSlot() {
            throw serverError('53400', 'all replication slots are in use');
          },
        }),
      ],
    });
    expect(await runReceive(options('--create-slot', '-S', 'x', '--if-not-exists'), test.environment)).toBe(
      1,
    );
  });

  it('drops a slot, quoting its name in messages', async () => {
    const connection = fakeConnection();
    const test = harness({ connections: [connection] });
    expect(await runReceive(options('--drop-slot', '-S', 'test', '--verbose'), test.environment)).toBe(0);
    expect(connection.calls).toEqual(['IDENTIFY_SYSTEM', 'DROP test', 'close']);
    expect(test.stderr.text).toBe('wal receive: dropping replication slot "test"\n');

    const missing = harness({
      connections: [
        fakeConnection({
          async dropReplicationSlot() {
            throw serverError('42704', 'replication slot "a""b" does not exist');
          },
        }),
      ],
    });
    expect(await runReceive(options('--drop-slot', '-S', 'a"b'), missing.environment)).toBe(1);
    expect(missing.stderr.lines[0]).toBe(
      'wal receive: error: could not send replication command "DROP_REPLICATION_SLOT "a""b"": ' +
        'ERROR:  replication slot "a""b" does not exist',
    );
    // No hint to create a slot one is dropping.
    expect(missing.stderr.lines).toHaveLength(1);
  });
});

describe('runReceive: streaming', () => {
  const streamEvents: AnyEvent[] = [
    { type: 'connected', systemId: 7n, timeline: 1, serverVersion: 180004, segmentSize: 1 << 20 },
    { type: 'streaming-started', lsn: 0x3000000n, timeline: 1 },
    { type: 'progress', receivedLsn: 0x3000100n, durableLsn: 0x3000000n, serverWalEnd: 0x3000200n },
    { type: 'segment-finished', lsn: 0x3100000n, timeline: 1 },
    { type: 'timeline-switched', timeline: 2, lsn: 0x3180000n },
    { type: 'stopped', reason: 'endpos', lsn: 0x3200010n, timeline: 2 },
  ];
  const replay = (events: AnyEvent[]) => () =>
    (async function* () {
      yield* events;
    })();

  it('passes the options to the stream and the sink, reusing the startup connection', async () => {
    const first = fakeConnection();
    let connected: unknown;
    const test = harness({
      connections: [first],
      events: (receiveOptions) =>
        (async function* () {
          connected = await (receiveOptions.connect as () => Promise<unknown>)();
          yield { type: 'stopped', reason: 'endpos', lsn: 0x3000010n, timeline: 1 };
        })(),
    });
    const code = await runReceive(
      options(
        '-D',
        directory,
        '-S',
        'arch',
        '-E',
        '0/3000000',
        '-s',
        '3',
        '--synchronous',
        '-n',
        '-Z',
        'gzip:4',
        '--receive-timeout=60',
      ),
      test.environment,
    );
    expect(code).toBe(0);
    expect(connected).toBe(first);
    expect(test.connectCalls).toHaveLength(1);
    expect(test.sinkCalls).toEqual([{ directory, compression: { method: 'gzip', level: 4 }, sync: true }]);
    const receiveOptions = test.receiveCalls[0]!;
    expect(receiveOptions).toMatchObject({
      slot: 'arch',
      endLsn: 0x3000000n,
      statusIntervalMs: 3000,
      synchronous: true,
      noLoop: true,
      receiveTimeoutMs: 60_000,
      sink: { kind: 'fake sink' },
    });
    expect(receiveOptions.signal).toBeInstanceOf(AbortSignal);
    expect(test.unsubscribed).toBe(true);
  });

  it('prints pg_receivewal verbose messages (spec §1.7)', async () => {
    const test = harness({ events: replay(streamEvents) });
    expect(await runReceive(options('-D', directory, '-v'), test.environment)).toBe(0);
    expect(test.stderr.lines).toEqual([
      'wal receive: starting log streaming at 0/3000000 (timeline 1)',
      'wal receive: finished segment at 0/3100000 (timeline 1)',
      'wal receive: switched to timeline 2 at 0/3180000',
      'wal receive: stopped log streaming at 0/3200010 (timeline 2)',
    ]);
  });

  it('says "stopped log streaming" when the stream decides to stop and again when it stopped, as pg_receivewal', async () => {
    const test = harness({
      events: replay([
        { type: 'streaming-started', lsn: 0x3000000n, timeline: 1 },
        { type: 'stopping', reason: 'endpos', lsn: 0x3000100n, timeline: 1 },
        { type: 'stopped', reason: 'endpos', lsn: 0x3000100n, timeline: 1 },
      ]),
    });
    expect(await runReceive(options('-D', directory, '-v'), test.environment)).toBe(0);
    expect(test.stderr.lines).toEqual([
      'wal receive: starting log streaming at 0/3000000 (timeline 1)',
      'wal receive: stopped log streaming at 0/3000100 (timeline 1)',
      'wal receive: stopped log streaming at 0/3000100 (timeline 1)',
    ]);
  });

  it("prints the server's notices as libpq does, without -v, control characters escaped", async () => {
    const notify = (test: Harness, fields: Record<string, string>) =>
      (test.connectCalls[0]!.options.onNotice as (fields: Record<string, string>) => void)(fields);
    const test = harness({
      events: (_options, state) =>
        (async function* () {
          notify(state, {
            severity: 'NOTICE',
            code: '42622',
            message: 'identifier "aaa" will be truncated to "aa"',
          });
          notify(state, {
            severity: 'WARNING',
            code: '01000',
            message: 'forged\nwal receive: error: \u001b[2Jx',
            detail: 'd',
            hint: 'h',
          });
          yield { type: 'stopped', reason: 'endpos', lsn: 0x3000010n, timeline: 1 };
        })(),
    });
    expect(await runReceive(options('-D', directory), test.environment)).toBe(0);
    expect(test.stderr.text).toBe(
      'NOTICE:  identifier "aaa" will be truncated to "aa"\n' +
        'WARNING:  forged\\nwal receive: error: \\x1b[2Jx\nDETAIL:  d\nHINT:  h\n',
    );
  });

  it('is quiet without -v, and -vv adds the server facts', async () => {
    const quiet = harness({ events: replay(streamEvents) });
    await runReceive(options('-D', directory), quiet.environment);
    expect(quiet.stderr.text).toBe('');

    const chatty = harness({ events: replay(streamEvents) });
    await runReceive(options('-D', directory, '-vv'), chatty.environment);
    expect(chatty.stderr.lines[0]).toBe(
      'wal receive: connected: server version 180004, system identifier 7, timeline 1, WAL segment size 1048576 bytes',
    );
  });

  it('reports a lost connection and the retry, then carries on', async () => {
    const lost = new WalError(
      'WAL_ERR_STREAM_TERMINATED',
      'replication stream was terminated before stop point',
      {
        retryable: true,
      },
    );
    const test = harness({
      events: replay([
        { type: 'disconnected', error: lost, retryInMs: 5000 },
        { type: 'stopped', reason: 'endpos', lsn: 1n, timeline: 1 },
      ]),
    });
    expect(await runReceive(options('-D', directory), test.environment)).toBe(0);
    expect(test.stderr.lines).toEqual([
      'wal receive: error: replication stream was terminated before stop point',
      'wal receive: disconnected; waiting 5 seconds to try again',
    ]);
  });

  it('with --no-loop, a lost connection ends the program with "disconnected", exit 1', async () => {
    const missing = new WalError(
      'WAL_ERR_STREAM_SLOT_MISSING',
      'replication slot "nonexistentslot" does not exist',
      {
        retryable: true,
      },
    );
    const viaEvent = harness({ events: replay([{ type: 'disconnected', error: missing, retryInMs: 5000 }]) });
    expect(
      await runReceive(options('-D', directory, '-n', '-S', 'nonexistentslot'), viaEvent.environment),
    ).toBe(1);
    expect(viaEvent.stderr.lines).toEqual([
      'wal receive: error: replication slot "nonexistentslot" does not exist',
      'wal receive: error: disconnected',
    ]);

    const viaThrow = harness({
      events: () =>
        (async function* () {
          yield* [];
          throw missing;
        })(),
    });
    expect(
      await runReceive(options('-D', directory, '-n', '-S', 'nonexistentslot'), viaThrow.environment),
    ).toBe(1);
    expect(viaThrow.stderr.lines).toEqual(viaEvent.stderr.lines);
  });

  it('a fatal stream error exits 1 with just its message', async () => {
    const fatal = new WalError('WAL_ERR_STREAM_SERVER_VERSION', 'incompatible server version 9.2');
    const test = harness({
      events: () =>
        (async function* () {
          yield* [];
          throw fatal;
        })(),
    });
    expect(await runReceive(options('-D', directory, '-n'), test.environment)).toBe(1);
    expect(test.stderr.lines).toEqual(['wal receive: error: incompatible server version 9.2']);
  });

  it('SIGINT/SIGTERM abort the stream; the run exits 0 (spec §1.6)', async () => {
    const test = harness({
      events: (receiveOptions, state) =>
        (async function* () {
          yield { type: 'streaming-started', lsn: 0x1000000n, timeline: 1 };
          const signal = receiveOptions.signal as AbortSignal;
          expect(signal.aborted).toBe(false);
          state.stopHandler?.();
          expect(signal.aborted).toBe(true);
          yield { type: 'stopped', reason: 'aborted', lsn: 0x1000100n, timeline: 1 };
        })(),
    });
    expect(await runReceive(options('-D', directory, '-v'), test.environment)).toBe(0);
    expect(test.stderr.lines.at(-1)).toBe('wal receive: received interrupt signal, exiting');
  });

  it('an AbortError after a signal is a clean stop too', async () => {
    const test = harness({
      events: (_options, state) =>
        (async function* () {
          yield* [];
          state.stopHandler?.();
          throw new DOMException('stopped', 'AbortError');
        })(),
    });
    expect(await runReceive(options('-D', directory), test.environment)).toBe(0);
    expect(test.stderr.text).toBe('');
  });

  it('logs JSON objects with --json', async () => {
    const test = harness({ json: true, events: replay(streamEvents) });
    await runReceive(options('-D', directory, '-v', '--json'), test.environment);
    const records = test.stderr.lines.map((line) => JSON.parse(line));
    expect(records[0]).toMatchObject({
      program: 'wal receive',
      level: 'info',
      message: 'starting log streaming at 0/3000000 (timeline 1)',
      event: 'streaming-started',
      lsn: '0/3000000',
      timeline: 1,
    });
    expect(records.map((record) => record.event)).toEqual([
      'streaming-started',
      'segment-finished',
      'timeline-switched',
      'stopped',
    ]);
  });

  it('draws a progress line on a terminal with --progress, and clears it', async () => {
    const test = harness({ isTTY: true, events: replay(streamEvents) });
    await runReceive(options('-D', directory, '--progress'), test.environment);
    expect(test.stderr.text).toContain(
      '\r\u001b[Kwal receive: received 0/3000100, durable 0/3000000, -, lag 256 B',
    );
    expect(test.stderr.text.endsWith('\r\u001b[K')).toBe(true);
  });

  it('redraws the progress line at most four times a second', async () => {
    const samples = [0x1000100n, 0x1000200n, 0x1000300n].map((receivedLsn) => ({
      type: 'progress',
      receivedLsn,
      durableLsn: 0x1000000n,
      serverWalEnd: 0x1000300n,
    }));
    const test = harness({ isTTY: true, events: replay(samples) });
    const clock = [0, 100, 300];
    (test.environment as { now: () => number }).now = () => clock.shift() ?? 1000;
    await runReceive(options('-D', directory, '--progress'), test.environment);
    const drawn = test.stderr.text.split('\r\u001b[K').filter((part) => part !== '');
    expect(drawn).toEqual([
      'wal receive: received 0/1000100, durable 0/1000000, -, lag 512 B',
      'wal receive: received 0/1000300, durable 0/1000000, 2.1 kB/s, lag 0 B',
    ]);
  });

  it('never draws progress into a pipe', async () => {
    const test = harness({ isTTY: false, events: replay(streamEvents) });
    await runReceive(options('-D', directory, '--progress'), test.environment);
    expect(test.stderr.text).toBe('');
  });

  it('shows an observer every event in order, then the error that ends the run', async () => {
    const seen: string[] = [];
    const observer = {
      event: (event: { type: string }) => seen.push(event.type),
      failed: (error: unknown) => seen.push(`failed ${(error as WalError).code}`),
    };
    const fatal = new WalError('WAL_ERR_STREAM_SERVER_VERSION', 'incompatible server version 9.2');
    const test = harness({
      events: () =>
        (async function* () {
          yield* streamEvents.slice(0, 3);
          throw fatal;
        })(),
    });
    expect(await runReceive(options('-D', directory), { ...test.environment, observer })).toBe(1);
    expect(seen).toEqual([
      'connected',
      'streaming-started',
      'progress',
      'failed WAL_ERR_STREAM_SERVER_VERSION',
    ]);

    // --no-loop ends on a disconnection: the observer sees the event, then the same error as the end.
    seen.length = 0;
    const lost = harness({
      events: replay([
        { type: 'disconnected', error: new WalError('WAL_ERR_STREAM_TERMINATED', 'x'), retryInMs: 5000 },
      ]),
    });
    expect(await runReceive(options('-D', directory, '-n'), { ...lost.environment, observer })).toBe(1);
    expect(seen).toEqual(['disconnected', 'failed WAL_ERR_STREAM_TERMINATED']);

    seen.length = 0;
    const stopped = harness({ events: replay(streamEvents) });
    expect(await runReceive(options('-D', directory), { ...stopped.environment, observer })).toBe(0);
    expect(seen).toEqual(streamEvents.map((event) => event.type));
  });

  it('with --progress and JSON logs, records positions under the metrics names every 10 seconds', async () => {
    const samples = [0x1000100n, 0x1000200n, 0x1000300n].map((receivedLsn) => ({
      type: 'progress',
      receivedLsn,
      durableLsn: 0x1000000n,
      serverWalEnd: 0x1000400n,
    }));
    const test = harness({ json: true, events: replay(samples) });
    const clock = [0, 9_999, 10_000];
    (test.environment as { now: () => number }).now = () => clock.shift() ?? 20_000;
    await runReceive(options('-D', directory, '--progress', '--log-format=json'), test.environment);
    const records = test.stderr.lines.map((line) => JSON.parse(line));
    expect(records.map((record) => record.received_lsn)).toEqual(['0/1000100', '0/1000300']);
    expect(records[1]).toMatchObject({
      level: 'info',
      event: 'progress',
      message: 'received 0/1000300, flushed 0/1000000, server 0/1000400',
      flushed_lsn: '0/1000000',
      server_lsn: '0/1000400',
      lag_bytes: 0x400,
    });
  });

  it('serves the metrics and health of the run with --metrics-address while it streams', async () => {
    let scraped: { metrics: string; healthz: number; readyz: number } | undefined;
    const test = harness({
      events: (_options, state) =>
        (async function* () {
          yield* streamEvents.slice(0, 3);
          const url = /serving metrics at (\S+)/.exec(state.stderr.text)![1]!;
          const get = (path: string) => fetch(url.replace('/metrics', path));
          scraped = {
            metrics: await (await get('/metrics')).text(),
            healthz: (await get('/healthz')).status,
            readyz: (await get('/readyz')).status,
          };
          yield* streamEvents.slice(3);
        })(),
    });
    expect(
      await runReceive(options('-D', directory, '--metrics-address=127.0.0.1:0'), test.environment),
    ).toBe(0);
    expect(test.stderr.lines[0]).toMatch(
      /^wal receive: serving metrics at http:\/\/127\.0\.0\.1:\d+\/metrics$/,
    );
    expect(scraped).toEqual({ metrics: expect.any(String), healthz: 200, readyz: 200 });
    expect(scraped!.metrics).toContain('wal_receive_lag_bytes{server="default"} 512\n');
    expect(scraped!.metrics).toContain('wal_receive_received_bytes_total{server="default"} 256\n');
  });

  it('refuses a metrics port in use before connecting, exit 1', async () => {
    const { createServer } = await import('node:net');
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as { port: number };
    try {
      const test = harness({ events: replay(streamEvents) });
      const code = await runReceive(
        options('-D', directory, `--metrics-address=127.0.0.1:${port}`),
        test.environment,
      );
      expect(code).toBe(1);
      expect(test.stderr.lines).toEqual([
        `wal receive: error: could not listen on 127.0.0.1:${port} for metrics: the address is already in use; choose another port or stop the process using it`,
      ]);
      expect(test.connectCalls).toHaveLength(0);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});
