// Bundles `wal receive` (dist/receive.js and what it imports, including the @wal/* packages) into
// dist/receive-entry.bundle.js, which bin/run.js loads. One minified file instead of about 100
// modules: module resolution, file reads and parsing cost CPU and resident memory on every run
// (docs/adr/0005-own-getopt.md, "One file").
// Runs after `tsc -b`, from the built JavaScript, so the bundle is exactly what the tests ran.
import { readFileSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

const cli = new URL('..', import.meta.url);
const manifest = JSON.parse(readFileSync(new URL('package.json', cli), 'utf8'));
// The workspace packages that make up the client are bundled; everything from npm stays a real
// import, loaded (lazily, where the code says so) from node_modules as before. So does `@wal/s3`:
// it brings the AWS SDK, which only `-D s3://…` needs (src/receive-store.ts imports it on use).
const bundled = new Set([
  '@wal/protocol',
  '@wal/libpq-lite',
  '@wal/stream',
  '@wal/sink-fs',
  '@wal/sink-s3',
  '@wal/archive',
  '@wal/verify',
  '@wal/metrics',
  // CommonJS from npm, bundled into the chunk --metrics-address loads: as some 40 files it cost
  // about 90 ms of CPU to load, as one about 30 (docs/adr/0013-metrics.md, "Cost").
  'prom-client',
]);
const external = Object.keys(manifest.dependencies).filter((name) => !bundled.has(name));

// Chunk names carry a content hash: drop the previous build's, or they pile up in dist/.
rmSync(new URL('dist/receive-chunks', cli), { recursive: true, force: true });

await build({
  absWorkingDir: new URL('.', cli).pathname,
  // `wal restore` (dist/restore.js) too: PostgreSQL starts it once per file (docs/adr/0008-wal-restore.md);
  // and `wal cleanup` (dist/cleanup.js), which a standby starts at every restart point.
  entryPoints: {
    'receive-entry': 'dist/receive.js',
    'restore-entry': 'dist/restore.js',
    'cleanup-entry': 'dist/cleanup.js',
  },
  outdir: 'dist',
  entryNames: '[name].bundle',
  // Modules only some runs import (the client, dist/receive-run.js, for a command line that asks
  // to run; the password prompt) stay separate files, so `--version` or a refused line does not
  // even parse them.
  splitting: true,
  chunkNames: 'receive-chunks/[name]-[hash]',
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external,
  minify: true,
  // Error classes are reported by name.
  keepNames: true,
  sourcemap: true,
  // Bundled CommonJS (prom-client) calls require() for Node.js's own modules, which an ES module
  // does not have: esbuild's shim uses this one.
  banner: {
    js: "import { createRequire as __walCreateRequire } from 'node:module'; const require = __walCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
