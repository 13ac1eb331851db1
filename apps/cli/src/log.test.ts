import { WalError } from '@wal/protocol';
import { describe, expect, it } from 'vitest';
import { CommandLineError, UnknownOptionError } from './errors.js';
import { Logger } from './log.js';
import { formatBytes, ProgressMeter } from './progress.js';
import { reportError, suggestionFor } from './report-error.js';
import { CapturedOutput } from './test-support.js';

function logger(options: { json?: boolean; isTTY?: boolean } = {}) {
  const output = new CapturedOutput(options.isTTY ?? false);
  return {
    output,
    logger: new Logger({
      program: 'wal receive',
      output,
      json: options.json ?? false,
      now: () => new Date('2026-01-02T03:04:05.000Z'),
    }),
  };
}

describe('Logger', () => {
  it("a daemon's server: its name in brackets after the program, a server field in JSON", () => {
    const text = new CapturedOutput();
    const log = new Logger({ program: 'wal daemon', output: text, server: 'main' });
    log.error('e');
    log.info('i');
    log.serverNotice({ severity: 'NOTICE', message: 'n' } as never);
    expect(text.lines).toEqual([
      'wal daemon [main]: error: e',
      'wal daemon [main]: i',
      'wal daemon [main]: NOTICE:  n',
    ]);
    const json = new CapturedOutput();
    const now = () => new Date('2026-01-02T03:04:05.000Z');
    new Logger({ program: 'wal daemon', output: json, json: true, server: 'main', now }).info('i', {
      event: 'x',
    });
    expect(JSON.parse(json.lines[0]!)).toEqual({
      time: '2026-01-02T03:04:05.000Z',
      program: 'wal daemon',
      server: 'main',
      level: 'info',
      message: 'i',
      event: 'x',
    });
  });

  it('writes PostgreSQL-style lines: level words except for info', () => {
    const { output, logger: log } = logger();
    log.error('e');
    log.warning('w');
    log.hint('h');
    log.detail('d');
    log.info('i');
    log.bare("unrecognized option '--x'");
    expect(output.lines).toEqual([
      'wal receive: error: e',
      'wal receive: warning: w',
      'wal receive: hint: h',
      'wal receive: detail: d',
      'wal receive: i',
      "wal receive: unrecognized option '--x'",
    ]);
  });

  it('writes one JSON object per line in JSON mode, bigints as strings', () => {
    const { output, logger: log } = logger({ json: true });
    log.info('started', { systemId: 7n });
    log.bare('complaint');
    expect(output.lines.map((line) => JSON.parse(line))).toEqual([
      {
        time: '2026-01-02T03:04:05.000Z',
        program: 'wal receive',
        level: 'info',
        message: 'started',
        systemId: '7',
      },
      { time: '2026-01-02T03:04:05.000Z', program: 'wal receive', level: 'error', message: 'complaint' },
    ]);
  });

  it('escapes control characters in text lines: line breaks stay in messages, not in detail and hint', () => {
    const { output, logger: log } = logger();
    log.error('ERROR:  a\u001b[31m\rb\nDETAIL:  c');
    log.detail('two\nlines\u0007');
    log.hint('x\ny');
    log.info('tab\tkept');
    expect(output.text).toBe(
      'wal receive: error: ERROR:  a\\x1b[31m\\rb\nDETAIL:  c\n' +
        'wal receive: detail: two\\nlines\\x07\n' +
        'wal receive: hint: x\\ny\n' +
        'wal receive: tab\tkept\n',
    );
  });

  it("prints the server's notices bare, as libpq's notice processor, and as records in JSON mode", () => {
    const text = logger();
    text.logger.serverNotice({
      severity: 'NOTICE',
      code: '42622',
      message: 'identifier "a" will be truncated',
    });
    text.logger.serverNotice({
      severity: 'WARNING',
      code: '01000',
      message: 'm\r\n',
      detail: 'd\n',
      hint: 'h',
      internalQuery: 'q',
    });
    expect(text.output.text).toBe(
      'NOTICE:  identifier "a" will be truncated\n' +
        'WARNING:  m\\r\\n\nDETAIL:  d\\n\nHINT:  h\nQUERY:  q\n',
    );

    const json = logger({ json: true });
    json.logger.serverNotice({ severity: 'NOTICE', code: '42622', message: 'n' });
    json.logger.serverNotice({ severity: 'WARNING', code: '01000', message: 'w\u001b\u009b', detail: 'd' });
    // Nothing raw reaches a terminal in JSON mode either, C1 controls included.
    expect(json.output.text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    expect(json.output.lines.map((line) => JSON.parse(line))).toEqual([
      {
        time: '2026-01-02T03:04:05.000Z',
        program: 'wal receive',
        level: 'notice',
        message: 'n',
        severity: 'NOTICE',
        sqlState: '42622',
      },
      {
        time: '2026-01-02T03:04:05.000Z',
        program: 'wal receive',
        level: 'warning',
        message: 'w\u001b\u009b',
        severity: 'WARNING',
        sqlState: '01000',
        detail: 'd',
      },
    ]);
  });

  it('clears the progress line before a log line, and shows progress only on a terminal', () => {
    const terminal = logger({ isTTY: true });
    terminal.logger.progress('50%');
    terminal.logger.info('segment done');
    expect(terminal.output.text).toBe('\r\u001b[Kwal receive: 50%\r\u001b[Kwal receive: segment done\n');

    const pipe = logger({ isTTY: false });
    pipe.logger.progress('50%');
    expect(pipe.output.text).toBe('');
    expect(logger({ isTTY: true, json: true }).logger.canShowProgress).toBe(false);
  });
});

describe('reportError', () => {
  it('prints a server error with its DETAIL and HINT', () => {
    const { output, logger: log } = logger();
    const error = Object.assign(new WalError('WAL_ERR_SERVER', 'boom'), {
      sqlState: 'XX000',
      detail: 'the detail',
      hint: 'the hint',
    });
    reportError(log, error);
    expect(output.lines).toEqual([
      'wal receive: error: boom',
      'wal receive: detail: the detail',
      'wal receive: hint: the hint',
    ]);
  });

  it('adds a suggestion by code or SQLSTATE when the error has no hint', () => {
    expect(suggestionFor(new WalError('WAL_ERR_AUTH_FAILED', 'x'))).toMatch(/-U/);
    expect(suggestionFor(new WalError('WAL_ERR_TLS_CERTIFICATE', 'x'))).toMatch(/sslrootcert/);
    expect(suggestionFor(Object.assign(new WalError('WAL_ERR_SERVER', 'x'), { sqlState: '28000' }))).toMatch(
      /pg_hba\.conf/,
    );
    expect(suggestionFor(new WalError('WAL_ERR_SOMETHING_ELSE', 'x'))).toBeUndefined();
  });

  it('names the flags for stream errors, whose messages name none, with the slot they carry', () => {
    const missing = Object.assign(new WalError('WAL_ERR_STREAM_SLOT_MISSING', 'x'), { slot: 'archive' });
    expect(suggestionFor(missing)).toBe('Create the slot first with --create-slot --slot=archive.');
    expect(suggestionFor(new WalError('WAL_ERR_STREAM_SLOT_MISSING', 'x'))).toBeUndefined();
    expect(suggestionFor(new WalError('WAL_ERR_STREAM_WAL_REMOVED', 'x'))).toMatch(/--slot/);
    const invalidated = Object.assign(new WalError('WAL_ERR_STREAM_SLOT_INVALIDATED', 'x'), {
      slot: 'archive',
    });
    expect(suggestionFor(invalidated)).toBe(
      'Drop the slot with --drop-slot --slot=archive, create it again with --create-slot --slot=archive, then start again.',
    );
    const lost = Object.assign(new WalError('WAL_ERR_STREAM_WAL_REMOVED', 'x'), { slot: 'archive' });
    expect(suggestionFor(lost)).toMatch(/--drop-slot --slot=archive/);
  });

  it('prints command-line errors with or without the help hint', () => {
    const { output, logger: log } = logger();
    reportError(log, new CommandLineError('WAL_ERR_CLI_USAGE', 'bad', { hint: true }));
    reportError(log, new CommandLineError('WAL_ERR_CLI_COMPRESSION', 'worse', { detail: 'why' }));
    reportError(log, new UnknownOptionError("invalid option -- 'x'"));
    reportError(log, new Error('plain'));
    expect(output.lines).toEqual([
      'wal receive: error: bad',
      'wal receive: hint: Try "wal receive --help" for more information.',
      'wal receive: error: worse',
      'wal receive: detail: why',
      "wal receive: invalid option -- 'x'",
      'wal receive: hint: Try "wal receive --help" for more information.',
      'wal receive: error: plain',
    ]);
  });
});

describe('ProgressMeter', () => {
  it('shows position, smoothed rate and lag', () => {
    const meter = new ProgressMeter();
    expect(meter.describe()).toBe('waiting for WAL');
    meter.record({ receivedLsn: 0x1000000n, durableLsn: 0x1000000n, serverWalEnd: 0x1000000n }, 1000);
    expect(meter.describe()).toBe('received 0/1000000, durable 0/1000000, -, lag 0 B');
    meter.record({ receivedLsn: 0x1100000n, durableLsn: 0x1000000n, serverWalEnd: 0x1300000n }, 2000);
    expect(meter.describe()).toBe('received 0/1100000, durable 0/1000000, 1.0 MB/s, lag 2.0 MB');
    // Half the rate for the next second: the average moves 30 % of the way.
    meter.record({ receivedLsn: 0x1180000n, durableLsn: 0x1100000n, serverWalEnd: 0x1180000n }, 3000);
    expect(meter.describe()).toBe('received 0/1180000, durable 0/1100000, 870.4 kB/s, lag 0 B');
  });

  it('formats sizes in binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 kB');
    expect(formatBytes(16 * 1024 ** 3)).toBe('16.0 GB');
  });
});
