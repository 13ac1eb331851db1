import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { promptPassword } from './password-prompt.js';
import { CapturedOutput } from './test-support.js';

/** A stream that claims to be a terminal and records raw-mode switches. */
class FakeTerminal extends PassThrough {
  readonly isTTY = true;
  readonly rawModes: boolean[] = [];
  setRawMode(mode: boolean): this {
    this.rawModes.push(mode);
    return this;
  }
}

describe('promptPassword', () => {
  it('reads one line from a pipe, writing the prompt to the output', async () => {
    const input = new PassThrough();
    const output = new CapturedOutput();
    const answer = promptPassword('Password: ', { input, output });
    input.end('s3cret\nnext line\n');
    expect(await answer).toBe('s3cret');
    expect(output.text).toBe('Password: \n');
  });

  it('answers an empty string when the pipe closes without a line', async () => {
    const input = new PassThrough();
    const output = new CapturedOutput();
    const answer = promptPassword('Password: ', { input, output });
    input.end();
    expect(await answer).toBe('');
  });

  it('on a terminal reads raw keys without echoing them, honouring backspace', async () => {
    const input = new FakeTerminal();
    const output = new CapturedOutput();
    const answer = promptPassword('Password: ', { input, output });
    input.write('pass');
    input.write('x\u007fword\r');
    expect(await answer).toBe('password');
    expect(output.text).toBe('Password: \n');
    expect(input.rawModes).toEqual([true, false]);
  });
});
