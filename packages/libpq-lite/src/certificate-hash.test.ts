import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { certificateHashAlgorithm, TlsError, tlsServerEndPointHash } from './index.js';

// A deliberately naive DER builder: enough structure for the parser, independent of it.
function der(tag: number, content: Buffer): Buffer {
  const length = content.length;
  const header =
    length < 0x80
      ? Buffer.from([tag, length])
      : length < 0x100
        ? Buffer.from([tag, 0x81, length])
        : Buffer.from([tag, 0x82, length >> 8, length & 0xff]);
  return Buffer.concat([header, content]);
}
const sequence = (...parts: Buffer[]) => der(0x30, Buffer.concat(parts));
const oidBytes: Record<string, number[]> = {
  sha256WithRSA: [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b],
  sha1WithRSA: [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05],
  md5WithRSA: [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04],
  sha512WithRSA: [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d],
  ecdsaSha384: [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03],
  rsassaPss: [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a],
  sha512: [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03],
  ed25519: [0x2b, 0x65, 0x70],
};
const oid = (name: string) => der(0x06, Buffer.from(oidBytes[name]!));
function certificate(algorithm: Buffer): Buffer {
  // Padding in the tbsCertificate pushes the lengths into the long form.
  const tbs = sequence(der(0x04, Buffer.alloc(300, 1)));
  return sequence(tbs, algorithm, der(0x03, Buffer.from([0, 1, 2, 3])));
}

describe('tls-server-end-point hash algorithm', () => {
  it('follows the signature hash, replacing MD5 and SHA-1 with SHA-256', () => {
    expect(
      certificateHashAlgorithm(certificate(sequence(oid('sha256WithRSA'), der(0x05, Buffer.alloc(0))))),
    ).toBe('sha256');
    expect(certificateHashAlgorithm(certificate(sequence(oid('sha1WithRSA'))))).toBe('sha256');
    expect(certificateHashAlgorithm(certificate(sequence(oid('md5WithRSA'))))).toBe('sha256');
    expect(certificateHashAlgorithm(certificate(sequence(oid('sha512WithRSA'))))).toBe('sha512');
    expect(certificateHashAlgorithm(certificate(sequence(oid('ecdsaSha384'))))).toBe('sha384');
  });

  it('reads the hash of RSASSA-PSS parameters (default SHA-1, so SHA-256)', () => {
    const pssSha512 = sequence(oid('rsassaPss'), sequence(der(0xa0, sequence(oid('sha512')))));
    expect(certificateHashAlgorithm(certificate(pssSha512))).toBe('sha512');
    expect(certificateHashAlgorithm(certificate(sequence(oid('rsassaPss'), sequence())))).toBe('sha256');
  });

  it('refuses certificates without a digest, and garbage', () => {
    expect(() => certificateHashAlgorithm(certificate(sequence(oid('ed25519'))))).toThrow(TlsError);
    expect(() => certificateHashAlgorithm(Buffer.from([0x30, 0x05, 0x01]))).toThrow(/malformed DER/);
  });

  it('hashes the whole DER certificate', () => {
    const cert = certificate(sequence(oid('ecdsaSha384')));
    expect(tlsServerEndPointHash(cert)).toEqual(createHash('sha384').update(cert).digest());
  });

  it.skipIf(!hasOpenssl())('agrees with certificates made by openssl', () => {
    const directory = mkdtempSync(join(tmpdir(), 'cert-hash-'));
    try {
      const make = (name: string, args: string[]) => {
        const certificatePath = join(directory, `${name}.pem`);
        execFileSync(
          'openssl',
          [
            'req',
            '-x509',
            '-nodes',
            '-subj',
            '/CN=x',
            '-days',
            '1',
            '-keyout',
            join(directory, `${name}.key`),
            '-out',
            certificatePath,
            ...args,
          ],
          { stdio: 'ignore' },
        );
        const pem = readFileSync(certificatePath, 'utf8');
        return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
      };
      expect(
        certificateHashAlgorithm(
          make('ec384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-sha384']),
        ),
      ).toBe('sha384');
      expect(certificateHashAlgorithm(make('rsa1', ['-newkey', 'rsa:2048', '-sha1']))).toBe('sha256');
      expect(certificateHashAlgorithm(make('rsa512', ['-newkey', 'rsa:2048', '-sha512']))).toBe('sha512');
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
