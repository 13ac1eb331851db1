import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

/** How the fake server authenticates (pg_hba method) and with what secret. */
export interface AuthOptions {
  method: 'trust' | 'password' | 'md5' | 'scram-sha-256';
  /** The password the client must present (not needed for trust). */
  password?: string;
  /** Only this user may log in (default: any user). */
  user?: string;
  /** SCRAM iteration count (default 4096, as PostgreSQL's scram_iterations). */
  iterations?: number;
  /** SCRAM salt (default 16 random bytes). */
  salt?: Buffer;
  /** Send a server signature that does not match, to test the client's check. */
  wrongServerSignature?: boolean;
}

/** `"md5" + md5hex(md5hex(password ‖ user) ‖ salt)`: what a client sends for AuthenticationMD5Password. */
export function md5PasswordResponse(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5').update(password).update(user).digest('hex');
  return `md5${createHash('md5').update(inner).update(salt).digest('hex')}`;
}

export interface ScramServerFirst {
  serverFirstMessage: string;
  /** Continues the exchange with the client-final-message; see {@link ScramExchange.finish}. */
  exchange: ScramExchange;
}

/**
 * The server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL runs it (`auth-scram.c`):
 * the user name in the client-first-message is ignored (libpq sends `n=`), channel binding is not
 * offered, so the gs2 header must be `n` or `y`.
 */
export class ScramExchange {
  private readonly clientFirstBare: string;
  private readonly gs2Header: string;
  readonly nonce: string;
  private readonly serverFirst: string;
  private readonly saltedPassword: Buffer;

  private constructor(
    clientFirstBare: string,
    gs2Header: string,
    nonce: string,
    serverFirst: string,
    salted: Buffer,
  ) {
    this.clientFirstBare = clientFirstBare;
    this.gs2Header = gs2Header;
    this.nonce = nonce;
    this.serverFirst = serverFirst;
    this.saltedPassword = salted;
  }

  /** Parse the client-first-message; returns the server-first-message or a reason to refuse. */
  static start(
    clientFirstMessage: string,
    options: { password: string; iterations?: number; salt?: Buffer; serverNonce?: string },
  ): ScramServerFirst | { error: string } {
    const match = /^([ny]),(?:a=[^,]*)?,((?:m=[^,]*,)?n=[^,]*,r=([\x21-\x2b\x2d-\x7e]+)(?:,.*)?)$/.exec(
      clientFirstMessage,
    );
    if (match === null) {
      if (clientFirstMessage.startsWith('p='))
        return { error: 'channel binding is not supported by this server' };
      return { error: 'malformed SCRAM message (client-first-message)' };
    }
    const [, flag, bare, clientNonce] = match;
    const iterations = options.iterations ?? 4096;
    const salt = options.salt ?? randomBytes(16);
    const nonce = clientNonce! + (options.serverNonce ?? randomBytes(18).toString('base64'));
    const serverFirst = `r=${nonce},s=${salt.toString('base64')},i=${iterations}`;
    const salted = pbkdf2Sync(options.password.normalize('NFKC'), salt, iterations, 32, 'sha256');
    return {
      serverFirstMessage: serverFirst,
      exchange: new ScramExchange(bare!, `${flag},,`, nonce, serverFirst, salted),
    };
  }

  /**
   * Check the client-final-message. On success returns the server-final-message `v=<signature>`
   * (deliberately wrong when asked); otherwise the reason, which the server turns into 28P01.
   */
  finish(
    clientFinalMessage: string,
    options: { wrongServerSignature?: boolean } = {},
  ): { serverFinalMessage: string } | { error: string } {
    const match = /^(c=[^,]*,r=[^,]*)(?:,[^,]*)*?,p=([A-Za-z0-9+/=]+)$/.exec(clientFinalMessage);
    if (match === null) return { error: 'malformed SCRAM message (client-final-message)' };
    const withoutProof = match[1]!;
    const channelBinding = /^c=([^,]*)/.exec(withoutProof)![1];
    if (channelBinding !== Buffer.from(this.gs2Header).toString('base64')) {
      return { error: 'SCRAM channel binding check failed' };
    }
    if (/,r=([^,]*)/.exec(withoutProof)![1] !== this.nonce) return { error: 'SCRAM nonce mismatch' };
    const proof = Buffer.from(match[2]!, 'base64');
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const clientKey = createHmac('sha256', this.saltedPassword).update('Client Key').digest();
    const storedKey = createHash('sha256').update(clientKey).digest();
    const clientSignature = createHmac('sha256', storedKey).update(authMessage).digest();
    if (proof.length !== clientSignature.length) return { error: 'invalid SCRAM client proof length' };
    const recoveredClientKey = Buffer.alloc(proof.length);
    for (let index = 0; index < proof.length; index++)
      recoveredClientKey[index] = proof[index]! ^ clientSignature[index]!;
    if (!timingSafeEqual(createHash('sha256').update(recoveredClientKey).digest(), storedKey)) {
      return { error: 'SCRAM proof does not match the password' };
    }
    const serverKey = createHmac('sha256', this.saltedPassword).update('Server Key').digest();
    const signature = createHmac('sha256', serverKey).update(authMessage).digest();
    if (options.wrongServerSignature) signature[0] = signature[0]! ^ 0xff;
    return { serverFinalMessage: `v=${signature.toString('base64')}` };
  }
}
