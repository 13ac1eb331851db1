import { TlsError } from './errors.js';
import { nodeCrypto } from './lazy-crypto.js';

/**
 * tls-server-end-point channel binding data (RFC 5929 §4.1): the hash of the DER server
 * certificate, with the hash function of the certificate's signature algorithm, except that MD5
 * and SHA-1 are replaced by SHA-256. libpq: `pgtls_get_peer_certificate_hash`.
 * Node 20 does not expose the signature algorithm, so we read it from the DER ourselves.
 */
export function tlsServerEndPointHash(certificateDer: Buffer): Buffer {
  return nodeCrypto().createHash(certificateHashAlgorithm(certificateDer)).update(certificateDer).digest();
}

const SIGNATURE_HASHES: Record<string, string> = {
  '1.2.840.113549.1.1.4': 'md5', // md5WithRSAEncryption
  '1.2.840.113549.1.1.5': 'sha1', // sha1WithRSAEncryption
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.10045.4.1': 'sha1', // ecdsa-with-SHA1
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.10040.4.3': 'sha1', // dsa-with-sha1
  '2.16.840.1.101.3.4.3.1': 'sha224', // dsa-with-sha224
  '2.16.840.1.101.3.4.3.2': 'sha256', // dsa-with-sha256
};

const DIGESTS: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

const RSASSA_PSS = '1.2.840.113549.1.1.10';

/** The hash name (for `createHash`) to use for tls-server-end-point with this certificate. */
export function certificateHashAlgorithm(certificateDer: Buffer): string {
  const oid = signatureAlgorithmOid(certificateDer);
  let digest: string | undefined;
  if (oid.algorithm === RSASSA_PSS) {
    digest = pssDigest(certificateDer, oid.parameters);
  } else {
    digest = SIGNATURE_HASHES[oid.algorithm];
  }
  if (digest === undefined) {
    throw new TlsError(
      'WAL_ERR_TLS_CERTIFICATE_HASH',
      `could not find digest for signature algorithm ${oid.algorithm} of the server certificate: ` +
        'channel binding is impossible with it (for example Ed25519); use channel_binding=disable or an RSA/ECDSA certificate',
    );
  }
  return digest === 'md5' || digest === 'sha1' ? 'sha256' : digest;
}

interface DerElement {
  tag: number;
  start: number; // first content byte
  end: number; // one past the last content byte
}

function readElement(der: Buffer, offset: number, limit: number): DerElement {
  if (offset + 2 > limit) throw malformed();
  const tag = der[offset]!;
  let length = der[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const lengthBytes = length & 0x7f;
    if (lengthBytes === 0 || lengthBytes > 4 || start + lengthBytes > limit) throw malformed();
    length = 0;
    for (let index = 0; index < lengthBytes; index++) length = length * 256 + der[start + index]!;
    start += lengthBytes;
  }
  const end = start + length;
  if (end > limit) throw malformed();
  return { tag, start, end };
}

function malformed(): TlsError {
  return new TlsError(
    'WAL_ERR_TLS_CERTIFICATE_HASH',
    'could not parse the server certificate (malformed DER)',
  );
}

function decodeOid(der: Buffer, element: DerElement): string {
  if (element.tag !== 0x06 || element.end <= element.start) throw malformed();
  const first = der[element.start]!;
  const parts = [Math.min(Math.floor(first / 40), 2), first - Math.min(Math.floor(first / 40), 2) * 40];
  let value = 0;
  for (let index = element.start + 1; index < element.end; index++) {
    const byte = der[index]!;
    value = value * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) {
      parts.push(value);
      value = 0;
    }
  }
  return parts.join('.');
}

function signatureAlgorithmOid(der: Buffer): { algorithm: string; parameters: DerElement | undefined } {
  const certificate = readElement(der, 0, der.length);
  if (certificate.tag !== 0x30) throw malformed();
  const tbs = readElement(der, certificate.start, certificate.end);
  const algorithmIdentifier = readElement(der, tbs.end, certificate.end);
  if (algorithmIdentifier.tag !== 0x30) throw malformed();
  const oid = readElement(der, algorithmIdentifier.start, algorithmIdentifier.end);
  const parameters =
    oid.end < algorithmIdentifier.end ? readElement(der, oid.end, algorithmIdentifier.end) : undefined;
  return { algorithm: decodeOid(der, oid), parameters };
}

/** RSASSA-PSS-params: `hashAlgorithm [0] EXPLICIT AlgorithmIdentifier DEFAULT sha1`. */
function pssDigest(der: Buffer, parameters: DerElement | undefined): string | undefined {
  if (parameters === undefined || parameters.tag !== 0x30) return 'sha1';
  if (parameters.start >= parameters.end) return 'sha1';
  const first = readElement(der, parameters.start, parameters.end);
  if (first.tag !== 0xa0) return 'sha1';
  const hashIdentifier = readElement(der, first.start, first.end);
  const hashOid = readElement(der, hashIdentifier.start, hashIdentifier.end);
  return DIGESTS[decodeOid(der, hashOid)];
}
