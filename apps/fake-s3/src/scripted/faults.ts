/** What the scripted endpoint can do to a request instead of, or while, answering it. */
export type Fault =
  /** Answer with this S3 error (XML body, except for HEAD). */
  | { kind: 'error'; status: number; code: string; message?: string }
  /** Destroy the connection after this many body bytes (received for PUT, sent for GET; default 0). */
  | { kind: 'reset'; afterBytes?: number }
  /** Stop answering after this many body bytes, keeping the connection open (default 0). */
  | { kind: 'stall'; afterBytes?: number }
  /** Flip a byte of the body: a PUT's as received (so Content-MD5 catches it), a GET's as sent. */
  | { kind: 'corrupt' }
  /** Do the request (a PUT is stored), then destroy the connection instead of answering. */
  | { kind: 'drop-answer' }
  /** Answer normally after a pause. */
  | { kind: 'delay'; ms: number };

export type Operation = 'GET' | 'PUT' | 'HEAD' | 'DELETE' | 'LIST';

export interface FaultRule {
  /** Which requests it applies to (default all). */
  operation?: Operation;
  /** The object key (`prefix/name`), exactly or by pattern (default all). */
  key?: string | RegExp;
  /** How many matching requests it hits (default 1; `Infinity` for all until cleared). */
  times?: number;
  fault: Fault;
}

/** The queue of scripted faults: the first rule that matches a request is used and counted down. */
export class FaultScript {
  readonly #rules: { rule: FaultRule; left: number }[] = [];

  add(rule: FaultRule): void {
    this.#rules.push({ rule, left: rule.times ?? 1 });
  }

  clear(): void {
    this.#rules.length = 0;
  }

  /** How many hits are still scripted. */
  get pending(): number {
    return this.#rules.reduce((sum, entry) => sum + entry.left, 0);
  }

  take(operation: Operation, key: string): Fault | undefined {
    const index = this.#rules.findIndex(({ rule }) => matches(rule, operation, key));
    const entry = this.#rules[index];
    if (entry === undefined) return undefined;
    entry.left -= 1;
    if (entry.left <= 0) this.#rules.splice(index, 1);
    return entry.rule.fault;
  }
}

function matches(rule: FaultRule, operation: Operation, key: string): boolean {
  if (rule.operation !== undefined && rule.operation !== operation) return false;
  if (rule.key === undefined) return true;
  return typeof rule.key === 'string' ? rule.key === key : rule.key.test(key);
}
