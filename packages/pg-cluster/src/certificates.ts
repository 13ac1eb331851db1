import { webcrypto } from 'node:crypto';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
// @peculiar/x509 resolves its ASN.1 services through tsyringe, which needs the Reflect metadata
// API installed before the library loads.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { ClusterError } from './errors.js';

// ECDSA P-256 with SHA-256: fast to generate (tests make a CA per cluster), accepted by every
// OpenSSL the embedded servers link, and its SHA-256 signature hash is what
// tls-server-end-point channel binding (SCRAM-SHA-256-PLUS) hashes the certificate with.
const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;
const VALIDITY_MS = 7 * 24 * 60 * 60 * 1000;

// node:crypto's WebCrypto; @peculiar/x509's parameter types name the DOM's Crypto, which this
// DOM-less project does not have, hence the cast through the library's own parameter type.
const crypto = webcrypto;
const x509Crypto = webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[1];
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type CryptoKey = webcrypto.CryptoKey;

export interface CertificateAuthority {
  readonly certificatePem: string;
  readonly keys: CryptoKeyPair;
  readonly certificate: x509.X509Certificate;
}

export interface IssuedCertificate {
  readonly certificatePem: string;
  readonly privateKeyPem: string;
}

/** Files of a certificate and its key on disk. */
export interface CertificateFiles {
  readonly certPath: string;
  readonly keyPath: string;
}

function serialNumber(): string {
  // Positive (high bit clear) 16-byte serial, as RFC 5280 asks.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return Buffer.from(bytes).toString('hex');
}

function validity(): { notBefore: Date; notAfter: Date } {
  // A minute back so a client whose clock is a little behind still accepts it.
  const now = Date.now();
  return { notBefore: new Date(now - 60_000), notAfter: new Date(now + VALIDITY_MS) };
}

function quoteDistinguishedNameValue(value: string): string {
  if (!/^[A-Za-z0-9 ._@-]+$/.test(value) || value.startsWith(' ') || value.endsWith(' ')) {
    throw new ClusterError(
      'WAL_ERR_CLUSTER_OPTIONS',
      `Certificate common name "${value}" must be letters, digits, spaces, ".", "_", "@" or "-".`,
    );
  }
  return value;
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const pkcs8 = await crypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
}

export async function createCertificateAuthority(commonName = 'wal test CA'): Promise<CertificateAuthority> {
  try {
    const keys = await crypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
    const certificate = await x509.X509CertificateGenerator.createSelfSigned(
      {
        serialNumber: serialNumber(),
        name: `CN=${quoteDistinguishedNameValue(commonName)}`,
        ...validity(),
        signingAlgorithm: SIGNING_ALGORITHM,
        keys,
        extensions: [
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, x509Crypto),
        ],
      },
      x509Crypto,
    );
    return { certificatePem: certificate.toString('pem'), keys, certificate };
  } catch (error) {
    if (error instanceof ClusterError) throw error;
    throw new ClusterError('WAL_ERR_CLUSTER_TLS', 'Could not create the test certificate authority.', {
      cause: error,
    });
  }
}

/**
 * Issues a certificate signed by `authority`: a server certificate (serverAuth, with the given
 * DNS names and IP addresses as subjectAltName) or a client certificate (clientAuth, the common
 * name is the database user for `cert` authentication).
 */
export async function issueCertificate(
  authority: CertificateAuthority,
  options: { commonName: string; usage: 'server' | 'client'; dnsNames?: string[]; ipAddresses?: string[] },
): Promise<IssuedCertificate> {
  try {
    const keys = await crypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement,
        true,
      ),
      new x509.ExtendedKeyUsageExtension(
        [options.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth],
        false,
      ),
      await x509.AuthorityKeyIdentifierExtension.create(authority.certificate, false, x509Crypto),
    ];
    const names = [
      ...(options.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
      ...(options.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
    ];
    if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
    const certificate = await x509.X509CertificateGenerator.create(
      {
        serialNumber: serialNumber(),
        subject: `CN=${quoteDistinguishedNameValue(options.commonName)}`,
        issuer: authority.certificate.subject,
        ...validity(),
        signingAlgorithm: SIGNING_ALGORITHM,
        publicKey: keys.publicKey,
        signingKey: authority.keys.privateKey,
        extensions,
      },
      x509Crypto,
    );
    return {
      certificatePem: certificate.toString('pem'),
      privateKeyPem: await privateKeyPem(keys.privateKey),
    };
  } catch (error) {
    if (error instanceof ClusterError) throw error;
    throw new ClusterError('WAL_ERR_CLUSTER_TLS', `Could not issue the ${options.usage} certificate.`, {
      cause: error,
    });
  }
}

/**
 * Writes a certificate and its key as `<name>.crt` / `<name>.key`. Keys are 0600: both the server
 * and libpq refuse a private key that others can read.
 */
export async function writeCertificateFiles(
  directory: string,
  name: string,
  issued: IssuedCertificate,
): Promise<CertificateFiles> {
  const certPath = join(directory, `${name}.crt`);
  const keyPath = join(directory, `${name}.key`);
  await writeFile(certPath, issued.certificatePem, { mode: 0o644 });
  await writeFile(keyPath, issued.privateKeyPem, { mode: 0o600 });
  await chmod(keyPath, 0o600);
  return { certPath, keyPath };
}
