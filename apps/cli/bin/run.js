#!/usr/bin/env node
// `wal receive` skips oclif: its parser is our own getopt, and loading oclif would cost a receiver
// resident memory for nothing (docs/adr/0005-own-getopt.md, "Start-up without oclif"). So does
// `wal restore`, which PostgreSQL starts once per WAL file (docs/adr/0008-wal-restore.md), and
// `wal cleanup`, which a standby starts at every restart point.
// Everything else goes through oclif. The bundle of src/receive.ts decides, and runs `wal receive`;
// it loads the client only to run. It sets no V8 flags (scripts/check-rules.mjs checks that).
// Under the name `pg_receivewal` (a symlink to this file) every argument is `wal receive`'s and
// the program names itself pg_receivewal (apps/cli/README.md, "Installing as pg_receivewal").
// `wal help [COMMAND]` is `wal [COMMAND] --help`: oclif answers it only with its help plugin, and
// restore and cleanup never reach oclif.
const given = process.argv.slice(2);
const argv = given[0] === 'help' ? [...given.slice(1, 2), '--help'] : given;
const receive = () => import('../dist/receive-entry.bundle.js');
const { invokedAsDropIn } = await import('../dist/drop-in-name.js');

if (invokedAsDropIn(process.argv[1])) {
  const { DROP_IN_NAME, main } = await receive();
  await main(argv, DROP_IN_NAME);
} else if (argv[0] === 'restore') {
  const { main } = await import('../dist/restore-entry.bundle.js');
  await main(argv.slice(1));
} else if (argv[0] === 'cleanup') {
  const { main } = await import('../dist/cleanup-entry.bundle.js');
  await main(argv.slice(1));
} else {
  const { main, receiveFastPathArguments } = await receive();
  const receiveArguments = receiveFastPathArguments(argv);
  if (receiveArguments === undefined) {
    const { execute } = await import('@oclif/core');
    await execute({ args: argv, dir: import.meta.url });
  } else {
    await main(receiveArguments);
  }
}
