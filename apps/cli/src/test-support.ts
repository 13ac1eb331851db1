/** Test doubles shared by the CLI's unit tests (not part of the build: see tsconfig exclude). */
export class CapturedOutput {
  text = '';
  readonly isTTY: boolean;

  constructor(isTTY = false) {
    this.isTTY = isTTY;
  }

  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }

  get lines(): string[] {
    return this.text.split('\n').filter((line) => line !== '');
  }
}
