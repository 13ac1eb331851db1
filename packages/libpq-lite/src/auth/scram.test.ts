import { describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  MAX_SCRAM_ITERATIONS,
  md5PasswordResponse,
  normalizeScramPassword,
  ScramClient,
} from '../index.js';

// RFC 7677 section 3.
const clientNonce = 'rOprNGfwEbeRWgbNEkqO';
const serverFirst = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
const clientFinal =
  'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=';
const serverFinal = 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=';

function rfcClient(): ScramClient {
  return new ScramClient({
    password: Buffer.from('pencil'),
    channelBinding: { kind: 'none' },
    nonce: clientNonce,
    user: 'user',
  });
}

async function rejection(promise: Promise<unknown> | (() => unknown)): Promise<AuthenticationError> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (error) {
    expect(error).toBeInstanceOf(AuthenticationError);
    return error as AuthenticationError;
  }
  throw new Error('expected a rejection');
}

describe('SCRAM-SHA-256', () => {
  it('reproduces the RFC 7677 test vector', async () => {
    const client = rfcClient();
    expect(client.mechanism).toBe('SCRAM-SHA-256');
    expect(client.clientFirstMessage().toString()).toBe(`n,,n=user,r=${clientNonce}`);
    expect((await client.clientFinalMessage(Buffer.from(serverFirst))).toString()).toBe(clientFinal);
    client.verifyServerFinal(Buffer.from(serverFinal));
    expect(client.completed).toBe(true);
  });

  it('sends an empty user name and a 24-character nonce by default', () => {
    const client = new ScramClient({ password: Buffer.from('x'), channelBinding: { kind: 'none' } });
    expect(client.clientFirstMessage().toString()).toMatch(/^n,,n=,r=[A-Za-z0-9+/]{24}$/);
  });

  it('uses the y flag and the PLUS binding data', async () => {
    const unused = new ScramClient({
      password: Buffer.from('p'),
      channelBinding: { kind: 'unused' },
      nonce: 'abc',
    });
    expect(unused.clientFirstMessage().toString()).toBe('y,,n=,r=abc');
    expect((await unused.clientFinalMessage(Buffer.from('r=abcdef,s=QUJD,i=1'))).toString()).toMatch(
      /^c=eSws,r=abcdef,p=/,
    );

    const hash = Buffer.alloc(32, 7);
    const plus = new ScramClient({
      password: Buffer.from('p'),
      channelBinding: { kind: 'tls-server-end-point', certificateHash: hash },
      nonce: 'abc',
    });
    expect(plus.mechanism).toBe('SCRAM-SHA-256-PLUS');
    expect(plus.clientFirstMessage().toString()).toBe('p=tls-server-end-point,,n=,r=abc');
    const final = (await plus.clientFinalMessage(Buffer.from('r=abcdef,s=QUJD,i=1'))).toString();
    const binding = Buffer.concat([Buffer.from('p=tls-server-end-point,,'), hash]).toString('base64');
    expect(final.startsWith(`c=${binding},r=abcdef,p=`)).toBe(true);
  });

  it('rejects a server nonce that does not extend ours', async () => {
    const client = rfcClient();
    client.clientFirstMessage();
    const error = await rejection(client.clientFinalMessage(Buffer.from('r=someoneElse,s=QUJD,i=4096')));
    expect(error.message).toBe('invalid SCRAM response (nonce mismatch)');
  });

  it.each([
    ['r=rOprNGfwEbeRWgbNEkqOxx,s=@@@,i=4096', 'malformed SCRAM message (invalid salt)'],
    ['r=rOprNGfwEbeRWgbNEkqOxx,s=QUJD,i=0', 'malformed SCRAM message (invalid iteration count)'],
    ['r=rOprNGfwEbeRWgbNEkqOxx,s=QUJD,i=x', 'malformed SCRAM message (invalid iteration count)'],
    [
      'r=rOprNGfwEbeRWgbNEkqOxx,s=QUJD,i=1,x=y',
      'malformed SCRAM message (garbage at end of server-first-message)',
    ],
    ['', 'malformed SCRAM message (empty message)'],
    ['r=rOprNGfwEbeRWgbNEkqOxx\0,s=QUJD,i=1', 'malformed SCRAM message (length mismatch)'],
    ['s=QUJD,i=1', 'malformed SCRAM message (attribute "r" expected)'],
  ])('rejects server-first %j', async (message, expected) => {
    const client = rfcClient();
    client.clientFirstMessage();
    const error = await rejection(client.clientFinalMessage(Buffer.from(message)));
    expect(error.code).toBe('WAL_ERR_AUTH_SCRAM');
    expect(error.message).toBe(expected);
  });

  it('caps the iteration count', async () => {
    const client = rfcClient();
    client.clientFirstMessage();
    const error = await rejection(
      client.clientFinalMessage(Buffer.from(`r=${clientNonce}x,s=QUJD,i=${MAX_SCRAM_ITERATIONS + 1}`)),
    );
    expect(error.message).toContain('SCRAM iterations');
  });

  it('rejects a wrong server signature, an error and a malformed signature', async () => {
    const prepare = async () => {
      const client = rfcClient();
      client.clientFirstMessage();
      await client.clientFinalMessage(Buffer.from(serverFirst));
      return client;
    };
    const wrong = Buffer.from(serverFinal);
    wrong[5] = wrong[5] === 0x41 ? 0x42 : 0x41;
    const client = await prepare();
    const error = await rejection(() => client.verifyServerFinal(wrong));
    expect(error.code).toBe('WAL_ERR_AUTH_SERVER_SIGNATURE');
    expect(client.completed).toBe(false);
    expect(
      (await rejection(async () => (await prepare()).verifyServerFinal(Buffer.from('e=invalid-proof'))))
        .message,
    ).toBe('error received from server in SCRAM exchange: invalid-proof');
    expect(
      (await rejection(async () => (await prepare()).verifyServerFinal(Buffer.from('v=QUJD')))).message,
    ).toBe('malformed SCRAM message (invalid server signature)');
  });

  it('applies SASLprep, and falls back to raw bytes like libpq', () => {
    // U+00AD (soft hyphen) is mapped to nothing; U+2168 (ROMAN NUMERAL NINE) NFKC-normalises to "IX".
    expect(normalizeScramPassword(Buffer.from('pen\u00adcil\u2168')).toString()).toBe('pencilIX');
    // Prohibited character (U+0007): SASLprep fails, raw bytes are used.
    expect(normalizeScramPassword(Buffer.from('a\u0007b'))).toEqual(Buffer.from('a\u0007b'));
    // Not UTF-8: raw bytes.
    const latin1 = Buffer.from([0x70, 0xe9]);
    expect(normalizeScramPassword(latin1)).toEqual(latin1);
  });
});

describe('md5 password', () => {
  it('matches the known stored hash of postgres/postgres and salts it', () => {
    // md5(password || user) for postgres/postgres is the well-known 3175bce1d3201d16594cebf9d7eb3f9d.
    const salt = Buffer.from([1, 2, 3, 4]);
    const response = md5PasswordResponse(Buffer.from('postgres'), 'postgres', salt).toString();
    // Outer step computed independently (Python hashlib): md5("3175bce1d3201d16594cebf9d7eb3f9d" || 01020304).
    expect(response).toBe('md568be9ed08db75f318087ab337aaea044');
  });
});
