import { describe, expect, it } from 'vitest';
import { escapeControlCharacters } from './display-text.js';

describe('escapeControlCharacters', () => {
  it('leaves ordinary text alone, tabs, backslashes and non-ASCII included', () => {
    const text = 'replication slot "s\\x" does not exist\tä € 😀';
    expect(escapeControlCharacters(text)).toBe(text);
  });

  it('shows line breaks, carriage returns, ESC, DEL and C1 controls as escapes', () => {
    expect(escapeControlCharacters('a\nb\rc\u001b[31md\u0000e\u007ff\u009bg')).toBe(
      'a\\nb\\rc\\x1b[31md\\x00e\\x7ff\\x9bg',
    );
  });

  it('keeps line breaks when asked, and escapes everything else', () => {
    expect(escapeControlCharacters('one\ntwo\r\u001b]0;title\u0007', { keepLineBreaks: true })).toBe(
      'one\ntwo\\r\\x1b]0;title\\x07',
    );
  });

  it('gives the same answer called twice in a row (no state left in the pattern)', () => {
    expect(escapeControlCharacters('x\u001b')).toBe('x\\x1b');
    expect(escapeControlCharacters('x\u001b')).toBe('x\\x1b');
    expect(escapeControlCharacters('\u001bx')).toBe('\\x1bx');
  });
});
