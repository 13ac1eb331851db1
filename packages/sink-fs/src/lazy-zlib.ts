import { createRequire } from 'node:module';
import type * as Zlib from 'node:zlib';

const require = createRequire(import.meta.url);
let loaded: typeof Zlib | undefined;

/**
 * node:zlib, loaded on first use: resident memory that an uncompressed directory never needs
 * (bench/README.md, "Memory"); its callers are synchronous (zstd detection, reading a compressed first page).
 */
export function nodeZlib(): typeof Zlib {
  loaded ??= require('node:zlib') as typeof Zlib;
  return loaded;
}
