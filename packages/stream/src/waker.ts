import type { ReplicationStream } from '@wal/libpq-lite';

/**
 * The one thing the copy loop waits on when it has nothing to do. It wakes for the first of: the
 * connection has a message (one `waitForMessage` stays outstanding across waits instead of one
 * per message), the connection takes writes again after the server stopped reading, a sink
 * operation settled (`wake`), its timer fired, or `signal` aborted. After a
 * wake-up the loop looks at everything again; the waker only says that something happened.
 */
export class Waker {
  readonly #stream: ReplicationStream;
  readonly #signal: AbortSignal | undefined;
  /** Resolves the pending wait, if any. */
  #resolve: (() => void) | undefined;
  /** Ends the outstanding waitForMessage when the loop stops watching (the connection allows one waiter). */
  readonly #cancel = new AbortController();
  #watching = false;
  /** A `whenWritable` is outstanding. */
  #watchingWritable = false;
  #watchDueAt = Number.POSITIVE_INFINITY;
  #failure: { error: unknown } | undefined;
  /** One timer, re-armed only when a wait must end earlier than it fires. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerDueAt = Number.POSITIVE_INFINITY;
  /** The connection or the timer woke us since the loop last looked (`takeWakeUp`). */
  #woken = false;

  /** Our listener is on `#signal` (from the first wait on, so that a loop never run leaves none). */
  #listening = false;

  constructor(stream: ReplicationStream, signal: AbortSignal | undefined) {
    this.#stream = stream;
    this.#signal = signal;
  }

  readonly wake = (): void => {
    const resolve = this.#resolve;
    if (resolve === undefined) return;
    this.#resolve = undefined;
    resolve();
  };

  readonly #onMessage = (): void => {
    this.#watching = false;
    this.#woken = true;
    this.wake();
  };

  readonly #onWaitError = (error: unknown): void => {
    this.#watching = false;
    // An error after we stopped watching concerns nobody.
    if (!this.#cancel.signal.aborted) this.#failure = { error };
    this.wake();
  };

  readonly #onWritable = (): void => {
    this.#watchingWritable = false;
    this.#woken = true;
    this.wake();
  };

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#timerDueAt = Number.POSITIVE_INFINITY;
    this.#woken = true;
    this.wake();
  };

  /** Throws what waiting on the connection failed with (it failed while we waited). */
  throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure.error;
  }

  /** True once after the connection or the timer woke the loop: look again before waiting. */
  takeWakeUp(): boolean {
    if (!this.#woken) return false;
    this.#woken = false;
    return true;
  }

  /**
   * Waits until woken, for at most `timeoutMs` (none: no limit). With `watchStream` a message
   * from the connection wakes it too.
   */
  wait(now: number, timeoutMs: number | undefined, watchStream: boolean): Promise<void> {
    const dueAt = timeoutMs === undefined ? Number.POSITIVE_INFINITY : now + timeoutMs;
    if (!this.#listening && this.#signal !== undefined) {
      this.#listening = true;
      this.#signal.addEventListener('abort', this.wake);
    }
    if (watchStream && !this.#watching) {
      this.#watching = true;
      this.#watchDueAt = dueAt;
      this.#stream.waitForMessage(timeoutMs, this.#cancel.signal).then(this.#onMessage, this.#onWaitError);
    }
    if (this.#stream.writeBlocked && !this.#watchingWritable) {
      this.#watchingWritable = true;
      this.#stream.whenWritable().then(this.#onWritable, this.#onWritable);
    }
    const watchEndsInTime = this.#watching && this.#watchDueAt <= dueAt;
    if (timeoutMs !== undefined && !watchEndsInTime && dueAt < this.#timerDueAt) {
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = setTimeout(this.#onTimer, Math.max(0, timeoutMs));
      this.#timerDueAt = dueAt;
    }
    return new Promise<void>((resolve) => {
      this.#resolve = resolve;
    });
  }

  /** Ends the outstanding waitForMessage, so that others may wait on the connection. */
  stopWatching(): void {
    if (!this.#watching) return;
    this.#watching = false;
    this.#cancel.abort();
  }

  /** When the copy ends: no timer, no listener, no wait left behind. */
  dispose(): void {
    if (this.#listening) this.#signal?.removeEventListener('abort', this.wake);
    this.#listening = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.stopWatching();
  }
}
