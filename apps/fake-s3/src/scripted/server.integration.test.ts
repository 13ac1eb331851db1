import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ScriptedS3, startScriptedS3 } from './server.js';

// Plain HTTP, no SDK: the endpoint's answers checked on their own, as S3 documents them.
const authorization = 'AWS4-HMAC-SHA256 Credential=SCRIPTED/20260101/us-east-1/s3/aws4_request, Signature=x';
const md5 = (body: string) => createHash('md5').update(body).digest('base64');

let server: ScriptedS3;
beforeEach(async () => {
  server = await startScriptedS3({ buckets: ['b12'] });
});
afterEach(() => server.stop());

function send(method: string, path: string, headers: Record<string, string> = {}, body?: string) {
  return fetch(`${server.endpoint}${path}`, {
    method,
    headers: { authorization, ...headers },
    ...(body === undefined ? {} : { body }),
  });
}

describe('the scripted S3 endpoint', () => {
  it('verifies Content-MD5: BadDigest for a mismatch, InvalidDigest for a malformed one', async () => {
    const bad = await send('PUT', '/b12/p/a', { 'content-md5': md5('other') }, 'body');
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('<Code>BadDigest</Code>');
    const malformed = await send('PUT', '/b12/p/a', { 'content-md5': 'xyz' }, 'body');
    expect(await malformed.text()).toContain('<Code>InvalidDigest</Code>');
    expect(server.objects.size).toBe(0);
    const good = await send(
      'PUT',
      '/b12/p/a',
      { 'content-md5': md5('body'), 'x-amz-meta-wal-md5': 'm' },
      'body',
    );
    expect(good.status).toBe(200);
    expect(good.headers.get('etag')).toBe(`"${createHash('md5').update('body').digest('hex')}"`);
    expect(server.objects.get('p/a')?.metadata).toEqual({ 'wal-md5': 'm' });
  });

  it('enforces If-None-Match: * with 412 PreconditionFailed', async () => {
    await send('PUT', '/b12/p/a', {}, 'first');
    const second = await send('PUT', '/b12/p/a', { 'if-none-match': '*' }, 'second');
    expect(second.status).toBe(412);
    expect(await second.text()).toContain('<Code>PreconditionFailed</Code>');
    expect(server.objects.get('p/a')?.body.toString()).toBe('first');
  });

  it('serves ranges, HEAD without a body, and errors as XML', async () => {
    await send('PUT', '/b12/p/a', {}, '0123456789');
    const range = await send('GET', '/b12/p/a', { range: 'bytes=2-4' });
    expect(range.status).toBe(206);
    expect(range.headers.get('content-range')).toBe('bytes 2-4/10');
    expect(await range.text()).toBe('234');
    expect((await send('GET', '/b12/p/a', { range: 'bytes=10-' })).status).toBe(416);
    const head = await send('HEAD', '/b12/p/missing');
    expect(head.status).toBe(404);
    expect(await head.text()).toBe('');
    const missing = await send('GET', '/b12/p/missing');
    expect(await missing.text()).toContain('<Code>NoSuchKey</Code>');
    expect(await (await send('GET', '/nobucket/x')).text()).toContain('<Code>NoSuchBucket</Code>');
    expect((await fetch(`${server.endpoint}/b12/p/a`)).status).toBe(403);
  });

  it('lists with prefix, delimiter and escaped keys', async () => {
    await send('PUT', '/b12/p/a%26b', {}, 'x');
    await send('PUT', '/b12/p/deep/c', {}, 'y');
    const list = await (await send('GET', '/b12?list-type=2&prefix=p%2F&delimiter=%2F')).text();
    expect(list).toContain('<Key>p/a&#38;b</Key>');
    expect(list).toContain('<CommonPrefixes><Prefix>p/deep/</Prefix></CommonPrefixes>');
    expect(list).toContain('<IsTruncated>false</IsTruncated>');
  });

  it('answers scripted errors the given number of times, then normally', async () => {
    server.fail({ operation: 'GET', times: 2, fault: { kind: 'error', status: 503, code: 'SlowDown' } });
    await send('PUT', '/b12/k', {}, 'v');
    expect((await send('GET', '/b12/k')).status).toBe(503);
    expect((await send('GET', '/b12/k')).status).toBe(503);
    expect((await send('GET', '/b12/k')).status).toBe(200);
    expect(server.requests.map((request) => request.fault)).toEqual([undefined, 'error', 'error', undefined]);
  });

  it('refuses connections while down, and serves the same port once up', async () => {
    await send('PUT', '/b12/k', {}, 'v');
    await server.down('refuse');
    await expect(send('GET', '/b12/k')).rejects.toThrow();
    await server.up();
    expect(await (await send('GET', '/b12/k')).text()).toBe('v');
    await server.down('reset');
    await expect(send('GET', '/b12/k')).rejects.toThrow();
    await server.up();
    expect((await send('GET', '/b12/k')).status).toBe(200);
  });
});
