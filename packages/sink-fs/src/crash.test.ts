import { type ChildProcess, spawn } from 'node:child_process';
import { watch } from 'node:fs';
import { mkdir, readdir, readFile, realpath, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { decompressFrameSync } from 'lz4-napi';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDirectory, SEGMENT_SIZE, SYSTEM_ID, temporaryDirectory } from './testing/sink-test-kit.js';

/**
 * SIGKILL at random moments (inside a write, while padding a new segment, between fsync and
 * rename ...), many times in a row; then one run to the end. The directory must then equal that of
 * a run that was never interrupted, with no manual cleanup in between.
 *
 * The writer is a separate Node.js process, so it needs JavaScript: the sink and @wal/protocol are
 * transpiled (types stripped, no bundling) into a throwaway node_modules tree.
 */
const here = dirname(fileURLToPath(import.meta.url));
const packagesDirectory = join(here, '..', '..');
let buildRoot: string;
let workRoot: string;

async function sourceFiles(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { withFileTypes: true, recursive: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts'))
    .map((entry) => join(entry.parentPath, entry.name));
}

async function transpilePackage(packageName: string, sourceDirectory: string): Promise<void> {
  const target = join(buildRoot, 'node_modules', '@wal', packageName);
  for (const file of await sourceFiles(sourceDirectory)) {
    const output = ts.transpileModule(await readFile(file, 'utf8'), {
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: true,
      },
      fileName: file,
    }).outputText;
    const destination = join(target, relative(sourceDirectory, file)).replace(/\.ts$/, '.js');
    await mkdir(dirname(destination), { recursive: true });
    await writeFile(destination, output);
  }
  await writeFile(
    join(target, 'package.json'),
    JSON.stringify({
      name: `@wal/${packageName}`,
      type: 'module',
      exports: { '.': './index.js', './*': './*' },
    }),
  );
}

const CHILD = `
import { DirectorySink } from '@wal/sink-fs';
import { fakeWal } from '@wal/sink-fs/testing/fake-wal.js';
const [directory, method, endText, chunkText, syncText, padding] = process.argv.slice(2);
const segmentSize = ${SEGMENT_SIZE};
const systemId = ${SYSTEM_ID}n;
const sink = new DirectorySink({ directory, compression: { method }, sync: syncText === 'sync', padding });
await sink.prepare({ systemId, segmentSize });
const resume = await sink.resumePoint();
let lsn = resume?.lsn ?? BigInt(segmentSize);
const end = BigInt(endText);
const chunk = BigInt(chunkText);
while (lsn < end) {
  const length = lsn + chunk <= end ? chunk : end - lsn;
  await sink.write(1, lsn, fakeWal(lsn, Number(length), { systemId, segmentSize }));
  lsn += length;
  process.stdout.write(lsn + '\\n');
}
await sink.close();
process.stdout.write('done\\n');
`;

beforeAll(async () => {
  buildRoot = await temporaryDirectory('sink-fs-child-');
  workRoot = await temporaryDirectory('sink-fs-crash-');
  await transpilePackage('sink-fs', join(packagesDirectory, 'sink-fs', 'src'));
  await transpilePackage('protocol', join(packagesDirectory, 'protocol', 'src'));
  await symlink(
    await realpath(join(packagesDirectory, 'sink-fs', 'node_modules', 'lz4-napi')),
    join(buildRoot, 'node_modules', 'lz4-napi'),
  );
  await writeFile(join(buildRoot, 'package.json'), JSON.stringify({ type: 'module' }));
  await writeFile(join(buildRoot, 'child.mjs'), CHILD);
}, 60_000);

afterAll(async () => {
  await removeDirectory(buildRoot);
  await removeDirectory(workRoot);
});

/** A small seeded generator, so a failing run can be repeated from the seed in its message. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
}

interface RunOptions {
  directory: string;
  method: string;
  end: bigint;
  chunk: number;
  sync: boolean;
  padding?: 'extend' | 'zeros';
  /** Kill after this many completed writes plus `delayMs`; undefined = run to the end. */
  killAfterWrites?: number;
  delayMs?: number;
  /** Kill at the n-th event on a temporary file (a segment being padded; with sync on, fsync pending). */
  killOnTemporaryFile?: number;
}

/** Runs the writer; resolves with whether it finished ('done') and its stderr. */
function runChild(
  options: RunOptions,
): Promise<{ finished: boolean; killed: boolean; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(
      process.execPath,
      [
        join(buildRoot, 'child.mjs'),
        options.directory,
        options.method,
        options.end.toString(),
        String(options.chunk),
        options.sync ? 'sync' : 'no-sync',
        options.padding ?? 'extend',
      ],
      { cwd: buildRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let writes = 0;
    let finished = false;
    let killed = false;
    let stderr = '';
    const kill = () => {
      if (!killed && child.exitCode === null) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    if (options.killAfterWrites === 0) setTimeout(kill, options.delayMs ?? 0);
    let temporaryFileEvents = 0;
    const watcher = options.killOnTemporaryFile
      ? watch(options.directory, (_event, fileName) => {
          if (fileName?.endsWith('.tmp') && ++temporaryFileEvents === options.killOnTemporaryFile) kill();
        })
      : undefined;
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      for (const line of text.split('\n')) {
        if (line === 'done') finished = true;
        else if (line !== '') {
          writes += 1;
          if (writes === options.killAfterWrites) setTimeout(kill, options.delayMs ?? 0);
        }
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      watcher?.close();
      resolve({ finished, killed, stderr, code });
    });
  });
}

/** Every file with its decoded content (compressed files are compared by what they decode to). */
async function snapshot(directory: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const name of (await readdir(directory)).sort()) {
    const content = await readFile(join(directory, name));
    if (name.includes('.gz')) files.set(name, gunzipSync(content));
    else if (name.includes('.lz4')) files.set(name, decompressFrameSync(content));
    else files.set(name, content);
  }
  return files;
}

describe('DirectorySink survives SIGKILL at any moment', () => {
  it.each([
    { method: 'none', sync: true, kills: 14 },
    { method: 'none', sync: true, kills: 6, whilePadding: true },
    { method: 'none', sync: true, kills: 6, whilePadding: true, padding: 'zeros' as const },
    { method: 'none', sync: false, kills: 6, chunk: 3000 },
    { method: 'gzip', sync: false, kills: 7 },
    { method: 'lz4', sync: false, kills: 7 },
  ])(
    '$method (sync: $sync, while padding: $whilePadding, padding: $padding, chunk: $chunk): $kills kills, then one run to the end, equals an uninterrupted run',
    async ({ method, sync, kills, whilePadding, chunk: smallChunk, padding }) => {
      const seed = Date.now() % 1_000_000;
      const next = random(seed);
      // Not a divisor of the segment size: writes cross segment boundaries. Chunks under 16 KiB are
      // coalesced in memory by the sink, so a kill also loses staged bytes.
      const chunk = smallChunk ?? 8192 * 5;
      const end = BigInt(SEGMENT_SIZE) * 6n + 12_345n;
      const reference = join(workRoot, `${method}-${kills}-${chunk}-${padding}-reference`);
      const crashed = join(workRoot, `${method}-${kills}-${chunk}-${padding}-crashed`);
      await mkdir(reference);
      await mkdir(crashed);

      const uninterrupted = await runChild({ directory: reference, method, end, chunk, sync });
      expect(uninterrupted, uninterrupted.stderr).toMatchObject({ finished: true, code: 0 });

      let killedRuns = 0;
      for (let attempt = 0; attempt < kills; attempt += 1) {
        const result = await runChild({
          directory: crashed,
          method,
          end,
          chunk,
          sync,
          padding,
          ...(whilePadding
            ? { killOnTemporaryFile: 1 + Math.floor(next() * 8) }
            : {
                killAfterWrites: Math.floor(next() * (smallChunk ? 400 : 40)),
                delayMs: Math.floor(next() * 4),
              }),
        });
        // Each interrupted run either died by the signal or finished cleanly: never an error.
        expect(result.killed || result.finished, `seed ${seed}: ${result.stderr}`).toBe(true);
        if (!result.killed) expect(result.code, `seed ${seed}: ${result.stderr}`).toBe(0);
        if (result.killed && !result.finished) killedRuns += 1;
      }
      const final = await runChild({ directory: crashed, method, end, chunk, sync });
      expect(final, `seed ${seed}: ${final.stderr}`).toMatchObject({ finished: true, code: 0 });
      expect(killedRuns, `seed ${seed}`).toBeGreaterThan(0);

      const expected = await snapshot(reference);
      const actual = await snapshot(crashed);
      expect([...actual.keys()], `seed ${seed}`).toEqual([...expected.keys()]);
      for (const [name, content] of expected) {
        expect(actual.get(name)?.equals(content), `seed ${seed}: ${name} differs`).toBe(true);
      }
    },
    120_000,
  );
});
