// bin/run.js reads this module before it loads any bundle: `wal restore` must not pay for
// loading `wal receive`'s, and the name decides which of the two runs.

/**
 * The name under which `wal receive` stands in for PostgreSQL's program: a symlink called
 * `pg_receivewal` to bin/run.js (apps/cli/README.md, "Installing as pg_receivewal").
 */
export const DROP_IN_NAME = 'pg_receivewal';

/**
 * Whether bin/run.js runs under the drop-in name. `scriptPath` is `process.argv[1]`: Node makes it
 * absolute but keeps a symlink's own name, so a symlink `pg_receivewal` arrives as `…/pg_receivewal`.
 */
export function invokedAsDropIn(scriptPath: string | undefined): boolean {
  if (scriptPath === undefined) return false;
  const name = scriptPath.slice(scriptPath.lastIndexOf('/') + 1);
  return name === DROP_IN_NAME;
}
