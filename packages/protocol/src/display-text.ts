/**
 * Text a server sent, made safe to print on a terminal or in a line-based log. A server's message
 * is untrusted: a line break in it can forge a log line of ours, an ESC can start a terminal
 * escape sequence, a carriage return can overwrite what was printed before. Each C0 control
 * character but the tab, DEL and each C1 control character is shown as a visible escape instead
 * (`\n`, `\r`, `\x1b`, `\x9b`), the way JSON output escapes them anyway. Other text, backslashes
 * included, is left as it is, so ordinary messages print byte for byte as libpq prints them.
 */

const CONTROL_CHARACTERS = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g;
const CONTROL_CHARACTERS_BUT_LINE_BREAKS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r' };

function escapeOne(character: string): string {
  return NAMED[character] ?? `\\x${character.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

/**
 * `text` with its control characters escaped. With `keepLineBreaks`, `\n` stays a line break:
 * for text that is ours and may span lines, where only the terminal must be protected.
 */
export function escapeControlCharacters(text: string, options: { keepLineBreaks?: boolean } = {}): string {
  const pattern = options.keepLineBreaks === true ? CONTROL_CHARACTERS_BUT_LINE_BREAKS : CONTROL_CHARACTERS;
  // Most text has none: test first (and reset the sticky index the global test leaves behind).
  pattern.lastIndex = 0;
  if (!pattern.test(text)) return text;
  pattern.lastIndex = 0;
  return text.replace(pattern, escapeOne);
}
