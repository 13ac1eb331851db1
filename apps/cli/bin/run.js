#!/usr/bin/env node
// `wal receive` skips oclif: its parser is our own getopt and loading oclif costs ~20 MiB of RSS
// (docs/adr/0005-own-getopt.md, "Start-up without oclif"). Everything else goes through oclif.
// The bundle of src/receive.ts decides, and runs `wal receive`; it loads the client only to run.
import { setFlagsFromString } from 'node:v8';
import { main, receiveFastPathArguments } from '../dist/receive-entry.bundle.js';

const receiveArguments = receiveFastPathArguments(process.argv.slice(2));
if (receiveArguments === undefined) {
  const { execute } = await import('@oclif/core');
  await execute({ dir: import.meta.url });
} else {
  // A receiver allocates little per message but at a steady rate, which makes V8 double its young
  // generation up to 16 MiB (of resident memory) for no gain: keep it at its initial size. A flag
  // read when the young generation would grow, so setting it now works (bench/README.md, "Memory").
  setFlagsFromString('--semi-space-growth-factor=1');
  // The receive loop (copyStream, one large generator) is the only function of a receiver over
  // this size. Optimising it took TurboFan 90 ms and about 10 MiB of compiler memory at the peak,
  // and the code was dropped at its first deoptimisation; its time goes to system calls, and the
  // small functions it calls are still optimised. Measured: peak RSS 66-72 -> 58-59 MiB, CPU per
  // GiB and per synchronous commit unchanged (bench/README.md, "Memory").
  setFlagsFromString('--max-optimized-bytecode-size=2000');
  await main(receiveArguments);
}
