import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCertificateAuthority, issueCertificate, writeCertificateFiles } from './certificates.js';

// node:crypto's X509Certificate is the independent oracle: it parses and verifies what
// @peculiar/x509 produced.
describe('test certificates', () => {
  it('issues a server certificate for localhost, 127.0.0.1 and ::1 that the CA verifies', async () => {
    const authority = await createCertificateAuthority();
    const ca = new X509Certificate(authority.certificatePem);
    expect(ca.ca).toBe(true);
    expect(ca.verify(ca.publicKey)).toBe(true);

    const issued = await issueCertificate(authority, {
      commonName: 'localhost',
      usage: 'server',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1', '::1'],
    });
    const server = new X509Certificate(issued.certificatePem);
    expect(server.ca).toBe(false);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(server.checkIssued(ca)).toBe(true);
    expect(server.checkHost('localhost')).toBe('localhost');
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(server.checkIP('::1')).toBe('::1');
    expect(server.checkIP('10.0.0.1')).toBeUndefined();
    expect(server.keyUsage).toContain('1.3.6.1.5.5.7.3.1');
    expect(issued.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it('issues client certificates whose CN is the user name', async () => {
    const authority = await createCertificateAuthority();
    const issued = await issueCertificate(authority, { commonName: 'replicator', usage: 'client' });
    const client = new X509Certificate(issued.certificatePem);
    expect(client.subject).toBe('CN=replicator');
    expect(client.keyUsage).toContain('1.3.6.1.5.5.7.3.2');
    expect(client.verify(new X509Certificate(authority.certificatePem).publicKey)).toBe(true);
  });

  it('rejects a common name that would need escaping', async () => {
    const authority = await createCertificateAuthority();
    await expect(
      issueCertificate(authority, { commonName: 'a,CN=b', usage: 'client' }),
    ).rejects.toMatchObject({
      code: 'WAL_ERR_CLUSTER_OPTIONS',
      message: expect.stringContaining('common name "a,CN=b"'),
    });
  });

  it('writes the key readable by its owner only', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'wal-certs-'));
    try {
      const authority = await createCertificateAuthority();
      const files = await writeCertificateFiles(
        directory,
        'client',
        await issueCertificate(authority, { commonName: 'alice', usage: 'client' }),
      );
      expect((await stat(files.keyPath)).mode & 0o777).toBe(0o600);
      expect(await readFile(files.certPath, 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
