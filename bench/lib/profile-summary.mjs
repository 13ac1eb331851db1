// Summarizes a V8 .cpuprofile (node --cpu-prof): self time per function and per file, top N.
//
//   node bench/lib/profile-summary.mjs PROFILE.cpuprofile [--top 25]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' } },
});
if (positionals.length !== 1) {
  process.stderr.write('Usage: node bench/lib/profile-summary.mjs PROFILE.cpuprofile [--top N]\n');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(positionals[0], 'utf8'));
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfMicroseconds = new Map();
for (let index = 0; index < profile.samples.length; index += 1) {
  const id = profile.samples[index];
  selfMicroseconds.set(id, (selfMicroseconds.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0));
}
const total = [...selfMicroseconds.values()].reduce((sum, value) => sum + value, 0);
const functions = new Map();
const files = new Map();
for (const [id, microseconds] of selfMicroseconds) {
  const frame = byId.get(id).callFrame;
  const file =
    frame.url.replace(/^file:\/\//, '').replace(/.*\/(packages|apps|node_modules)\//, '$1/') || '(native)';
  const name = `${frame.functionName || '(anonymous)'}  ${file}:${frame.lineNumber + 1}`;
  functions.set(name, (functions.get(name) ?? 0) + microseconds);
  files.set(file, (files.get(file) ?? 0) + microseconds);
}
const top = Number(values.top);
const print = (title, map) => {
  process.stdout.write(`${title}\n`);
  for (const [name, microseconds] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(
      `${((microseconds / total) * 100).toFixed(1).padStart(6)}%  ${(microseconds / 1000).toFixed(0).padStart(7)} ms  ${name}\n`,
    );
  }
};
process.stdout.write(`total ${(total / 1000).toFixed(0)} ms sampled\n`);
print('\nself time by function:', functions);
print('\nself time by file:', files);
