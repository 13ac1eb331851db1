import { describe, expect, it } from 'vitest';
import { md5PasswordResponse, ScramExchange } from './auth.js';

describe('server-side authentication helpers', () => {
  it("md5: matches PostgreSQL's md5(md5(password || user) || salt) computed independently (Python hashlib)", () => {
    expect(md5PasswordResponse('alice', 'secret', Buffer.from([1, 2, 3, 4]))).toBe(
      'md598a0412b9c31436fc53776e863350083',
    );
  });

  it('scram-sha-256: reproduces the RFC 7677 example exchange', () => {
    const first = ScramExchange.start('n,,n=user,r=rOprNGfwEbeRWgbNEkqO', {
      password: 'pencil',
      salt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'),
      iterations: 4096,
      serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
    });
    if ('error' in first) throw new Error(first.error);
    expect(first.serverFirstMessage).toBe(
      'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
    );
    const clientFinal =
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=';
    expect(first.exchange.finish(clientFinal)).toEqual({
      serverFinalMessage: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
    });
    expect(first.exchange.finish(clientFinal, { wrongServerSignature: true })).not.toEqual({
      serverFinalMessage: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
    });
  });

  it('scram-sha-256: refuses a wrong proof, a wrong nonce, channel binding and malformed messages', () => {
    const start = () => {
      const first = ScramExchange.start('n,,n=,r=abc', { password: 'pw', iterations: 1 });
      if ('error' in first) throw new Error(first.error);
      return first.exchange;
    };
    const exchange = start();
    expect(exchange.finish(`c=biws,r=${exchange.nonce},p=${Buffer.alloc(32).toString('base64')}`)).toEqual({
      error: 'SCRAM proof does not match the password',
    });
    expect(start().finish(`c=biws,r=abcdef,p=${Buffer.alloc(32).toString('base64')}`)).toEqual({
      error: 'SCRAM nonce mismatch',
    });
    expect(start().finish('c=eSws,r=x,p=AAAA')).toEqual({ error: 'SCRAM channel binding check failed' });
    expect(start().finish('garbage')).toEqual({ error: 'malformed SCRAM message (client-final-message)' });
    expect(ScramExchange.start('p=tls-server-end-point,,n=,r=abc', { password: 'pw' })).toEqual({
      error: 'channel binding is not supported by this server',
    });
    expect(ScramExchange.start('x,,n=,r=abc', { password: 'pw' })).toEqual({
      error: 'malformed SCRAM message (client-first-message)',
    });
  });
});
