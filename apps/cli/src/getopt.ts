/**
 * A small `getopt_long` work-alike, so `wal receive` reads its command line exactly the way
 * pg_receivewal does (pg_receivewal.c: `getopt_long(argc, argv, "d:D:E:h:np:s:S:U:vwWZ:", …)`):
 * GNU permutation (options may follow operands), clustered short options (`-nv`), attached values
 * (`-Z5`, `--endpos=0/1`), unique prefixes of long options (`--dir`), `--` ending the options,
 * and glibc's complaint texts. oclif's flag parser does none of these the GNU way and has no `-?`,
 * so oclif only dispatches the command and renders help.
 *
 * Parsing never stops by itself: it returns every option and complaint in command-line order and
 * the caller acts on the first complaint, which is where getopt's caller would have exited.
 */

export type ArgumentRequirement = 'none' | 'required' | 'optional';

export interface LongOption {
  /** Name without the leading dashes: `directory`. */
  readonly name: string;
  readonly argument: ArgumentRequirement;
  /** What the parser reports for this option: the short letter it stands for, or a long-only key. */
  readonly key: string;
}

export type ParsedItem =
  | {
      readonly kind: 'option';
      readonly key: string;
      readonly value: string | undefined;
      readonly spelling: string;
    }
  | { readonly kind: 'complaint'; readonly message: string };

export interface ParsedCommandLine {
  /** Options and complaints, in the order they appear on the command line. */
  readonly items: readonly ParsedItem[];
  /** Non-option arguments, in order (GNU getopt moves them behind the options). */
  readonly operands: readonly string[];
}

/**
 * `shortOptions` uses getopt's notation: a letter, followed by `:` when it takes a value
 * (`::` for an optional, attached-only value).
 */
export function getoptLong(
  argv: readonly string[],
  shortOptions: string,
  longOptions: readonly LongOption[],
): ParsedCommandLine {
  const shortTable = parseShortOptionString(shortOptions);
  const items: ParsedItem[] = [];
  const operands: string[] = [];

  let index = 0;
  while (index < argv.length) {
    const argument = argv[index]!;
    index += 1;

    if (argument === '--') {
      operands.push(...argv.slice(index));
      break;
    }
    if (argument.startsWith('--')) {
      index = parseLongOption(argument, argv, index, longOptions, items);
      continue;
    }
    if (argument.startsWith('-') && argument.length > 1) {
      index = parseShortCluster(argument, argv, index, shortTable, items);
      continue;
    }
    // GNU permutation: an operand does not end option parsing.
    operands.push(argument);
  }
  return { items, operands };
}

function parseShortOptionString(text: string): Map<string, ArgumentRequirement> {
  const table = new Map<string, ArgumentRequirement>();
  let position = 0;
  while (position < text.length) {
    const letter = text[position]!;
    position += 1;
    let requirement: ArgumentRequirement = 'none';
    if (text[position] === ':') {
      position += 1;
      requirement = 'required';
      if (text[position] === ':') {
        position += 1;
        requirement = 'optional';
      }
    }
    table.set(letter, requirement);
  }
  return table;
}

function parseLongOption(
  argument: string,
  argv: readonly string[],
  nextIndex: number,
  longOptions: readonly LongOption[],
  items: ParsedItem[],
): number {
  const body = argument.slice(2);
  const equals = body.indexOf('=');
  const name = equals === -1 ? body : body.slice(0, equals);
  const attached = equals === -1 ? undefined : body.slice(equals + 1);

  const exact = longOptions.find((option) => option.name === name);
  let match = exact;
  if (match === undefined) {
    const candidates = longOptions.filter((option) => option.name.startsWith(name));
    // glibc treats prefixes of several spellings of one option as unambiguous.
    const distinct = new Set(candidates.map((option) => `${option.key}\u0000${option.argument}`));
    if (candidates.length > 0 && distinct.size > 1) {
      const possibilities = candidates.map((option) => `'--${option.name}'`).join(' ');
      items.push({
        kind: 'complaint',
        message: `option '--${name}' is ambiguous; possibilities: ${possibilities}`,
      });
      return nextIndex;
    }
    match = candidates[0];
  }
  if (match === undefined) {
    items.push({ kind: 'complaint', message: `unrecognized option '${argument}'` });
    return nextIndex;
  }

  const spelling = `--${match.name}`;
  switch (match.argument) {
    case 'none':
      if (attached !== undefined) {
        items.push({ kind: 'complaint', message: `option '${spelling}' doesn't allow an argument` });
        return nextIndex;
      }
      items.push({ kind: 'option', key: match.key, value: undefined, spelling });
      return nextIndex;
    case 'optional':
      items.push({ kind: 'option', key: match.key, value: attached, spelling });
      return nextIndex;
    case 'required':
      if (attached !== undefined) {
        items.push({ kind: 'option', key: match.key, value: attached, spelling });
        return nextIndex;
      }
      if (nextIndex < argv.length) {
        items.push({ kind: 'option', key: match.key, value: argv[nextIndex], spelling });
        return nextIndex + 1;
      }
      items.push({ kind: 'complaint', message: `option '${spelling}' requires an argument` });
      return nextIndex;
  }
}

function parseShortCluster(
  argument: string,
  argv: readonly string[],
  nextIndex: number,
  shortTable: Map<string, ArgumentRequirement>,
  items: ParsedItem[],
): number {
  let position = 1;
  while (position < argument.length) {
    const letter = argument[position]!;
    position += 1;
    const requirement = letter === ':' ? undefined : shortTable.get(letter);
    if (requirement === undefined) {
      items.push({ kind: 'complaint', message: `invalid option -- '${letter}'` });
      continue;
    }
    const spelling = `-${letter}`;
    if (requirement === 'none') {
      items.push({ kind: 'option', key: letter, value: undefined, spelling });
      continue;
    }
    const rest = argument.slice(position);
    if (rest.length > 0) {
      items.push({ kind: 'option', key: letter, value: rest, spelling });
      return nextIndex;
    }
    if (requirement === 'optional') {
      items.push({ kind: 'option', key: letter, value: undefined, spelling });
      return nextIndex;
    }
    if (nextIndex < argv.length) {
      items.push({ kind: 'option', key: letter, value: argv[nextIndex], spelling });
      return nextIndex + 1;
    }
    items.push({ kind: 'complaint', message: `option requires an argument -- '${letter}'` });
    return nextIndex;
  }
  return nextIndex;
}
