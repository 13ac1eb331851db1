import { createHash } from 'node:crypto';
import type { ListPage } from './xml.js';

/** An object as the scripted endpoint keeps it. */
export interface StoredObject {
  body: Buffer;
  /** Without quotes: the MD5 in hex for a plain PUT. */
  etag: string;
  /** `x-amz-meta-*` headers, without the prefix. */
  metadata: Record<string, string>;
  lastModified: Date;
}

export function storedObject(
  body: Buffer,
  metadata: Record<string, string> = {},
  etag?: string,
): StoredObject {
  return {
    body,
    etag: etag ?? createHash('md5').update(body).digest('hex'),
    metadata,
    lastModified: new Date(),
  };
}

export interface ListQuery {
  prefix: string;
  delimiter: string;
  maxKeys: number;
  continuationToken?: string;
  startAfter?: string;
}

/** One page of ListObjectsV2 over a bucket, in key order, with common prefixes for a delimiter. */
export function listBucket(
  name: string,
  objects: ReadonlyMap<string, StoredObject>,
  query: ListQuery,
): ListPage {
  const after = query.continuationToken
    ? Buffer.from(query.continuationToken, 'base64url').toString()
    : (query.startAfter ?? '');
  const entries: { key: string; object?: StoredObject }[] = [];
  const seenPrefixes = new Set<string>();
  for (const key of [...objects.keys()].sort()) {
    if (!key.startsWith(query.prefix)) continue;
    const cut = query.delimiter ? key.indexOf(query.delimiter, query.prefix.length) : -1;
    const entry = cut === -1 ? key : key.slice(0, cut + query.delimiter.length);
    if (entry <= after || seenPrefixes.has(entry)) continue;
    if (cut === -1) entries.push({ key, object: objects.get(key) as StoredObject });
    else {
      seenPrefixes.add(entry);
      entries.push({ key: entry });
    }
  }
  const page = entries.slice(0, query.maxKeys);
  const last = page.at(-1);
  return {
    bucket: name,
    prefix: query.prefix,
    delimiter: query.delimiter,
    maxKeys: query.maxKeys,
    objects: page.flatMap(({ key, object }) =>
      object ? [{ key, size: object.body.length, etag: object.etag, lastModified: object.lastModified }] : [],
    ),
    commonPrefixes: page.flatMap(({ key, object }) => (object ? [] : [key])),
    ...(entries.length > page.length && last
      ? { nextToken: Buffer.from(last.key).toString('base64url') }
      : {}),
    ...(query.continuationToken ? { continuationToken: query.continuationToken } : {}),
  };
}

/** `bytes=a-b`, `bytes=a-` or `bytes=-n` over `size` bytes: `[start, end)`, or 'unsatisfiable'. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  const match = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null) return undefined;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    const suffix = Number(last);
    return suffix === 0 ? 'unsatisfiable' : { start: Math.max(0, size - suffix), end: size };
  }
  const start = Number(first);
  if (start >= size) return 'unsatisfiable';
  const end = last === '' ? size : Math.min(size, Number(last) + 1);
  return end <= start ? undefined : { start, end };
}
