import { existsSync, readFileSync, statSync } from 'node:fs';
import { isIP, type Socket } from 'node:net';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import type { ConnectionSettings, HostTarget } from './environment.js';
import { TlsError } from './errors.js';

/** The ALPN protocol PostgreSQL 17+ servers speak (`pqcomm.h`: PG_ALPN_PROTOCOL). */
const POSTGRES_ALPN_PROTOCOL = 'postgresql';

/** How the server certificate is checked for this connection. */
export type Verification = 'none' | 'chain' | 'chain-and-host';

/**
 * libpq semantics: verify-ca checks the chain, verify-full also the host name; `require` (and
 * the weaker modes) check the chain only when a root certificate file exists, because that is
 * how libpq behaved before verify-ca existed.
 */
function verificationFor(
  settings: ConnectionSettings,
  exists: (path: string) => boolean = existsSync,
): Verification {
  if (settings.sslmode === 'verify-full') return 'chain-and-host';
  if (settings.sslmode === 'verify-ca') return 'chain';
  if (settings.sslrootcert !== 'system' && exists(settings.sslrootcert)) return 'chain';
  return 'none';
}

function readFileOrThrow(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new TlsError(
      'WAL_ERR_TLS_CONFIG',
      `could not read ${what} "${path}": ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}

/** Node TLS options for one attempt. Throws TlsError for unusable certificate settings. */
function buildTlsOptions(
  settings: ConnectionSettings,
  target: HostTarget,
  socket: Socket,
): ConnectionOptions {
  const verification = verificationFor(settings);
  const options: ConnectionOptions = {
    socket,
    ALPNProtocols: [POSTGRES_ALPN_PROTOCOL],
    // We check the chain and the host ourselves after the handshake to report libpq-like errors.
    rejectUnauthorized: false,
    checkServerIdentity: () => undefined,
    minVersion: settings.sslMinProtocolVersion,
  };
  if (settings.sslMaxProtocolVersion !== undefined) options.maxVersion = settings.sslMaxProtocolVersion;
  if (verification !== 'none' && settings.sslrootcert !== 'system') {
    if (!existsSync(settings.sslrootcert)) {
      throw new TlsError(
        'WAL_ERR_TLS_ROOT_CERT_MISSING',
        `root certificate file "${settings.sslrootcert}" does not exist\n` +
          "Either provide the file, use the system's trusted roots with sslrootcert=system, or change sslmode to disable server certificate verification.",
      );
    }
    options.ca = readFileOrThrow(settings.sslrootcert, 'root certificate file');
  }
  if (verification !== 'none' && settings.sslcrl !== '' && existsSync(settings.sslcrl)) {
    options.crl = readFileOrThrow(settings.sslcrl, 'SSL certificate revocation list file');
  }
  // SNI only for host names, as libpq (`sslsni`): IP literals must not be sent.
  const serverName = target.host;
  if (settings.sslsni && serverName !== '' && isIP(serverName) === 0 && !serverName.startsWith('/')) {
    options.servername = serverName;
  }
  if (settings.sslcertmode !== 'disable' && existsSync(settings.sslcert)) {
    options.cert = readFileOrThrow(settings.sslcert, 'certificate file');
    if (!existsSync(settings.sslkey)) {
      throw new TlsError(
        'WAL_ERR_TLS_CONFIG',
        `certificate present, but not private key file "${settings.sslkey}"`,
      );
    }
    checkPrivateKeyPermissions(settings.sslkey);
    options.key = readFileOrThrow(settings.sslkey, 'private key file');
    if (settings.sslpassword !== undefined) options.passphrase = settings.sslpassword;
  }
  return options;
}

/**
 * libpq refuses a private key others can read (`fe-secure-openssl.c`): at most 0600 when the
 * current user owns it, at most 0640 when root does (a key shared through a group).
 */
function checkPrivateKeyPermissions(path: string): void {
  if (process.platform === 'win32') return;
  const information = statSync(path);
  if (!information.isFile()) {
    throw new TlsError('WAL_ERR_TLS_CONFIG', `private key file "${path}" is not a regular file`);
  }
  const ownedByRoot = information.uid === 0;
  const forbidden = ownedByRoot ? 0o137 : 0o077;
  if ((information.mode & forbidden) !== 0) {
    throw new TlsError(
      'WAL_ERR_TLS_CONFIG',
      `private key file "${path}" has group or world access; file must have permissions u=rw (0600) or less ` +
        'if owned by the current user, or permissions u=rw,g=r (0640) or less if owned by root',
    );
  }
}

/**
 * Runs the TLS handshake over an already connected socket and applies the certificate checks
 * `sslmode` asks for. With `direct` (PG17+ sslnegotiation=direct) ALPN must have been agreed.
 */
export async function startTls(
  socket: Socket,
  settings: ConnectionSettings,
  target: HostTarget,
  options: { direct: boolean; description: string },
): Promise<TLSSocket> {
  const tlsOptions = buildTlsOptions(settings, target, socket);
  const verification = verificationFor(settings);
  // Loaded on first use: a receiver on a Unix socket or with sslmode=disable never needs its memory.
  const tls = await import('node:tls');
  return await new Promise<TLSSocket>((resolve, reject) => {
    const tlsSocket = tls.connect(tlsOptions);
    const onError = (error: Error): void => {
      tlsSocket.destroy();
      reject(
        new TlsError(
          'WAL_ERR_TLS_HANDSHAKE',
          `SSL handshake with ${options.description} failed: ${error.message}`,
          {
            cause: error,
            retryable: true,
          },
        ),
      );
    };
    tlsSocket.once('error', onError);
    tlsSocket.once('secureConnect', () => {
      tlsSocket.removeListener('error', onError);
      try {
        checkPeer(tlsSocket, settings, target, verification, options, tls.checkServerIdentity);
        resolve(tlsSocket);
      } catch (error) {
        tlsSocket.destroy();
        reject(error);
      }
    });
  });
}

function checkPeer(
  tlsSocket: TLSSocket,
  settings: ConnectionSettings,
  target: HostTarget,
  verification: Verification,
  options: { direct: boolean; description: string },
  checkServerIdentity: typeof import('node:tls').checkServerIdentity,
): void {
  if (options.direct && tlsSocket.alpnProtocol !== POSTGRES_ALPN_PROTOCOL) {
    throw new TlsError(
      'WAL_ERR_TLS_ALPN',
      tlsSocket.alpnProtocol === false
        ? 'direct SSL connection was established without ALPN protocol negotiation extension'
        : `SSL connection was established with unexpected ALPN protocol "${tlsSocket.alpnProtocol}"`,
    );
  }
  if (verification === 'none') return;
  if (!tlsSocket.authorized) {
    const reason = String(tlsSocket.authorizationError ?? 'unknown reason');
    throw new TlsError(
      'WAL_ERR_TLS_VERIFY',
      `server certificate verification failed for ${options.description}: ${reason}\n` +
        `The chain was checked against "${settings.sslrootcert}" (sslmode=${settings.sslmode}); ` +
        'point sslrootcert at the CA that signed the server certificate, or use sslmode=require to skip verification.',
    );
  }
  if (verification === 'chain-and-host') {
    const hostName = target.host !== '' && !target.host.startsWith('/') ? target.host : target.hostaddr;
    if (hostName === '') {
      throw new TlsError(
        'WAL_ERR_TLS_HOST_MISMATCH',
        'host name must be specified for a verified SSL connection',
      );
    }
    const certificate = tlsSocket.getPeerCertificate();
    const mismatch = checkServerIdentity(hostName, certificate);
    if (mismatch !== undefined) {
      const names = certificateNames(certificate.subjectaltname, certificate.subject?.CN);
      const first = names[0] ?? '';
      const others =
        names.length > 2
          ? ` (and ${names.length - 1} other names)`
          : names.length === 2
            ? ' (and 1 other name)'
            : '';
      throw new TlsError(
        'WAL_ERR_TLS_HOST_MISMATCH',
        `server certificate for "${first}"${others} does not match host name "${hostName}"\n` +
          'Connect using a name the certificate lists, or use sslmode=verify-ca to check only the chain.',
        { cause: mismatch },
      );
    }
  }
}

function certificateNames(
  subjectAltName: string | undefined,
  commonName: string | string[] | undefined,
): string[] {
  const names: string[] = [];
  if (subjectAltName !== undefined) {
    for (const entry of subjectAltName.split(', ')) {
      const separator = entry.indexOf(':');
      if (separator > 0) names.push(entry.slice(separator + 1));
    }
  }
  if (names.length === 0 && commonName !== undefined) {
    names.push(...(Array.isArray(commonName) ? commonName : [commonName]));
  }
  return names;
}
