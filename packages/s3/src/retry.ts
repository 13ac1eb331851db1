import { setTimeout as sleep } from 'node:timers/promises';
import { classify, type RequestContext } from './classify.js';
import { S3Error } from './errors.js';

export interface RetryPolicy {
  /** Tries in all, the first included (default 5). */
  attempts: number;
  /** The cap of the first wait; doubled for each further one (default 200 ms). */
  baseDelayMs: number;
  /** No wait is longer (default 10 s). */
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 200, maxDelayMs: 10_000 };

/** Exponential backoff with full jitter: a random wait up to the doubled cap. */
export function backoffDelay(
  policy: RetryPolicy,
  failedAttempt: number,
  random: () => number = Math.random,
): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (failedAttempt - 1));
  return Math.floor(random() * cap);
}

export function aborted(context: RequestContext, signal: AbortSignal): S3Error {
  return new S3Error('WAL_ERR_S3_ABORTED', `${context.operation} ${context.target} was stopped.`, {
    cause: signal.reason,
  });
}

function exhausted(error: S3Error, attempts: number): S3Error {
  if (attempts <= 1) return error;
  return new S3Error(error.code, `${error.message} (${attempts} attempts)`, {
    cause: error.cause,
    retryable: error.retryable,
    ...(error.status === undefined ? {} : { status: error.status }),
    ...(error.storeCode === undefined ? {} : { storeCode: error.storeCode }),
  });
}

/**
 * Runs one request until it succeeds, fails for good, or the tries run out. Each try gets its own
 * signal, ended by the caller's: an SDK call that is aborted ends its socket at once.
 */
export async function withRetries<T>(
  context: RequestContext,
  policy: RetryPolicy,
  signal: AbortSignal | undefined,
  attempt: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  for (let tries = 1; ; tries += 1) {
    if (signal?.aborted) throw aborted(context, signal);
    const controller = new AbortController();
    const forward = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', forward, { once: true });
    let failure: S3Error;
    try {
      return await attempt(controller.signal);
    } catch (error) {
      if (signal?.aborted) throw aborted(context, signal);
      failure = classify(error, context);
    } finally {
      signal?.removeEventListener('abort', forward);
    }
    if (!failure.retryable || tries >= policy.attempts) throw exhausted(failure, tries);
    try {
      await sleep(backoffDelay(policy, tries), undefined, signal ? { signal } : {});
    } catch {
      throw aborted(context, signal as AbortSignal);
    }
  }
}
