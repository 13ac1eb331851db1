import type * as Crypto from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let loaded: typeof Crypto | undefined;

/**
 * node:crypto, loaded on first use: it is resident memory (bench/README.md) that a connection
 * without a password or TLS never needs (a `wal receive` with trust or peer authentication), and
 * the functions that need it are synchronous, so `import()` would not do.
 */
export function nodeCrypto(): typeof Crypto {
  loaded ??= require('node:crypto') as typeof Crypto;
  return loaded;
}
