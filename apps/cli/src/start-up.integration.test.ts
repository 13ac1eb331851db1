import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { segment } from '@wal/archive/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN, RunningProcess } from './e2e/harness.js';
import { receiveHelpText } from './receive-help.js';

/**
 * `wal receive` starts without oclif (docs/adr/0005-own-getopt.md, "Start-up without oclif"): the
 * built binary is run with a module hook that records every module it loads, and the heavy ones
 * must stay out. Other command lines still go through oclif.
 */

const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};
/**
 * Modules `wal receive` must not load: oclif, the test-cluster package and what it pulls in, lz4
 * without -Z lz4, and node:crypto and node:zlib before a password, TLS or compression needs them
 * (resident memory most runs never need; they are loaded on first use through `require`, which
 * this hook does not see, so a static import is what shows up here).
 */
const HEAVY = [
  '@oclif',
  'pg-cluster',
  '/node_modules/pg/',
  '@peculiar',
  'reflect-metadata',
  'lz4-napi',
  'node:crypto',
  'node:zlib',
];

let scratch: string;
let hook: string;

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'wal-start-up-'));
  // Registered with --import: the resolve hook appends every resolved URL to the file named by
  // WAL_TEST_LOADED_MODULES (CommonJS `require`s of ESM-imported packages pass through it too).
  const hooks = join(scratch, 'hooks.mjs');
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(process.env.WAL_TEST_LOADED_MODULES, result.url + '\\n');
  return result;
}
`,
  );
  hook = join(scratch, 'register.mjs');
  writeFileSync(
    hook,
    `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
  );
});

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  loaded: string[];
}

let runs = 0;

async function wal(args: string[], script = CLI_BIN, env: Record<string, string> = {}): Promise<Result> {
  runs += 1;
  const record = join(scratch, `loaded-${runs}.txt`);
  writeFileSync(record, '');
  const { code, stdout, stderr } = await new RunningProcess(
    process.execPath,
    ['--import', pathToFileURL(hook).href, script, ...args],
    { ...process.env, ...env, WAL_TEST_LOADED_MODULES: record },
    `wal ${args.join(' ')}`,
  ).result;
  return { code, stdout, stderr, loaded: readFileSync(record, 'utf8').split('\n').filter(Boolean) };
}

function heavyModules(loaded: readonly string[]): string[] {
  return loaded.filter((url) => HEAVY.some((name) => url.includes(name)));
}

/** A port on this machine nothing listens on: one the kernel just handed out and we closed again. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('wal receive start-up', () => {
  it('answers --version without oclif', async () => {
    const result = await wal(['receive', '--version']);
    expect(result).toMatchObject({ code: 0, stdout: `wal receive (wal) ${manifest.version}\n`, stderr: '' });
    expect(result.loaded.some((url) => url.endsWith('/dist/receive-entry.bundle.js'))).toBe(true);
    expect(heavyModules(result.loaded)).toEqual([]);
    // --version needs none of the client either: not its bundled chunk, not a package of its own.
    expect(result.loaded.filter((url) => /receive-run|libpq-lite|sink-fs|\/stream\//.test(url))).toEqual([]);
  });

  it('runs (and fails to connect) without oclif, the test cluster or lz4', async () => {
    const port = await closedPort();
    const result = await wal(['receive', '-D', scratch, '-d', `host=127.0.0.1 port=${port}`, '-w', '-n']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^wal receive: error: connection to server at "127\.0\.0\.1", port \d+ failed/,
    );
    // The client comes bundled (apps/cli/scripts/bundle-receive.mjs), not from the packages' dist.
    expect(result.loaded.some((url) => /\/dist\/receive-chunks\/receive-run-\w+\.js$/.test(url))).toBe(true);
    expect(result.loaded.filter((url) => /\/packages\/[^/]+\/dist\//.test(url))).toEqual([]);
    expect(heavyModules(result.loaded)).toEqual([]);
  });

  it('refuses a bad command line with the same words and exit code as before', async () => {
    const result = await wal(['receive', '--bogus']);
    expect(result).toMatchObject({
      code: 1,
      stdout: '',
      stderr: `wal receive: unrecognized option '--bogus'\nwal receive: hint: Try "wal receive --help" for more information.\n`,
    });
    expect(heavyModules(result.loaded)).toEqual([]);
  });

  it('leaves `receive --help` to oclif, which prints the same text as -?', async () => {
    const help = await wal(['receive', '--help']);
    const question = await wal(['receive', '-?']);
    expect(help).toMatchObject({ code: 0, stdout: receiveHelpText('wal receive') });
    expect(question).toMatchObject({ code: 0, stdout: receiveHelpText('wal receive') });
    expect(help.loaded.some((url) => url.includes('@oclif'))).toBe(true);
    expect(heavyModules(question.loaded)).toEqual([]);
  });

  it('leaves other command lines to oclif', async () => {
    const version = await wal(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(new RegExp(`^@wal/cli/${manifest.version.replaceAll('.', '\\.')} `));
    expect(version.loaded.some((url) => url.includes('@oclif'))).toBe(true);
    const unknown = await wal(['no-such-command']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/no-such-command/);
  });

  it('answers `wal help COMMAND` as `wal COMMAND --help`, and `wal help` as `wal --help`', async () => {
    for (const command of ['receive', 'restore', 'cleanup', 'verify', 'daemon']) {
      const help = await wal(['help', command]);
      const flag = await wal([command, '--help']);
      expect(help.code, command).toBe(0);
      expect(help.stdout, command).toBe(flag.stdout);
      expect(help.stdout, command).toContain(command);
    }
    const root = await wal(['help']);
    expect(root).toMatchObject({ code: 0, stdout: (await wal(['--help'])).stdout });
    expect(root.stdout).toMatch(/COMMANDS/);
  });

  it('runs as pg_receivewal under that name (a symlink), without oclif, --help included', async () => {
    const dropIn = join(scratch, 'pg_receivewal');
    symlinkSync(CLI_BIN, dropIn);
    const help = await wal(['--help'], dropIn);
    expect(help).toMatchObject({ code: 0, stdout: receiveHelpText('pg_receivewal'), stderr: '' });
    expect(heavyModules(help.loaded)).toEqual([]);
    const port = await closedPort();
    const failed = await wal(['-D', scratch, '-d', `host=127.0.0.1 port=${port}`, '-w', '-n'], dropIn);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toBe(
      `pg_receivewal: error: connection to server at "127.0.0.1", port ${port} failed: Connection refused\n` +
        '\tIs the server running on that host and accepting TCP/IP connections?\n',
    );
    expect(heavyModules(failed.loaded)).toEqual([]);
  });
});

/**
 * `wal restore` starts without oclif too: PostgreSQL runs it once per WAL file
 * (docs/adr/0008-wal-restore.md). A plain segment needs neither lz4 nor node:zlib, and a directory
 * archive not the object-store client.
 */
describe('wal restore start-up', () => {
  it('answers --version and restores a plain segment without oclif, lz4 or zlib', async () => {
    const version = await wal(['restore', '--version']);
    expect(version).toMatchObject({ code: 0, stdout: `wal restore (wal) ${manifest.version}\n`, stderr: '' });
    expect(version.loaded.some((url) => url.endsWith('/dist/restore-entry.bundle.js'))).toBe(true);
    expect(heavyModules(version.loaded)).toEqual([]);

    const archive = join(scratch, 'archive');
    mkdirSync(archive, { recursive: true });
    const written = segment(3);
    writeFileSync(join(archive, '000000010000000000000003'), written);
    const target = join(scratch, 'RECOVERYXLOG');
    const restored = await wal(['restore', '-D', archive, '000000010000000000000003', target]);
    expect(restored).toMatchObject({ code: 0, stderr: '' });
    expect(readFileSync(target).equals(written)).toBe(true);
    expect(heavyModules(restored.loaded)).toEqual([]);
    expect(restored.loaded.filter((url) => /\/packages\/[^/]+\/dist\//.test(url))).toEqual([]);
    // The object-store client is for s3:// archives only (docs/adr/0012-reading-object-storage.md).
    expect(restored.loaded.filter((url) => /@aws-sdk|@smithy|\/s3-source-\w+\.js$/.test(url))).toEqual([]);
  });
});

/** `wal cleanup` too: a standby runs it at every restart point. It only lists and removes names. */
describe('wal cleanup start-up', () => {
  it('answers --version and cleans an archive without oclif, lz4 or zlib', async () => {
    const version = await wal(['cleanup', '--version']);
    expect(version).toMatchObject({ code: 0, stdout: `wal cleanup (wal) ${manifest.version}\n`, stderr: '' });
    expect(version.loaded.some((url) => url.endsWith('/dist/cleanup-entry.bundle.js'))).toBe(true);
    expect(heavyModules(version.loaded)).toEqual([]);

    const archive = join(scratch, 'cleanup-archive');
    mkdirSync(archive, { recursive: true });
    for (const name of ['000000010000000000000003.lz4', '000000010000000000000004', '00000002.history'])
      writeFileSync(join(archive, name), '');
    const cleaned = await wal(['cleanup', '-D', archive, '000000010000000000000004']);
    expect(cleaned).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(readdirSync(archive).sort()).toEqual(['000000010000000000000004', '00000002.history']);
    expect(heavyModules(cleaned.loaded)).toEqual([]);
    expect(cleaned.loaded.filter((url) => /\/packages\/[^/]+\/dist\//.test(url))).toEqual([]);
    // The object-store client is for s3:// archives only (docs/adr/0015-wal-cleanup.md).
    expect(cleaned.loaded.filter((url) => /@aws-sdk|@smithy|\/s3-source-\w+\.js$/.test(url))).toEqual([]);
  });

  it('loads the object-store client for an s3:// archive', async () => {
    // A store nobody answers: the listing fails after its retries, and the client was loaded.
    const bucket = await wal(['cleanup', '-D', 's3://wal-archive/db', '000000010000000000000004'], CLI_BIN, {
      AWS_ENDPOINT_URL: `http://127.0.0.1:${await closedPort()}`,
      AWS_ACCESS_KEY_ID: 'KEY',
      AWS_SECRET_ACCESS_KEY: 'SECRET-NOT-SHOWN',
    });
    expect(bucket.code).toBe(1);
    expect(bucket.stderr).toMatch(
      /^wal cleanup: error: could not list the archive "s3:\/\/wal-archive\/db": /,
    );
    expect(bucket.loaded.some((url) => /\/s3-source-\w+\.js$/.test(url))).toBe(true);
    expect(bucket.loaded.some((url) => url.includes('@aws-sdk'))).toBe(true);
    // node:crypto it needs (MD5s); neither oclif nor lz4.
    expect(bucket.loaded.filter((url) => /@oclif|lz4-napi/.test(url))).toEqual([]);
  });
});
