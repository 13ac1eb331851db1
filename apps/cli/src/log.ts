import { escapeControlCharacters, type NoticeFields } from '@wal/protocol';

/**
 * stderr output in the shape of PostgreSQL's client tools (src/common/logging.c):
 * `wal receive: error: …`, `warning:`, `hint:`, `detail:`, and info lines without a level word;
 * the server's notices as libpq prints them (`NOTICE:  …`). With --json every line is one JSON
 * object instead, for log shippers. A progress line, when enabled, is redrawn below the log lines
 * on a terminal and never written to a pipe or file.
 *
 * Text output never carries a control character but line breaks and tabs: anything else in a
 * message (a server's text, a file name) is shown escaped (`\x1b`), so nothing printed can move
 * the cursor or change the terminal. `detail:` and `hint:` lines and notices, which carry the
 * server's fields, escape line breaks too: one field, one line.
 */

export type LogLevel = 'error' | 'warning' | 'notice' | 'hint' | 'detail' | 'info' | 'trace';

export interface LogOutput {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

export interface LoggerOptions {
  /** What starts every line: `wal receive`. */
  readonly program: string;
  readonly output: LogOutput;
  readonly json?: boolean;
  /**
   * Whether reports use our wording where it deliberately differs from pg_receivewal's
   * (suggestions on `hint:` lines, fuller messages; docs/adr/0006-receiver-deviations.md,
   * "Messages"); false under the drop-in name `pg_receivewal`. Default true.
   */
  readonly ownWording?: boolean;
  /**
   * The `wal daemon` server the lines are about: text lines start `wal daemon [main]: …`, JSON
   * records carry a `server` field.
   */
  readonly server?: string;
  readonly now?: () => Date;
  /**
   * Added to every JSON record after `message`: `server` names the archived server, as the
   * metrics' label does (`default` for `wal receive`). Text lines do not show them.
   */
  readonly fields?: Readonly<Record<string, unknown>>;
}

export class Logger {
  readonly program: string;
  readonly json: boolean;
  readonly ownWording: boolean;
  readonly server: string | undefined;
  private readonly output: LogOutput;
  private readonly now: () => Date;
  private readonly fields: Readonly<Record<string, unknown>>;
  private progressShown = false;

  constructor(options: LoggerOptions) {
    this.program = options.program;
    this.fields = options.fields ?? {};
    this.output = options.output;
    this.json = options.json ?? false;
    this.ownWording = options.ownWording ?? true;
    this.server = options.server;
    this.now = options.now ?? (() => new Date());
  }

  error(message: string, fields?: Record<string, unknown>): void {
    this.line('error', message, fields);
  }

  warning(message: string, fields?: Record<string, unknown>): void {
    this.line('warning', message, fields);
  }

  hint(message: string, fields?: Record<string, unknown>): void {
    this.line('hint', message, fields);
  }

  detail(message: string, fields?: Record<string, unknown>): void {
    this.line('detail', message, fields);
  }

  info(message: string, fields?: Record<string, unknown>): void {
    this.line('info', message, fields);
  }

  trace(message: string): void {
    this.line('trace', message);
  }

  /**
   * A NoticeResponse of the server, as libpq's default notice processor prints it: bare, without
   * the program name (`NOTICE:  …`, then `DETAIL:  …`, `HINT:  …`, `QUERY:  …`). In JSON mode a
   * record with level `warning` (WARNING) or `notice` (NOTICE, INFO, …) and the fields.
   */
  serverNotice(fields: NoticeFields): void {
    if (this.json) {
      const severity = fields.severityNonLocalized ?? fields.severity;
      this.line(severity === 'WARNING' ? 'warning' : 'notice', fields.message, {
        severity,
        sqlState: fields.code,
        ...(fields.detail === undefined ? {} : { detail: fields.detail }),
        ...(fields.hint === undefined ? {} : { hint: fields.hint }),
      });
      return;
    }
    // A daemon's notice says which server sent it, libpq's form after the label.
    let text = `${this.server === undefined ? '' : `${this.label}: `}${escapeControlCharacters(fields.severity)}:  ${escapeControlCharacters(fields.message)}\n`;
    if (fields.detail !== undefined) text += `DETAIL:  ${escapeControlCharacters(fields.detail)}\n`;
    if (fields.hint !== undefined) text += `HINT:  ${escapeControlCharacters(fields.hint)}\n`;
    if (fields.internalQuery !== undefined)
      text += `QUERY:  ${escapeControlCharacters(fields.internalQuery)}\n`;
    this.emit(text);
  }

  /** A complaint printed bare after the program name, as glibc's getopt prints its own. */
  bare(message: string): void {
    if (this.json) this.line('error', message);
    else this.emit(`${this.label}: ${escapeControlCharacters(message, { keepLineBreaks: true })}\n`);
  }

  /** Whether a progress line would be seen: only on a terminal, never in JSON mode. */
  get canShowProgress(): boolean {
    return !this.json && this.output.isTTY === true;
  }

  /** Replace the progress line (no newline; the next log line clears it first). */
  progress(text: string): void {
    if (!this.canShowProgress) return;
    this.output.write(`\r\u001b[K${this.program}: ${text}`);
    this.progressShown = true;
  }

  clearProgress(): void {
    if (!this.progressShown) return;
    this.output.write('\r\u001b[K');
    this.progressShown = false;
  }

  private line(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    if (this.json) {
      const server = this.server === undefined ? {} : { server: this.server };
      const record = {
        time: this.now().toISOString(),
        program: this.program,
        ...server,
        level,
        message,
        ...this.fields,
        ...fields,
      };
      this.emit(`${escapeJsonControls(JSON.stringify(record, jsonReplacer))}\n`);
      return;
    }
    const prefix = level === 'info' ? '' : `${level}: `;
    const keepLineBreaks = level !== 'detail' && level !== 'hint';
    this.emit(`${this.label}: ${prefix}${escapeControlCharacters(message, { keepLineBreaks })}\n`);
  }

  /** What starts a text line: the program, and the daemon's server in brackets. */
  private get label(): string {
    return this.server === undefined ? this.program : `${this.program} [${this.server}]`;
  }

  private emit(text: string): void {
    this.clearProgress();
    this.output.write(text);
  }
}

/**
 * JSON.stringify escapes C0 controls but leaves DEL and the C1 controls (U+009B is a CSI on some
 * terminals) raw; `\u00XX` is the same string to a JSON reader.
 */
function escapeJsonControls(json: string): string {
  return json.replace(/[\u007f-\u009f]/g, (character) => `\\u00${character.charCodeAt(0).toString(16)}`);
}

/** LSNs and system identifiers are bigints: JSON gets them as decimal strings. */
function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
