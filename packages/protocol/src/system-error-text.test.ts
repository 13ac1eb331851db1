import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lookupErrorText, systemErrorText } from './system-error-text.js';

/** Node's own error for a failing call, to read its `code` from. */
function failure(call: () => unknown): unknown {
  try {
    call();
  } catch (error) {
    return error;
  }
  throw new Error('the call did not fail');
}

describe('systemErrorText', () => {
  it("gives glibc's strerror() words for real Node.js errors, not Node's", () => {
    const directory = mkdtempSync(join(tmpdir(), 'system-error-text-'));
    try {
      const isDirectory = failure(() => readFileSync(directory));
      expect((isDirectory as Error).message).toMatch(/^EISDIR: illegal operation on a directory/);
      expect(systemErrorText(isDirectory)).toBe('Is a directory');
      expect(systemErrorText(failure(() => readFileSync(join(directory, 'missing'))))).toBe(
        'No such file or directory',
      );
    } finally {
      rmSync(directory, { recursive: true });
    }
    expect(systemErrorText(Object.assign(new Error('write'), { code: 'ENOSPC' }))).toBe(
      'No space left on device',
    );
  });

  it('is undefined for errnos it does not list and for errors that are no system errors', () => {
    expect(systemErrorText(Object.assign(new Error('x'), { code: 'EWHATEVER' }))).toBeUndefined();
    expect(systemErrorText(new Error('plain'))).toBeUndefined();
    expect(systemErrorText('text')).toBeUndefined();
  });
});

describe('lookupErrorText', () => {
  it("gives gai_strerror()'s words for a failed lookup, else the code or message", () => {
    expect(lookupErrorText(Object.assign(new Error('x'), { code: 'ENOTFOUND' }))).toBe(
      'Name or service not known',
    );
    expect(lookupErrorText(Object.assign(new Error('x'), { code: 'EAI_AGAIN' }))).toBe(
      'Temporary failure in name resolution',
    );
    expect(lookupErrorText(Object.assign(new Error('x'), { code: 'EODD' }))).toBe('EODD');
    expect(lookupErrorText(new Error('no code'))).toBe('no code');
  });
});
