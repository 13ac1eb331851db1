import { readFile, stat } from 'node:fs/promises';

/** What a `.pgpass` line is matched against, field by field. */
export interface PasswordFileKey {
  host: string;
  port: string;
  dbname: string;
  user: string;
}

/**
 * Matches one field of a `.pgpass` line against `token` (libpq `pwdfMatchesString`): `*` matches
 * anything, `\` escapes the next character. Returns the index just after the field's ':' or -1.
 */
function matchField(line: string, start: number, token: string): number {
  if (line[start] === '*' && line[start + 1] === ':') return start + 2;
  let position = start;
  let tokenPosition = 0;
  let escaped = false;
  while (position < line.length) {
    if (line[position] === '\\' && !escaped) {
      position++;
      escaped = true;
      if (position >= line.length) return -1;
    }
    if (line[position] === ':' && tokenPosition === token.length && !escaped) return position + 1;
    escaped = false;
    if (tokenPosition === token.length) return -1;
    if (line[position] !== token[tokenPosition]) return -1;
    position++;
    tokenPosition++;
  }
  return -1;
}

/** The password of one line if it matches `key`, de-escaped and cut at the first unescaped ':'. */
export function matchPasswordFileLine(line: string, key: PasswordFileKey): string | undefined {
  if (line === '' || line.startsWith('#')) return undefined;
  let position = 0;
  for (const token of [key.host, key.port, key.dbname, key.user]) {
    position = matchField(line, position, token);
    if (position < 0) return undefined;
  }
  let password = '';
  for (; position < line.length && line[position] !== ':'; position++) {
    if (line[position] === '\\' && position + 1 < line.length) position++;
    password += line[position];
  }
  return password;
}

/** The first matching password of a whole file's text. */
export function findPasswordInText(text: string, key: PasswordFileKey): string | undefined {
  for (const rawLine of text.split('\n')) {
    // A trailing CR (file written on Windows) is not part of the password.
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    const password = matchPasswordFileLine(line, key);
    if (password !== undefined) return password;
  }
  return undefined;
}

/**
 * Looks a password up in a password file (libpq `passwordFromFile`). A missing or unreadable file
 * is silently skipped; a file that is not a plain file, or that group or others can access, is
 * skipped with libpq's warning. Never throws for file problems: a password file is optional.
 */
export async function readPasswordFile(
  path: string,
  key: PasswordFileKey,
  onWarning: (message: string) => void = () => {},
): Promise<string | undefined> {
  if (key.dbname === '' || key.user === '') return undefined;
  let information: Awaited<ReturnType<typeof stat>>;
  try {
    information = await stat(path);
  } catch {
    return undefined;
  }
  if (!information.isFile()) {
    onWarning(`password file "${path}" is not a plain file`);
    return undefined;
  }
  if (process.platform !== 'win32' && (information.mode & 0o077) !== 0) {
    onWarning(`password file "${path}" has group or world access; permissions should be u=rw (0600) or less`);
    return undefined;
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  return findPasswordInText(text, key);
}
