#!/usr/bin/env node
// `wal receive` skips oclif: its parser is our own getopt and loading oclif costs ~20 MiB of RSS
// (docs/adr/0005-own-getopt.md, "Start-up without oclif"). Everything else goes through oclif.
import { receiveFastPathArguments } from '../dist/fast-path.js';

const receiveArguments = receiveFastPathArguments(process.argv.slice(2));
if (receiveArguments === undefined) {
  const { execute } = await import('@oclif/core');
  await execute({ dir: import.meta.url });
} else {
  const { main } = await import('../dist/receive-entry.js');
  await main(receiveArguments);
}
