import { describe, expect, it } from 'vitest';
import { parseServerVersion } from './connection.js';
import { describeFrontend } from './trace.js';

describe('parseServerVersion', () => {
  it('reads server_version like PQserverVersion', () => {
    expect(parseServerVersion('15.18 (Debian 15.18-1.pgdg120+1)')).toBe(150018);
    expect(parseServerVersion('18.4')).toBe(180004);
    expect(parseServerVersion('18beta1')).toBe(180000);
    expect(parseServerVersion('17devel')).toBe(170000);
    expect(parseServerVersion('9.6.24')).toBe(90624);
    expect(parseServerVersion('')).toBe(0);
  });
});

describe('trace', () => {
  it('redacts passwords and SCRAM proofs', () => {
    expect(describeFrontend({ type: 'PasswordMessage', password: Buffer.from('hunter2') }, 13)).toBe(
      'F\t13\tPasswordMessage\t[redacted]',
    );
    expect(
      describeFrontend({ type: 'SASLResponse', data: Buffer.from('c=biws,r=abc,p=PROOFPROOF') }, 30),
    ).toBe('F\t30\tSASLResponse\t"c=biws,r=abc,p=[redacted]"');
  });
});
