import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunningS3 } from '../s3rver.js';
import { type StoredObject, storedObject } from './bucket.js';
import { type Fault, type FaultRule, FaultScript, type Operation } from './faults.js';
import {
  type Exchange,
  handleDelete,
  handleGet,
  handleHead,
  handleList,
  handlePut,
  readRequestBody,
  sendError,
} from './handlers.js';

export interface ScriptedS3Options {
  /** Buckets that exist (default `['wal-archive']`); the first is the one `objects` shows. */
  buckets?: readonly string[];
  /** The key id the endpoint accepts in a request's Authorization header (default `SCRIPTED`). */
  accessKeyId?: string;
  /** Handed out in `env`; the endpoint does not verify signatures (default `scripted-secret`). */
  secretAccessKey?: string;
  /** At most this many entries per ListObjectsV2 page (default 1000), to exercise pagination. */
  listPageSize?: number;
}

/** A request as the endpoint saw it, for assertions. */
export interface RecordedRequest {
  operation: Operation;
  bucket: string;
  key: string;
  headers: IncomingHttpHeaders;
  /** The scripted fault applied to it, if any. */
  fault?: Fault['kind'];
}

export interface ScriptedS3 extends RunningS3 {
  /** Every bucket's objects, live: tests may read and change them. */
  readonly buckets: Map<string, Map<string, StoredObject>>;
  /** The objects of the first bucket. */
  readonly objects: Map<string, StoredObject>;
  readonly requests: RecordedRequest[];
  /** Adds a fault to the script; the first matching rule hits the next matching request. */
  fail(rule: FaultRule): void;
  clearFaults(): void;
  /** How many scripted hits have not happened yet. */
  readonly pendingFaults: number;
  /** Stores an object as if it had been put, with an ETag of choice (e.g. a multipart one). */
  seed(
    key: string,
    body: Buffer,
    options?: { metadata?: Record<string, string>; etag?: string; bucket?: string },
  ): void;
  /** An outage: `refuse` closes the listening socket (ECONNREFUSED), `reset` accepts and drops connections. */
  down(mode?: 'refuse' | 'reset'): Promise<void>;
  /** Ends the outage on the same port. */
  up(): Promise<void>;
}

function operationOf(method: string | undefined, key: string, query: URLSearchParams): Operation | undefined {
  if (method === 'GET' && key === '' && query.get('list-type') === '2') return 'LIST';
  if (key === '') return undefined;
  return method === 'GET' || method === 'PUT' || method === 'HEAD' || method === 'DELETE'
    ? method
    : undefined;
}

/** What the request handlers share: the buckets, the script and the log. */
interface EndpointState {
  buckets: Map<string, Map<string, StoredObject>>;
  script: FaultScript;
  requests: RecordedRequest[];
  accessKeyId: string;
  listPageSize: number;
}

async function handle(
  state: EndpointState,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const [bucketName = '', ...rest] = url.pathname.slice(1).split('/');
  const key = rest.map(decodeURIComponent).join('/');
  const operation = operationOf(request.method, key, url.searchParams);
  const exchange: Exchange = {
    request,
    response,
    bucketName: decodeURIComponent(bucketName),
    bucket: state.buckets.get(decodeURIComponent(bucketName)) ?? new Map(),
    key,
    query: url.searchParams,
    fault: undefined,
    requestId: randomBytes(8).toString('hex').toUpperCase(),
  };
  if (operation === undefined) {
    await readRequestBody(exchange);
    return sendError(
      exchange,
      501,
      'NotImplemented',
      'The scripted endpoint does not implement this request.',
    );
  }
  exchange.fault = state.script.take(operation, key);
  state.requests.push({
    operation,
    bucket: exchange.bucketName,
    key,
    headers: request.headers,
    ...(exchange.fault ? { fault: exchange.fault.kind } : {}),
  });
  await dispatch(state, exchange, operation);
}

async function refuse(exchange: Exchange, status: number, code: string, message: string): Promise<void> {
  await readRequestBody({ ...exchange, fault: undefined });
  sendError(exchange, status, code, message);
}

async function dispatch(state: EndpointState, exchange: Exchange, operation: Operation): Promise<void> {
  const { fault, request } = exchange;
  if (!String(request.headers.authorization ?? '').includes(`Credential=${state.accessKeyId}/`)) {
    return refuse(
      exchange,
      403,
      'InvalidAccessKeyId',
      'The AWS Access Key Id you provided does not exist in our records.',
    );
  }
  if (!state.buckets.has(exchange.bucketName)) {
    return refuse(exchange, 404, 'NoSuchBucket', 'The specified bucket does not exist');
  }
  if (fault?.kind === 'delay') await sleep(fault.ms);
  if (fault?.kind === 'error') {
    return refuse(exchange, fault.status, fault.code, fault.message ?? `Scripted ${fault.code}.`);
  }
  if (operation === 'PUT') return handlePut(exchange);
  if (operation === 'GET') return handleGet(exchange);
  if (fault?.kind === 'reset') return void request.socket.destroy();
  if (fault?.kind === 'stall') return;
  if (operation === 'HEAD') return handleHead(exchange);
  if (operation === 'DELETE') return handleDelete(exchange);
  return handleList(exchange, state.listPageSize);
}

/**
 * Starts an in-memory S3 endpoint (path style, on a free loopback port) that speaks enough of the
 * REST API for the SDK (PUT with Content-MD5 and If-None-Match, GET with Range, HEAD,
 * ListObjectsV2, DELETE, XML errors) and does what s3rver cannot: enforce the conditional PUT,
 * verify Content-MD5, and play scripted faults (errors, resets, stalls, corruption, outages).
 */
export async function startScriptedS3(options: ScriptedS3Options = {}): Promise<ScriptedS3> {
  const bucketNames = options.buckets ?? ['wal-archive'];
  const accessKeyId = options.accessKeyId ?? 'SCRIPTED';
  const buckets = new Map(bucketNames.map((name) => [name, new Map<string, StoredObject>()]));
  const requests: RecordedRequest[] = [];
  const script = new FaultScript();
  const state: EndpointState = {
    buckets,
    script,
    requests,
    accessKeyId,
    listPageSize: options.listPageSize ?? 1000,
  };
  const sockets = new Set<Socket>();
  let dropping = false;

  const server = createServer((request, response) => {
    handle(state, request, response).catch(() => request.socket.destroy());
  });
  server.on('connection', (socket) => {
    if (dropping) return socket.destroy();
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  const firstBucket = buckets.get(bucketNames[0] ?? '') ?? new Map<string, StoredObject>();

  const closeListener = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });

  return {
    endpoint,
    env: {
      AWS_ACCESS_KEY_ID: accessKeyId,
      AWS_SECRET_ACCESS_KEY: options.secretAccessKey ?? 'scripted-secret',
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: endpoint,
    },
    buckets,
    objects: firstBucket,
    requests,
    fail: (rule) => script.add(rule),
    clearFaults: () => script.clear(),
    get pendingFaults() {
      return script.pending;
    },
    seed(key, body, seedOptions = {}) {
      const bucket = buckets.get(seedOptions.bucket ?? bucketNames[0] ?? '');
      bucket?.set(key, storedObject(body, seedOptions.metadata ?? {}, seedOptions.etag));
    },
    async down(mode = 'refuse') {
      if (mode === 'reset') {
        dropping = true;
        for (const socket of sockets) socket.destroy();
      } else await closeListener();
    },
    async up() {
      dropping = false;
      if (!server.listening) await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    },
    stop: closeListener,
  };
}
