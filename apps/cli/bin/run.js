#!/usr/bin/env node
// `wal receive` skips oclif: its parser is our own getopt, and loading oclif would cost a receiver
// resident memory for nothing (docs/adr/0005-own-getopt.md, "Start-up without oclif"). Everything
// else goes through oclif. The bundle of src/receive.ts decides, and runs `wal receive`; it loads
// the client only to run. It sets no V8 flags (scripts/check-rules.mjs checks that).
// Under the name `pg_receivewal` (a symlink to this file) every argument is `wal receive`'s and
// the program names itself pg_receivewal (apps/cli/README.md, "Installing as pg_receivewal").
import {
  DROP_IN_NAME,
  invokedAsDropIn,
  main,
  receiveFastPathArguments,
} from '../dist/receive-entry.bundle.js';

if (invokedAsDropIn(process.argv[1])) {
  await main(process.argv.slice(2), DROP_IN_NAME);
} else {
  const receiveArguments = receiveFastPathArguments(process.argv.slice(2));
  if (receiveArguments === undefined) {
    const { execute } = await import('@oclif/core');
    await execute({ dir: import.meta.url });
  } else {
    await main(receiveArguments);
  }
}
