/**
 * The one error base class of the project. Every layer throws a subclass with a stable `code`
 * (`WAL_ERR_*`), so callers and the CLI branch on codes, never on message text.
 * `retryable` tells a reconnect loop whether trying again can help; `docs/errors.md` lists codes.
 */
export class WalError extends Error {
  readonly code: string;
  readonly retryable: boolean;

  constructor(code: string, message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** Bytes from the peer that do not form a valid message. Never retryable: the peer is broken. */
export class ProtocolError extends WalError {
  constructor(code: `WAL_ERR_PROTOCOL_${string}`, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
  }
}
