import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { createSelfSignedCertificate } from './certificate.js';
import { ServerModel } from './model.js';

const MB = 1024 * 1024;

describe('ServerModel', () => {
  it('chains timelines at record starts and writes history files like timeline.c', () => {
    const model = new ServerModel({
      segmentSize: MB,
      timelines: [
        { timeline: 1, switchAt: 0x180000n },
        { timeline: 2, switchAt: 0x280000n },
        { timeline: 5 },
      ],
    });
    const [first, second, third] = model.timelines;
    expect(first!.endLsn! >= 0x180000n && first!.endLsn! < 0x180000n + 30000n).toBe(true);
    expect(first!.generator.recordBefore(first!.endLsn!)).toBeDefined();
    expect(third!.parent).toBe(2);
    expect(model.currentTimeline.timeline).toBe(5);
    expect(model.historyFile(1)).toBeUndefined();
    expect(model.historyFile(2)?.content.toString()).toBe(
      `1\t0/${first!.endLsn!.toString(16).toUpperCase()}\tno recovery target specified\n`,
    );
    expect(model.historyFile(5)).toEqual({
      fileName: '00000005.history',
      content: Buffer.from(
        `1\t0/${first!.endLsn!.toString(16).toUpperCase()}\tno recovery target specified\n\n` +
          `2\t0/${second!.endLsn!.toString(16).toUpperCase()}\tno recovery target specified\n`,
      ),
    });
    expect(model.timelineOfLsn(0x100000n)).toBe(1);
    expect(model.timelineOfLsn(0x200000n)).toBe(2);
    expect(model.timelineOfLsn(0x300000n)).toBe(5);
    expect(model.endOf(first!)).toBe(first!.endLsn);
    expect(model.endOf(third!)).toBe(model.flushLsn);
  });

  it('keeps a switch point on a segment boundary (after XLOG_SWITCH) and the WAL continuous across it', () => {
    const model = new ServerModel({
      segmentSize: MB,
      timelines: [{ timeline: 1, switchAt: 0x300000n }, { timeline: 2 }],
    });
    const [first, second] = model.timelines;
    expect(first!.endLsn).toBe(0x300000n);
    expect(model.historyFile(2)?.content.toString()).toBe('1\t0/300000\tno recovery target specified\n');
    expect(model.timelineOfLsn(0x2fffffn)).toBe(1);
    expect(model.timelineOfLsn(0x300000n)).toBe(2);
    // Timeline 2's first segment holds timeline 1's bytes up to the next record start, then its own.
    const handover = first!.generator.recordStartAtOrAfter(0x300000n);
    expect(
      second!.generator.read(0x200000n, handover).equals(first!.generator.read(0x200000n, handover)),
    ).toBe(true);
    expect(
      second!.generator
        .read(handover, handover + 0x100n)
        .equals(first!.generator.read(handover, handover + 0x100n)),
    ).toBe(false);
  });

  it('defaults: version 17, 16 MB, flush 3.5 segments after segment 1, reported = flush', () => {
    const model = new ServerModel();
    expect(model.versionText).toBe('17.2');
    expect(model.flushLsn).toBe(0x4800000n);
    expect(model.reportedLsn).toBe(model.flushLsn);
    expect(new ServerModel({ reportedLsn: 'first-segment' }).reportedLsn).toBe(0x1000090n);
    expect(model.parameters.integer_datetimes).toBe('on');
  });

  it('refuses impossible servers with clear errors', () => {
    expect(() => new ServerModel({ version: 13 })).toThrow(/major from 14 to 19, got 13/);
    expect(() => new ServerModel({ segmentSize: 3 * MB })).toThrow(/Invalid WAL segment size 3145728/);
    expect(() => new ServerModel({ timelines: [{ timeline: 1 }, { timeline: 2 }] })).toThrow(
      /Timeline 1 is not the last one and needs switchAt/,
    );
  });
});

describe('createSelfSignedCertificate', () => {
  it('makes a certificate Node parses, that signs itself, for localhost and 127.0.0.1', () => {
    const pair = createSelfSignedCertificate({ commonName: 'test-server', days: 2 });
    const certificate = new X509Certificate(pair.certificate);
    expect(certificate.subject).toBe('CN=test-server');
    expect(certificate.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1');
    expect(certificate.verify(certificate.publicKey)).toBe(true);
    expect(certificate.checkHost('localhost')).toBe('localhost');
    expect(new Date(certificate.validTo).getTime() - Date.now()).toBeLessThanOrEqual(2 * 86_400_000);
    expect(pair.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it.each([
    ['a leading zero byte', '0005a1b2c3d4e5f60718293a4b5c6d7e', '05A1B2C3D4E5F60718293A4B5C6D7E'],
    ['the top bit set', '85a1b2c3d4e5f60718293a4b5c6d7e8f', '85A1B2C3D4E5F60718293A4B5C6D7E8F'],
    ['two leading zero bytes', '0000f1b2c3d4e5f60718293a4b5c6d7e', 'F1B2C3D4E5F60718293A4B5C6D7E'],
  ])('encodes a random serial with %s as DER requires, so TLS accepts it', (_case, random, serial) => {
    const pair = createSelfSignedCertificate({ serial: Buffer.from(random, 'hex') });
    expect(() => createSecureContext({ cert: pair.certificate, key: pair.privateKey })).not.toThrow();
    expect(new X509Certificate(pair.certificate).serialNumber).toBe(serial);
  });
});
