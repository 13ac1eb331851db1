import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { listBucket, parseRange, type StoredObject, storedObject } from './bucket.js';
import type { Fault } from './faults.js';
import { errorXml, listXml } from './xml.js';

/** One parsed request, with the bucket it addresses (path style). */
export interface Exchange {
  request: IncomingMessage;
  response: ServerResponse;
  bucketName: string;
  bucket: Map<string, StoredObject>;
  key: string;
  query: URLSearchParams;
  fault: Fault | undefined;
  requestId: string;
}

export function sendError(exchange: Exchange, status: number, code: string, message: string): void {
  const { response, request } = exchange;
  const resource = `/${exchange.bucketName}${exchange.key ? `/${exchange.key}` : ''}`;
  const body = request.method === 'HEAD' ? '' : errorXml(code, message, resource, exchange.requestId);
  response.writeHead(status, {
    'content-type': 'application/xml',
    'content-length': Buffer.byteLength(body),
    'x-amz-request-id': exchange.requestId,
  });
  response.end(body);
}

/**
 * Reads a request body, applying a reset, stall or corruption from the script. A stall stops
 * reading (the client's writes back up) and never answers; a reset destroys the connection.
 */
export function readRequestBody(exchange: Exchange): Promise<Buffer | undefined> {
  const { request, fault } = exchange;
  const cut = fault?.kind === 'reset' || fault?.kind === 'stall' ? fault : undefined;
  const limit = cut ? (cut.afterBytes ?? 0) : Number.POSITIVE_INFINITY;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const interrupt = () => {
      request.off('data', onData);
      request.off('end', onEnd);
      if (cut?.kind === 'reset') request.socket.destroy();
      else request.pause();
      resolve(undefined);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= limit) interrupt();
    };
    const onEnd = () => {
      const body = Buffer.concat(chunks);
      if (fault?.kind === 'corrupt' && body.length > 0)
        body[body.length >> 1] = (body[body.length >> 1] ?? 0) ^ 0xff;
      resolve(body);
    };
    request.on('data', onData);
    request.once('end', onEnd);
    request.once('error', reject);
    if (limit === 0) interrupt();
  });
}

function metadataOf(request: IncomingMessage): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (name.startsWith('x-amz-meta-') && typeof value === 'string')
      metadata[name.slice('x-amz-meta-'.length)] = value;
  }
  return metadata;
}

/** Why the store refuses this body, the way S3 words it; undefined when it takes it. */
function checkBody(request: IncomingMessage, body: Buffer): [number, string, string] | undefined {
  if (String(request.headers['content-encoding'] ?? '').includes('aws-chunked')) {
    return [400, 'InvalidRequest', 'The scripted endpoint does not decode aws-chunked bodies.'];
  }
  const contentMd5 = request.headers['content-md5'];
  if (typeof contentMd5 === 'string') {
    const digest = Buffer.from(contentMd5, 'base64');
    if (digest.length !== 16) return [400, 'InvalidDigest', 'The Content-MD5 you specified was invalid.'];
    if (!digest.equals(createHash('md5').update(body).digest())) {
      return [400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.'];
    }
  }
  const sha256 = request.headers['x-amz-content-sha256'];
  if (typeof sha256 === 'string' && /^[0-9a-f]{64}$/.test(sha256)) {
    if (createHash('sha256').update(body).digest('hex') !== sha256) {
      return [
        400,
        'XAmzContentSHA256Mismatch',
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
      ];
    }
  }
  return undefined;
}

export async function handlePut(exchange: Exchange): Promise<void> {
  const body = await readRequestBody(exchange);
  if (body === undefined) return;
  const refusal = checkBody(exchange.request, body);
  if (refusal) return sendError(exchange, ...refusal);
  if (exchange.request.headers['if-none-match'] === '*' && exchange.bucket.has(exchange.key)) {
    return sendError(
      exchange,
      412,
      'PreconditionFailed',
      'At least one of the pre-conditions you specified did not hold',
    );
  }
  const object = storedObject(body, metadataOf(exchange.request));
  exchange.bucket.set(exchange.key, object);
  if (exchange.fault?.kind === 'drop-answer') return void exchange.request.socket.destroy();
  exchange.response.writeHead(200, {
    etag: `"${object.etag}"`,
    'content-length': 0,
    'x-amz-request-id': exchange.requestId,
  });
  exchange.response.end();
}

function objectHeaders(object: StoredObject, length: number): Record<string, string | number> {
  const headers: Record<string, string | number> = {
    'content-type': 'application/octet-stream',
    'content-length': length,
    etag: `"${object.etag}"`,
    'last-modified': object.lastModified.toUTCString(),
    'accept-ranges': 'bytes',
  };
  for (const [name, value] of Object.entries(object.metadata)) headers[`x-amz-meta-${name}`] = value;
  return headers;
}

export function handleHead(exchange: Exchange): void {
  const object = exchange.bucket.get(exchange.key);
  if (object === undefined) {
    sendError(exchange, 404, 'NotFound', 'Not Found');
    return;
  }
  exchange.response.writeHead(200, objectHeaders(object, object.body.length));
  exchange.response.end();
}

export function handleGet(exchange: Exchange): void {
  const object = exchange.bucket.get(exchange.key);
  if (object === undefined) {
    sendError(exchange, 404, 'NoSuchKey', 'The specified key does not exist.');
    return;
  }
  const range = parseRange(exchange.request.headers.range, object.body.length);
  if (range === 'unsatisfiable') {
    sendError(exchange, 416, 'InvalidRange', 'The requested range is not satisfiable');
    return;
  }
  let body = range ? object.body.subarray(range.start, range.end) : object.body;
  const headers = objectHeaders(object, body.length);
  if (range) headers['content-range'] = `bytes ${range.start}-${range.end - 1}/${object.body.length}`;
  exchange.response.writeHead(range ? 206 : 200, headers);
  const { fault } = exchange;
  if (fault?.kind === 'corrupt' && body.length > 0) {
    body = Buffer.from(body);
    body[body.length >> 1] = (body[body.length >> 1] ?? 0) ^ 0xff;
  }
  if (fault?.kind === 'reset' || fault?.kind === 'stall') {
    exchange.response.flushHeaders();
    const sent = body.subarray(0, fault.afterBytes ?? 0);
    const then = () => (fault.kind === 'reset' ? exchange.response.socket?.destroy() : undefined);
    if (sent.length > 0) exchange.response.write(sent, then);
    else then();
    return;
  }
  exchange.response.end(body);
}

export function handleDelete(exchange: Exchange): void {
  exchange.bucket.delete(exchange.key);
  exchange.response.writeHead(204, { 'x-amz-request-id': exchange.requestId });
  exchange.response.end();
}

export function handleList(exchange: Exchange, pageSize: number): void {
  const { query } = exchange;
  const maxKeys = Math.min(pageSize, Number(query.get('max-keys') ?? 1000));
  const continuationToken = query.get('continuation-token') ?? undefined;
  const startAfter = query.get('start-after') ?? undefined;
  const page = listBucket(exchange.bucketName, exchange.bucket, {
    prefix: query.get('prefix') ?? '',
    delimiter: query.get('delimiter') ?? '',
    maxKeys,
    ...(continuationToken ? { continuationToken } : {}),
    ...(startAfter ? { startAfter } : {}),
  });
  const body = listXml(page);
  exchange.response.writeHead(200, {
    'content-type': 'application/xml',
    'content-length': Buffer.byteLength(body),
  });
  exchange.response.end(body);
}
