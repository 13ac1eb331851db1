export { type ServerBinaries, serverBinaries } from './binaries.js';
export {
  type CertificateAuthority,
  type CertificateFiles,
  createCertificateAuthority,
  type IssuedCertificate,
  issueCertificate,
  writeCertificateFiles,
} from './certificates.js';
export { Cluster, type ClusterCertificates, type Row, startCluster } from './cluster.js';
export {
  ADMIN_ROLE,
  type ClusterOptions,
  type ClusterUser,
  DEFAULT_HBA,
  DEFAULT_VERSION,
  type PasswordEncryption,
  SUPERUSER,
} from './configuration.js';
export { ClusterError, type ClusterErrorCode } from './errors.js';
export { type ServerUser, serverUser } from './server-user.js';
export { type StandbyOptions, startStandby } from './standby.js';
export {
  CLIENT_TOOLS,
  clientTool,
  clientToolsPath,
  DEBIAN_CLIENT_TOOLS_PATH,
  isSupportedVersion,
  type PostgresVersion,
  SUPPORTED_VERSIONS,
  testedVersions,
} from './versions.js';
