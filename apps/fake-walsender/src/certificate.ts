import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';

/**
 * A self-signed ECDSA P-256 certificate made at run time, so the fake server can offer TLS without
 * files or an `openssl` binary. Node can parse but not build X.509, so the few DER structures of a
 * certificate are written here (RFC 5280 §4.1).
 */
export interface SelfSignedCertificate {
  /** PEM certificate (also the CA a client can pin, since it signs itself). */
  certificate: string;
  /** PEM PKCS#8 private key. */
  privateKey: string;
}

function length(size: number): Buffer {
  if (size < 0x80) return Buffer.from([size]);
  const bytes: number[] = [];
  for (let rest = size; rest > 0; rest >>>= 8) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function der(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const sequence = (...contents: Buffer[]) => der(0x30, ...contents);
const set = (...contents: Buffer[]) => der(0x31, ...contents);

function objectIdentifier(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const bytes = [40 * parts[0]! + parts[1]!];
  for (const part of parts.slice(2)) {
    const encoded = [part & 0x7f];
    for (let rest = Math.floor(part / 128); rest > 0; rest = Math.floor(rest / 128))
      encoded.unshift(0x80 | (rest & 0x7f));
    bytes.push(...encoded);
  }
  return der(0x06, Buffer.from(bytes));
}

/** DER wants the shortest form: no leading zero byte unless the next one has its top bit set. */
function positiveInteger(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0 && !(bytes[start + 1]! & 0x80)) start++;
  const value = bytes.subarray(start);
  return der(0x02, value[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), value]) : value);
}

function utcTime(date: Date): Buffer {
  const text = `${date.toISOString().slice(2, 19).replace(/[-:T]/g, '')}Z`;
  return der(0x17, Buffer.from(text, 'ascii'));
}

function commonName(name: string): Buffer {
  return sequence(set(sequence(objectIdentifier('2.5.4.3'), der(0x0c, Buffer.from(name, 'utf8')))));
}

/** A certificate for `localhost` and 127.0.0.1, valid from an hour ago for `days` days. */
export function createSelfSignedCertificate(
  options: { commonName?: string; days?: number; serial?: Buffer } = {},
): SelfSignedCertificate {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ecdsaWithSha256 = sequence(objectIdentifier('1.2.840.10045.4.3.2'));
  const name = commonName(options.commonName ?? 'fake-walsender');
  const now = Date.now();
  const notBefore = new Date(now - 3600_000);
  const notAfter = new Date(now + (options.days ?? 30) * 86_400_000);
  const serial = options.serial ?? randomBytes(16);
  const subjectAltName = sequence(
    objectIdentifier('2.5.29.17'),
    der(0x04, sequence(der(0x82, Buffer.from('localhost', 'ascii')), der(0x87, Buffer.from([127, 0, 0, 1])))),
  );
  const toBeSigned = sequence(
    der(0xa0, positiveInteger(Buffer.from([2]))),
    positiveInteger(serial),
    ecdsaWithSha256,
    name,
    sequence(utcTime(notBefore), utcTime(notAfter)),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    der(0xa3, sequence(subjectAltName)),
  );
  const signature = sign('sha256', toBeSigned, privateKey);
  const certificate = sequence(toBeSigned, ecdsaWithSha256, der(0x03, Buffer.from([0]), signature));
  const base64 = certificate.toString('base64').replace(/.{64}/g, '$&\n');
  return {
    certificate: `-----BEGIN CERTIFICATE-----\n${base64.trimEnd()}\n-----END CERTIFICATE-----\n`,
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}
