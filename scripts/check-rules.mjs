#!/usr/bin/env node
// The size rules of docs/architecture.md ("Rules CI checks"), checked on every test run:
// - no function in packages/*/src or apps/*/src is longer than 100 lines (tests and test helpers
//   aside), so any path stays one a newcomer can hold in their head;
// - `wal receive` starts with no V8 flags: bin/run.js and the receive module set none.
// Exits 1 and lists what breaks a rule.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

const MAX_FUNCTION_LINES = 100;
const root = new URL('..', import.meta.url).pathname;
/** Test code: exempt from the length rule. */
const SKIPPED_DIRECTORIES = new Set(['node_modules', 'dist', '__fixtures__', 'testing', 'e2e', 'faults']);

function* sourceFiles(directory) {
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) {
      if (!SKIPPED_DIRECTORIES.has(entry.name)) yield* sourceFiles(path);
    } else if (/\.ts$/.test(entry.name) && !/\.(test|d)\.ts$/.test(entry.name)) {
      yield path;
    }
  }
}

function* workspaceSources() {
  for (const group of ['packages', 'apps']) {
    for (const entry of readdirSync(join(root, group), { withFileTypes: true })) {
      const source = join(root, group, entry.name, 'src');
      if (entry.isDirectory() && readdirSync(join(root, group, entry.name)).includes('src')) {
        yield* sourceFiles(source);
      }
    }
  }
}

function isFunction(node) {
  return (
    ts.isFunctionDeclaration(node) ||
    ts.isMethodDeclaration(node) ||
    ts.isArrowFunction(node) ||
    ts.isFunctionExpression(node) ||
    ts.isConstructorDeclaration(node) ||
    ts.isGetAccessor(node) ||
    ts.isSetAccessor(node)
  );
}

function longFunctions(path) {
  const source = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
  const found = [];
  const visit = (node) => {
    if (isFunction(node)) {
      const first = source.getLineAndCharacterOfPosition(node.getStart()).line;
      const last = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = last - first + 1;
      const name = node.name?.getText() ?? node.parent?.name?.getText() ?? '(anonymous)';
      if (lines > MAX_FUNCTION_LINES)
        found.push(`${relative(root, path)}:${first + 1} ${name}: ${lines} lines`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

const V8_FLAG =
  /setFlagsFromString|--(max-optimized|semi-space|max-semi-space|max-old-space|no-opt|single-threaded)/;
const problems = [];
for (const path of workspaceSources()) {
  for (const problem of longFunctions(path)) problems.push(`over ${MAX_FUNCTION_LINES} lines: ${problem}`);
}
for (const path of ['apps/cli/bin/run.js', 'apps/cli/src/receive.ts']) {
  readFileSync(join(root, path), 'utf8')
    .split('\n')
    .forEach((line, index) => {
      if (V8_FLAG.test(line))
        problems.push(`a V8 flag for wal receive: ${path}:${index + 1}: ${line.trim()}`);
    });
}
if (problems.length > 0) {
  console.error(`check-rules: ${problems.length} rule(s) broken:\n${problems.join('\n')}`);
  process.exit(1);
}
console.log('check-rules: every function is at most 100 lines; wal receive sets no V8 flags');
