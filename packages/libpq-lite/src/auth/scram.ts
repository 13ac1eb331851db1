import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { AuthenticationError } from '../errors.js';
import { nodeCrypto } from '../lazy-crypto.js';

/**
 * The largest iteration count we accept from a server. PostgreSQL defaults to 4096 and
 * `scram_iterations` allows up to INT_MAX; a hostile or misconfigured server could make us spend
 * minutes of CPU. Ten million takes a few seconds and is far above any sane setting.
 */
export const MAX_SCRAM_ITERATIONS = 10_000_000;

/** 18 random bytes, as libpq (`SCRAM_RAW_NONCE_LEN`), base64 to 24 characters. */
const RAW_NONCE_LENGTH = 18;

export type ChannelBindingChoice =
  | { kind: 'none' } // gs2 'n': client does not support channel binding
  | { kind: 'unused' } // gs2 'y': client supports it, thinks the server does not
  | { kind: 'tls-server-end-point'; certificateHash: Buffer };

/**
 * SASLprep the password (RFC 4013) or, as libpq does when that fails or the password is not
 * valid UTF-8, use the raw bytes.
 */
export function normalizeScramPassword(password: Buffer): Buffer {
  const text = password.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(password)) return password;
  try {
    return Buffer.from(loadSaslprep()(text), 'utf8');
  } catch {
    return password;
  }
}

type Saslprep = (text: string) => string;
let saslprep: Saslprep | undefined;

/**
 * Loaded on first use, not with the module: its Unicode tables take megabytes of memory, which a
 * receiver that authenticates with trust, md5 or a certificate never needs (peak RSS is one of the
 * receiver's measures in bench/README.md).
 */
function loadSaslprep(): Saslprep {
  if (saslprep === undefined) {
    const loaded = createRequire(import.meta.url)('@mongodb-js/saslprep') as Saslprep | { default: Saslprep };
    saslprep = typeof loaded === 'function' ? loaded : loaded.default;
  }
  return saslprep;
}

function hmac(key: Buffer, data: Buffer | string): Buffer {
  return nodeCrypto().createHmac('sha256', key).update(data).digest();
}

function scramError(message: string): AuthenticationError {
  return new AuthenticationError('WAL_ERR_AUTH_SCRAM', message);
}

/** Parses a SCRAM message into its `k=v` attributes, in order, checking the shape libpq checks. */
function readAttribute(text: string, position: number, name: string): { value: string; next: number } {
  if (text[position] !== name || text[position + 1] !== '=') {
    throw scramError(`malformed SCRAM message (attribute "${name}" expected)`);
  }
  const end = text.indexOf(',', position + 2);
  const stop = end < 0 ? text.length : end;
  return { value: text.slice(position + 2, stop), next: end < 0 ? text.length : end + 1 };
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decodeBase64Strict(text: string): Buffer | undefined {
  return BASE64.test(text) ? Buffer.from(text, 'base64') : undefined;
}

/**
 * One SCRAM-SHA-256(-PLUS) client exchange (RFC 5802, RFC 7677; libpq `fe-auth-scram.c`).
 * The user name in the messages is empty: the server takes the startup user.
 */
export class ScramClient {
  readonly mechanism: 'SCRAM-SHA-256' | 'SCRAM-SHA-256-PLUS';
  private readonly password: Buffer;
  private readonly nonce: string;
  private readonly gs2Header: string;
  private readonly channelBinding: ChannelBindingChoice;
  private clientFirstBare = '';
  private authMessage = '';
  private saltedPassword: Buffer | undefined;
  private state: 'initial' | 'first-sent' | 'final-sent' | 'done' = 'initial';

  private readonly userName: string;

  /** `user` and `nonce` are for test vectors only: PostgreSQL takes the user from the startup packet. */
  constructor(options: {
    password: Buffer;
    channelBinding: ChannelBindingChoice;
    nonce?: string;
    user?: string;
  }) {
    this.userName = options.user ?? '';
    this.password = normalizeScramPassword(options.password);
    this.channelBinding = options.channelBinding;
    this.mechanism =
      options.channelBinding.kind === 'tls-server-end-point' ? 'SCRAM-SHA-256-PLUS' : 'SCRAM-SHA-256';
    this.nonce = options.nonce ?? nodeCrypto().randomBytes(RAW_NONCE_LENGTH).toString('base64');
    this.gs2Header =
      options.channelBinding.kind === 'tls-server-end-point'
        ? 'p=tls-server-end-point,,'
        : options.channelBinding.kind === 'unused'
          ? 'y,,'
          : 'n,,';
  }

  /** client-first-message, for SASLInitialResponse. */
  clientFirstMessage(): Buffer {
    this.clientFirstBare = `n=${this.userName},r=${this.nonce}`;
    this.state = 'first-sent';
    return Buffer.from(`${this.gs2Header}${this.clientFirstBare}`, 'utf8');
  }

  /** Consumes server-first-message, returns client-final-message (for SASLResponse). */
  async clientFinalMessage(serverFirst: Buffer): Promise<Buffer> {
    if (this.state !== 'first-sent') throw scramError('invalid SCRAM exchange state');
    const text = checkMessage(serverFirst);
    let attribute = readAttribute(text, 0, 'r');
    const combinedNonce = attribute.value;
    if (!combinedNonce.startsWith(this.nonce) || combinedNonce.length <= this.nonce.length) {
      throw scramError('invalid SCRAM response (nonce mismatch)');
    }
    attribute = readAttribute(text, attribute.next, 's');
    const salt = decodeBase64Strict(attribute.value);
    if (salt === undefined || salt.length === 0) throw scramError('malformed SCRAM message (invalid salt)');
    attribute = readAttribute(text, attribute.next, 'i');
    if (!/^\d+$/.test(attribute.value)) throw scramError('malformed SCRAM message (invalid iteration count)');
    const iterations = Number(attribute.value);
    if (iterations < 1 || !Number.isSafeInteger(iterations)) {
      throw scramError('malformed SCRAM message (invalid iteration count)');
    }
    if (attribute.next !== text.length || text.endsWith(',')) {
      throw scramError('malformed SCRAM message (garbage at end of server-first-message)');
    }
    if (iterations > MAX_SCRAM_ITERATIONS) {
      throw scramError(
        `server asked for ${iterations} SCRAM iterations, more than the ${MAX_SCRAM_ITERATIONS} this client accepts; ` +
          'lower scram_iterations on the server and set the password again',
      );
    }

    let bindingInput = Buffer.from(this.gs2Header, 'utf8');
    if (this.channelBinding.kind === 'tls-server-end-point') {
      bindingInput = Buffer.concat([bindingInput, this.channelBinding.certificateHash]);
    }
    const withoutProof = `c=${bindingInput.toString('base64')},r=${combinedNonce}`;
    // PBKDF2 runs on the libuv thread pool so a large iteration count does not block the event loop.
    this.saltedPassword = await promisify(nodeCrypto().pbkdf2)(this.password, salt, iterations, 32, 'sha256');
    this.authMessage = `${this.clientFirstBare},${text},${withoutProof}`;
    const clientKey = hmac(this.saltedPassword, 'Client Key');
    const storedKey = nodeCrypto().createHash('sha256').update(clientKey).digest();
    const clientSignature = hmac(storedKey, this.authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let index = 0; index < proof.length; index++)
      proof[index] = clientKey[index]! ^ clientSignature[index]!;
    this.state = 'final-sent';
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'utf8');
  }

  /** Verifies server-final-message; throws unless the server proved it knows the password. */
  verifyServerFinal(serverFinal: Buffer): void {
    if (this.state !== 'final-sent' || this.saltedPassword === undefined) {
      throw scramError('invalid SCRAM exchange state');
    }
    const text = checkMessage(serverFinal);
    if (text.startsWith('e=')) {
      throw scramError(`error received from server in SCRAM exchange: ${text.slice(2)}`);
    }
    const attribute = readAttribute(text, 0, 'v');
    if (attribute.next !== text.length) {
      throw scramError('malformed SCRAM message (garbage at end of server-final-message)');
    }
    const signature = decodeBase64Strict(attribute.value);
    if (signature === undefined || signature.length !== 32) {
      throw scramError('malformed SCRAM message (invalid server signature)');
    }
    const serverKey = hmac(this.saltedPassword, 'Server Key');
    const expected = hmac(serverKey, this.authMessage);
    if (!nodeCrypto().timingSafeEqual(expected, signature)) {
      throw new AuthenticationError(
        'WAL_ERR_AUTH_SERVER_SIGNATURE',
        'incorrect server signature: the server could not prove it knows the password; it may be an impostor',
      );
    }
    this.state = 'done';
  }

  get completed(): boolean {
    return this.state === 'done';
  }
}

function checkMessage(message: Buffer): string {
  if (message.length === 0) throw scramError('malformed SCRAM message (empty message)');
  if (message.includes(0)) throw scramError('malformed SCRAM message (length mismatch)');
  return message.toString('utf8');
}
