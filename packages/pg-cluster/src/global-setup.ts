/**
 * vitest globalSetup of the integration project: says once, at the start of the run, which server
 * versions are tested and whether PostgreSQL's client tools (the comparison oracles) were found,
 * so a skipped comparison test is never a surprise. With WAL_REQUIRE_CLIENT_TOOLS=1 (CI) missing
 * tools fail the run instead of skipping tests.
 */
import { serverBinaries } from './binaries.js';
import { ClusterError } from './errors.js';
import {
  CLIENT_TOOLS,
  clientTool,
  clientToolsPath,
  DEBIAN_CLIENT_TOOLS_PATH,
  testedVersions,
} from './versions.js';

export default async function setup(): Promise<void> {
  const versions = testedVersions();
  // Fail fast with one clear message instead of one per test file.
  for (const version of versions) await serverBinaries(version);

  const directory = clientToolsPath();
  const missing = CLIENT_TOOLS.filter((tool) => clientTool(tool) === undefined);
  const tools =
    directory === undefined
      ? `not found (looked in ${process.env.WAL_PG_CLIENT_BIN?.trim() || DEBIAN_CLIENT_TOOLS_PATH}); comparison tests are skipped`
      : missing.length === 0
        ? `found in ${directory}`
        : `found in ${directory}, without ${missing.join(', ')}`;
  console.log(`[pg-cluster] PostgreSQL server versions: ${versions.join(', ')}; client tools ${tools}.`);

  if (process.env.WAL_REQUIRE_CLIENT_TOOLS === '1' && (directory === undefined || missing.length > 0)) {
    throw new ClusterError(
      'WAL_ERR_CLUSTER_CLIENT_TOOLS',
      'WAL_REQUIRE_CLIENT_TOOLS=1 but PostgreSQL client tools are missing: install Debian postgresql-15 ' +
        `(see .ci/run) or point WAL_PG_CLIENT_BIN at a directory with ${CLIENT_TOOLS.join(', ')}.`,
    );
  }
}
