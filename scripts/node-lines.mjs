#!/usr/bin/env node
// The supported Node.js lines besides the one that runs `pnpm test`: their binaries come from the
// npm registry (the `node-<platform>-<arch>` packages, checked against the registry's integrity
// like any package), so CI needs no network but the registry (docs/adr/0007-node-lines-and-packaging.md).
// Binaries are cached in node_modules/.cache, which a fresh clone or `rm -rf node_modules` clears.
//
//   node scripts/node-lines.mjs              the unit project on every line below, one after another
//   node scripts/node-lines.mjs path 22      prints the path of line 22's binary, fetching it once
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** One pinned release per line, so a run is repeatable; raise them as the lines get releases. */
export const NODE_LINES = { 22: '22.23.5', 24: '24.22.3' };

const root = new URL('..', import.meta.url).pathname;
const cache = join(root, 'node_modules', '.cache', 'wal-node-lines');

/**
 * npm's environment without the npm_config_* variables `pnpm run` passes down (npm warns about
 * each one it does not know), except those that say how to reach the registry.
 */
function npmEnvironment() {
  const network = /^npm_config_(registry|cache|proxy|https_proxy|noproxy|cafile|strict_ssl|userconfig)$/i;
  return Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^npm_config_/i.test(key) || network.test(key)),
  );
}

/** The path of `line`'s node binary, fetched with `npm pack` on first use. */
export function nodeBinary(line) {
  const version = NODE_LINES[line];
  if (version === undefined) throw new Error(`node-lines: no pinned release for Node.js ${line}`);
  const name = `node-${process.platform}-${process.arch}`;
  const binary = join(cache, `${name}-${version}`, 'bin', 'node');
  if (existsSync(binary)) return binary;
  mkdirSync(cache, { recursive: true });
  const scratch = mkdtempSync(join(cache, 'fetch-'));
  try {
    // npm's stdout is the tarball's name; its progress goes to stderr, which we pass on.
    const tarball = execFileSync(
      'npm',
      ['pack', `${name}@${version}`, '--pack-destination', scratch, '--loglevel=warn'],
      {
        cwd: scratch,
        env: npmEnvironment(),
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
      .trim()
      .split('\n')
      .pop();
    execFileSync('tar', ['-xzf', join(scratch, tarball), '-C', scratch, 'package/bin/node']);
    // A rename, so a binary at `binary` is always a complete one, even after an interrupted fetch;
    // if another run got there first, its copy is as good as ours.
    try {
      renameSync(join(scratch, 'package'), dirname(dirname(binary)));
    } catch (error) {
      if (!existsSync(binary)) throw error;
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return binary;
}

/** vitest's unit project under `binary`: its fork workers and the CLI the tests spawn use it too. */
function runUnitTests(line, binary) {
  const version = execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim();
  process.stdout.write(`\nnode-lines: the unit project on Node.js ${version} (${binary})\n`);
  const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
  const result = spawnSync(binary, [vitest, 'run', '--project', 'unit'], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, PATH: `${dirname(binary)}:${process.env.PATH ?? ''}` },
  });
  if (result.status !== 0) {
    process.stderr.write(`node-lines: the unit project failed on Node.js ${line} (${version})\n`);
    return false;
  }
  return true;
}

function main(args) {
  if (args[0] === 'path' && args.length === 2) {
    process.stdout.write(`${nodeBinary(Number(args[1]))}\n`);
    return 0;
  }
  if (args.length !== 0) {
    process.stderr.write('usage: node scripts/node-lines.mjs [path LINE]\n');
    return 2;
  }
  let passed = true;
  for (const line of Object.keys(NODE_LINES)) passed = runUnitTests(line, nodeBinary(line)) && passed;
  return passed ? 0 : 1;
}

if (process.argv[1] === new URL(import.meta.url).pathname) process.exitCode = main(process.argv.slice(2));
