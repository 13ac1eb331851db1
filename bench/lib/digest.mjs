// What a receiver left in its directory: file names and a SHA-256 of each file's bytes.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** { files: [{ name, size, sha256 }], totalBytes } sorted by name; `namesOnly` skips the hashing. */
export async function digestDirectory(directory, options = {}) {
  const names = (await readdir(directory)).sort();
  const files = [];
  let totalBytes = 0;
  for (const name of names) {
    const path = join(directory, name);
    const info = await stat(path);
    if (!info.isFile()) {
      files.push({ name, size: 0, sha256: `not a file (mode ${info.mode.toString(8)})` });
      continue;
    }
    totalBytes += info.size;
    if (options.namesOnly === true) {
      files.push({ name, size: info.size, sha256: 'not hashed' });
      continue;
    }
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) hash.update(chunk);
    files.push({ name, size: info.size, sha256: hash.digest('hex') });
  }
  return { files, totalBytes };
}

/** undefined when equal, else a sentence naming the first difference. */
export function describeDifference(expected, actual) {
  const expectedNames = expected.files.map((file) => file.name);
  const actualNames = actual.files.map((file) => file.name);
  const missing = expectedNames.filter((name) => !actualNames.includes(name));
  const extra = actualNames.filter((name) => !expectedNames.includes(name));
  if (missing.length > 0 || extra.length > 0) {
    return `file names differ: missing [${missing.join(', ')}], extra [${extra.join(', ')}]`;
  }
  for (let index = 0; index < expected.files.length; index += 1) {
    const want = expected.files[index];
    const got = actual.files[index];
    if (want.size !== got.size) return `${want.name}: ${got.size} bytes, expected ${want.size}`;
    if (want.sha256 !== got.sha256)
      return `${want.name}: contents differ (sha256 ${got.sha256} vs ${want.sha256})`;
  }
  return undefined;
}
