import { describe, expect, it } from 'vitest';
import { listBucket, parseRange, storedObject } from './bucket.js';
import { FaultScript } from './faults.js';

describe('the scripted bucket', () => {
  it('parses ranges as S3 does', () => {
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 10 });
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 100 });
    expect(parseRange('bytes=90-200', 100)).toEqual({ start: 90, end: 100 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 100 });
    expect(parseRange('bytes=100-', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=0-0', 0)).toBe('unsatisfiable');
    expect(parseRange(undefined, 100)).toBeUndefined();
    expect(parseRange('items=0-1', 100)).toBeUndefined();
  });

  it('lists by prefix and delimiter in pages', () => {
    const objects = new Map(
      ['p/a', 'p/b', 'p/c/d', 'p/c/e', 'p/f', 'q/a'].map((key) => [key, storedObject(Buffer.from(key))]),
    );
    const first = listBucket('b', objects, { prefix: 'p/', delimiter: '/', maxKeys: 2 });
    expect(first.objects.map((object) => object.key)).toEqual(['p/a', 'p/b']);
    expect(first.nextToken).toBeDefined();
    const second = listBucket('b', objects, {
      prefix: 'p/',
      delimiter: '/',
      maxKeys: 2,
      continuationToken: first.nextToken,
    });
    expect(second.commonPrefixes).toEqual(['p/c/']);
    expect(second.objects.map((object) => object.key)).toEqual(['p/f']);
    expect(second.nextToken).toBeUndefined();
    const flat = listBucket('b', objects, { prefix: 'p/c', delimiter: '', maxKeys: 1000 });
    expect(flat.objects.map((object) => object.key)).toEqual(['p/c/d', 'p/c/e']);
  });

  it('plays each scripted fault the number of times asked, first match first', () => {
    const script = new FaultScript();
    script.add({ operation: 'PUT', key: /\.partial$/, times: 2, fault: { kind: 'corrupt' } });
    script.add({ fault: { kind: 'reset' } });
    expect(script.take('GET', 'x')).toEqual({ kind: 'reset' });
    expect(script.take('GET', 'x')).toBeUndefined();
    expect(script.take('PUT', 'a.partial')).toEqual({ kind: 'corrupt' });
    expect(script.pending).toBe(1);
    expect(script.take('PUT', 'a')).toBeUndefined();
    expect(script.take('PUT', 'a.partial')).toEqual({ kind: 'corrupt' });
    expect(script.pending).toBe(0);
  });
});
