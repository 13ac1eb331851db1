import { createInterface } from 'node:readline';

/**
 * `Password: ` without echo, like PostgreSQL's simple_prompt(): on a terminal the keys are read
 * raw and not shown; otherwise one line is read from stdin (so `echo secret | wal receive -W`
 * works). Ctrl-C at the prompt ends the process by SIGINT, as it does for pg_receivewal, whose
 * signal handlers are installed only after the first connection.
 */

export interface PromptStreams {
  readonly input: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  readonly output: { write(text: string): unknown };
}

export function promptPassword(
  prompt = 'Password: ',
  streams: PromptStreams = { input: process.stdin, output: process.stderr },
): Promise<string> {
  const { input, output } = streams;
  output.write(prompt);
  if (input.isTTY === true && typeof input.setRawMode === 'function') {
    return readWithoutEcho(
      input as PromptStreams['input'] & { setRawMode: (mode: boolean) => unknown },
      output,
    );
  }
  return readLine(input, output);
}

function readWithoutEcho(
  input: PromptStreams['input'] & { setRawMode: (mode: boolean) => unknown },
  output: PromptStreams['output'],
): Promise<string> {
  return new Promise((resolve) => {
    let typed = '';
    input.setRawMode(true);
    input.resume();
    const finish = (): void => {
      input.removeListener('data', onData);
      input.setRawMode(false);
      input.pause();
      output.write('\n');
    };
    const onData = (chunk: Buffer | string): void => {
      for (const character of chunk.toString()) {
        switch (character) {
          case '\r':
          case '\n':
          case '\u0004': // Ctrl-D
            finish();
            resolve(typed);
            return;
          case '\u0003': // Ctrl-C
            finish();
            // Raw mode swallowed the terminal's SIGINT: raise it. Before the first connection no
            // handler is installed and the process ends; later it stops streaming gracefully, and
            // the empty answer fails authentication instead of waiting forever.
            process.kill(process.pid, 'SIGINT');
            resolve('');
            return;
          case '\u007f':
          case '\b':
            typed = typed.slice(0, -1);
            break;
          default:
            typed += character;
        }
      }
    };
    input.on('data', onData);
  });
}

function readLine(input: PromptStreams['input'], output: PromptStreams['output']): Promise<string> {
  return new Promise((resolve) => {
    const lines = createInterface({ input, terminal: false });
    let answered = false;
    lines.once('line', (line) => {
      answered = true;
      lines.close();
      // simple_prompt ends the prompt line itself when the answer was not echoed.
      output.write('\n');
      resolve(line);
    });
    lines.once('close', () => {
      if (!answered) {
        output.write('\n');
        resolve('');
      }
    });
  });
}
