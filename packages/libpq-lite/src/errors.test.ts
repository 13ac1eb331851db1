import { describe, expect, it } from 'vitest';
import { ServerError } from './errors.js';

describe('ServerError', () => {
  it("keeps libpq's layout: severity, two spaces, message; DETAIL and HINT on lines of their own", () => {
    const error = new ServerError({
      severity: 'ERROR',
      code: '42704',
      message: 'replication slot "s" does not exist',
      detail: 'd',
      hint: 'h',
    });
    expect(error.message).toBe('ERROR:  replication slot "s" does not exist\nDETAIL:  d\nHINT:  h');
  });

  it("escapes control characters inside the server's fields, so it cannot forge lines or terminal escapes", () => {
    const fields = {
      severity: 'ERROR',
      code: 'XX000',
      message: 'bad\npg_receivewal: forged line\r\u001b[2J',
      detail: 'two\nlines',
      hint: '\u001b]0;title\u0007',
    };
    const error = new ServerError(fields);
    expect(error.message).toBe(
      'ERROR:  bad\\npg_receivewal: forged line\\r\\x1b[2J\nDETAIL:  two\\nlines\nHINT:  \\x1b]0;title\\x07',
    );
    // What the server sent stays available as it was.
    expect(error.fields.message).toBe(fields.message);
    expect(error.detail).toBe('two\nlines');
  });
});
