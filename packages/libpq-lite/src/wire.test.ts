import { createHash } from 'node:crypto';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { encodeBackendMessage } from '@wal/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CopyBothStream } from './replication-stream.js';
import { MAX_RETIRED_BUFFERS, MIN_READ_SPACE, READ_BUFFER_SIZE, SocketReader } from './socket-reader.js';
import { HIGH_WATER_MARK, LOW_WATER_MARK, type ReadLease, Wire } from './wire.js';

/** A CopyData frame built by hand: 'd', Int32 length (incl. itself), payload. */
function copyData(payload: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header[0] = 0x64;
  header.writeUInt32BE(payload.length + 4, 1);
  return Buffer.concat([header, payload]);
}

const patterns = new Map<number, Buffer>();

/** Payload `index` of a stream: distinct content per message, so a mix-up changes the digest. */
function payloadFor(index: number, length: number): Buffer {
  let pattern = patterns.get(length);
  if (pattern === undefined) {
    pattern = Buffer.alloc(length);
    for (let offset = 0; offset < length; offset++) pattern[offset] = (offset * 31 + (offset >> 8)) & 0xff;
    patterns.set(length, pattern);
  }
  const payload = Buffer.from(pattern);
  // The index at both ends and in the middle.
  for (const offset of [0, length >> 1, length - 4]) payload.writeUInt32BE(index, offset);
  return payload;
}

const servers: Server[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  vi.useRealTimers();
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const server of servers.splice(0)) await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** A server on a free port that runs `serve` for its one client. */
async function serverFor(serve: (socket: Socket) => void): Promise<number> {
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
    serve(socket);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

type Mode = 'reader' | 'data';

async function open(
  port: number,
  mode: Mode,
): Promise<{ socket: Socket; wire: Wire; reader?: SocketReader }> {
  const reader = mode === 'reader' ? new SocketReader() : undefined;
  const socket = netConnect({
    host: '127.0.0.1',
    port,
    ...(reader === undefined ? {} : { onread: reader.options }),
  });
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const wire = new Wire(socket, { description: 'test server', reader });
  return reader === undefined ? { socket, wire } : { socket, wire, reader };
}

/** Writes `count` CopyData messages of `length` bytes, honouring the socket's back-pressure. */
function streamMessages(socket: Socket, count: number, length: number, digest: { value: string }): void {
  const hash = createHash('sha256');
  let index = 0;
  const pump = (): void => {
    while (index < count) {
      const payload = payloadFor(index, length);
      hash.update(payload);
      index++;
      if (!socket.write(copyData(payload))) {
        socket.once('drain', pump);
        return;
      }
    }
    digest.value = hash.digest('hex');
    socket.end();
  };
  pump();
}

/** Reads CopyData (each with a lease on it) until the connection fails; returns that failure. */
async function readUntilFailure(
  stream: CopyBothStream,
  onData: (data: Buffer, lease: ReadLease) => void,
): Promise<unknown> {
  for (;;) {
    try {
      const event = stream.readMessage();
      if (event === undefined) {
        await stream.waitForMessage();
        continue;
      }
      if (event.type !== 'copy-data') throw new Error(`unexpected ${event.type}`);
      onData(event.data, stream.retain());
    } catch (error) {
      return error;
    }
  }
}

describe.each<Mode>(['reader', 'data'])('Wire over a socket (%s mode)', (mode) => {
  it('hands out every message intact and unchanged while later ones arrive, then the loss', async () => {
    const count = 200;
    const length = 128 * 1024 + 25; // an XLogData message of walsender's MAX_SEND_SIZE
    const sent = { value: '' };
    const port = await serverFor((socket) => streamMessages(socket, count, length, sent));
    const { wire } = await open(port, mode);
    wire.established = true;
    const stream = new CopyBothStream(wire, () => {});
    const held: { data: Buffer; copy: Buffer }[] = [];
    const hash = createHash('sha256');
    const failure = await readUntilFailure(stream, (data) => {
      hash.update(data);
      // Keep every 10th payload to check later that nothing wrote into it.
      if (held.length * 10 < count) held.push({ data, copy: Buffer.from(data) });
    });
    expect(failure).toMatchObject({ code: 'WAL_ERR_CONNECTION_LOST' });
    expect(hash.digest('hex')).toBe(sent.value);
    for (const { data, copy } of held) expect(data.equals(copy)).toBe(true);
  });

  it.each([
    [
      'closes the connection',
      (socket: Socket) => socket.end(),
      'WAL_ERR_CONNECTION_LOST',
      'could not receive data from WAL stream: server closed the connection unexpectedly\n' +
        '\tThis probably means the server terminated abnormally\n' +
        '\tbefore or while processing the request.',
    ],
    [
      'sends an error',
      (socket: Socket) =>
        socket.end(
          encodeBackendMessage({
            type: 'ErrorResponse',
            fields: {
              severity: 'FATAL',
              code: '57P01',
              message: 'terminating connection due to administrator command',
            },
          }),
        ),
      'WAL_ERR_SERVER',
      'unexpected termination of replication stream: FATAL:  terminating connection due to administrator command',
    ],
  ])(
    "a server that %s during COPY: libpq's words after pg_receivewal's prefix",
    async (_what, end, code, message) => {
      const port = await serverFor((socket) => {
        socket.write(copyData(Buffer.from('w')));
        end(socket);
      });
      const { wire } = await open(port, mode);
      wire.established = true;
      const failure = await readUntilFailure(new CopyBothStream(wire, () => {}), () => {});
      expect(failure).toMatchObject({ code, message });
    },
  );

  it('pauses the socket while the consumer does not read, and resumes when it drains', async () => {
    const count = 400; // 52 MB: far more than the queue plus the kernel's socket buffers
    const length = 128 * 1024 + 25;
    const sent = { value: '' };
    const port = await serverFor((socket) => streamMessages(socket, count, length, sent));
    const { socket, wire } = await open(port, mode);
    const pauses: number[] = [];
    let resumes = 0;
    const pause = socket.pause.bind(socket);
    const resume = socket.resume.bind(socket);
    const paused = new Promise<void>((resolve) => {
      socket.pause = () => {
        pauses.push((wire as unknown as { queuedBytes: number }).queuedBytes);
        resolve();
        return pause();
      };
    });
    socket.resume = () => {
      resumes++;
      return resume();
    };
    await paused;
    // Give the socket every chance to deliver more: a paused wire must not take it.
    for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
    const queued = (wire as unknown as { queuedBytes: number }).queuedBytes;
    expect(queued).toBeGreaterThan(HIGH_WATER_MARK);
    // At most one read beyond the mark (a Node read is 64 KiB, a reader read at most its buffer).
    expect(queued).toBeLessThanOrEqual(HIGH_WATER_MARK + Math.max(READ_BUFFER_SIZE, 64 * 1024) + length);
    expect(resumes).toBe(0);

    // Draining down to the low-water mark resumes reading; then everything arrives.
    const hash = createHash('sha256');
    let received = 0;
    while (received < count) {
      const frame = wire.shift();
      if (frame === undefined) {
        if (wire.failed !== undefined) throw wire.failed;
        await wire.wait();
        continue;
      }
      hash.update(frame.payload);
      received++;
      const left = (wire as unknown as { queuedBytes: number }).queuedBytes;
      if (resumes === 0 && left > LOW_WATER_MARK) expect(pauses).toHaveLength(1);
    }
    expect(resumes).toBeGreaterThan(0);
    expect(hash.digest('hex')).toBe(sent.value);
    // Hysteresis: one pause per (HIGH - LOW) bytes consumed at most, never one per message.
    expect(pauses.length).toBeLessThanOrEqual(
      Math.ceil((count * length) / (HIGH_WATER_MARK - LOW_WATER_MARK)) + 1,
    );
  });

  it('does not wake a waiter for a chunk that only continues a frame', async () => {
    const frame = copyData(payloadFor(1, 1000));
    let connected!: (socket: Socket) => void;
    const serverSide = new Promise<Socket>((resolve) => {
      connected = resolve;
    });
    const port = await serverFor((socket) => {
      socket.setNoDelay(true);
      connected(socket);
    });
    const { wire } = await open(port, mode);
    const serverSocket = await serverSide;
    let woken = false;
    const waiting = wire.wait().then((ready) => {
      woken = true;
      return ready;
    });
    // The first half: the wire receives it (the framer holds it) but has no frame yet.
    serverSocket.write(frame.subarray(0, 500));
    await vi.waitUntil(
      () => (wire as unknown as { framer: { bufferedLength: number } }).framer.bufferedLength === 500,
    );
    for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(woken).toBe(false);
    serverSocket.write(frame.subarray(500));
    await expect(waiting).resolves.toBe(true);
    expect(wire.shift()?.payload.equals(payloadFor(1, 1000))).toBe(true);
  });
});

describe('Wire: a server that does not read what we send', () => {
  it('says so (writeBlocked) once the socket asks to wait, and whenWritable resolves when it drains', async () => {
    let serverSocket: Socket | undefined;
    const port = await serverFor((socket) => {
      serverSocket = socket;
      socket.pause();
    });
    const { wire } = await open(port, 'reader');
    const stream = new CopyBothStream(wire, () => {});
    expect(stream.writeBlocked).toBe(false);
    await stream.whenWritable();
    const frame = copyData(Buffer.alloc(64 * 1024));
    let written = 0;
    // Kernel buffers first, then Node's: a bounded number of frames before the socket asks to wait.
    while (!stream.writeBlocked) {
      stream.sendFrame(frame);
      written += 1;
      if (written % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
      expect(written).toBeLessThan(10_000);
    }
    expect(wire.pendingWriteBytes).toBeGreaterThan(0);
    let writable = false;
    const resumed = stream.whenWritable().then(() => {
      writable = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(writable).toBe(false);
    serverSocket?.resume();
    await resumed;
    expect(stream.writeBlocked).toBe(false);
  });
});

describe('Wire.wait', () => {
  async function idleWire(): Promise<Wire> {
    const port = await serverFor(() => {});
    return (await open(port, 'reader')).wire;
  }

  it('resolves false at its timeout, with one timer shared by waits with the same deadline', async () => {
    const wire = await idleWire();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const outcomes: boolean[] = [];
    void wire.wait(1000).then((ready) => outcomes.push(ready));
    await vi.advanceTimersByTimeAsync(999);
    expect(outcomes).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(outcomes).toEqual([false]);
    // Same absolute deadline as a consumer computing "time until the next status update".
    const second = wire.wait(500);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(499);
    void second.then((ready) => outcomes.push(ready));
    await vi.advanceTimersByTimeAsync(0);
    expect(outcomes).toEqual([false]);
    await vi.advanceTimersByTimeAsync(1);
    expect(outcomes).toEqual([false, false]);
  });

  it('keeps a wait with a later deadline waiting when an earlier timer fires, and an earlier one re-arms', async () => {
    const wire = await idleWire();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const controller = new AbortController();
    const outcomes: string[] = [];
    // First wait with a short deadline, ended by the signal before its timer fires.
    const first = wire.wait(100, controller.signal);
    controller.abort();
    outcomes.push(`first:${String(await first)}`);
    // A wait with a later deadline: the armed 100 ms timer fires first and must not end it.
    const second = wire.wait(1000).then((ready) => outcomes.push(`second:${String(ready)}`));
    await vi.advanceTimersByTimeAsync(100);
    expect(outcomes).toEqual(['first:false']);
    await vi.advanceTimersByTimeAsync(900);
    await second;
    expect(outcomes).toEqual(['first:false', 'second:false']);
    // A long wait arms a timer; ended by its signal, it leaves that timer armed. A following wait
    // with an earlier deadline must not wait for it.
    const stop = new AbortController();
    const longWait = wire.wait(10_000, stop.signal);
    stop.abort();
    await expect(longWait).resolves.toBe(false);
    const short = wire.wait(10).then((ready) => outcomes.push(`short:${String(ready)}`));
    await vi.advanceTimersByTimeAsync(10);
    await short;
    expect(outcomes).toEqual(['first:false', 'second:false', 'short:false']);
  });

  it('resolves false at once for an aborted signal, and rejects a second waiter and a NaN timeout', async () => {
    const wire = await idleWire();
    const aborted = new AbortController();
    aborted.abort();
    await expect(wire.wait(undefined, aborted.signal)).resolves.toBe(false);
    await expect(wire.wait(Number.NaN)).rejects.toMatchObject({ code: 'WAL_ERR_CONNECTION_STATE' });
    const controller = new AbortController();
    const pending = wire.wait(undefined, controller.signal);
    await expect(wire.wait()).rejects.toMatchObject({
      code: 'WAL_ERR_CONNECTION_STATE',
      message: expect.stringContaining('two callers'),
    });
    controller.abort();
    await expect(pending).resolves.toBe(false);
  });

  it('wakes a waiter with true when the connection fails', async () => {
    const wire = await idleWire();
    const pending = wire.wait(60_000);
    for (const socket of sockets) if (socket !== wire.socket) socket.destroy();
    await expect(pending).resolves.toBe(true);
    expect(wire.failed).toMatchObject({ code: 'WAL_ERR_CONNECTION_CLOSED' });
  });
});

describe('Wire over a socket: released memory is read into again', () => {
  it('reuses read buffers behind the position the consumer released, never bytes it still holds', async () => {
    const count = 200; // 25 MB through buffers of 1 MiB
    const length = 128 * 1024 + 25;
    const sent = { value: '' };
    const port = await serverFor((socket) => {
      // One byte first, taken by another receiver (as the SSL negotiation takes 'N'), so the wire's
      // positions start behind the reader's.
      socket.write(Buffer.from('N'));
      socket.once('data', () => streamMessages(socket, count, length, sent));
    });
    const reader = new SocketReader();
    const socket = netConnect({ host: '127.0.0.1', port, onread: reader.options });
    sockets.push(socket);
    const first = await new Promise<Buffer>((resolve) => {
      reader.target = (chunk) => resolve(chunk);
    });
    expect(first.toString()).toBe('N');
    reader.target = undefined;
    const wire = new Wire(socket, { description: 'test server', reader });
    wire.established = true;
    socket.write('go');
    const stream = new CopyBothStream(wire, () => {});
    // Like a sink with writes in flight: the last few payloads are held, then checked and released.
    const held: { data: Buffer; copy: Buffer; from: ReadLease }[] = [];
    const buffers = new Set<ArrayBufferLike>();
    const changed: ReadLease[] = [];
    const hash = createHash('sha256');
    const failure = await readUntilFailure(stream, (data, from) => {
      hash.update(data);
      buffers.add(data.buffer);
      held.push({ data, copy: Buffer.from(data), from });
      if (held.length > 4) {
        const done = held.shift()!;
        if (!done.data.equals(done.copy)) changed.push(done.from);
        stream.release(done.from);
      }
    });
    expect(failure).toMatchObject({ code: 'WAL_ERR_CONNECTION_LOST' });
    expect(hash.digest('hex')).toBe(sent.value);
    expect(changed).toEqual([]);
    for (const { data, copy } of held) expect(data.equals(copy)).toBe(true);
    // Without reuse 25 MB would need at least 25 buffers. Every payload is a view of a read buffer:
    // a message that would cross into the next buffer has its start moved there, not copied out.
    expect([...buffers].every((buffer) => buffer.byteLength === READ_BUFFER_SIZE)).toBe(true);
    expect(buffers.size).toBeLessThanOrEqual(8);
  });
});

describe('SocketReader', () => {
  it('reads into a buffer again only once all its bytes are released, and never into one in use', () => {
    const reader = new SocketReader();
    const { buffer, callback } = reader.options as {
      buffer: () => Uint8Array;
      callback: (bytes: number, buffer: Uint8Array) => boolean;
    };
    const chunks: { chunk: Buffer; start: number }[] = [];
    let offset = 0;
    reader.target = (chunk) => {
      chunks.push({ chunk, start: offset });
      offset += chunk.length;
    };
    let released = 0;
    const buffers = new Set<ArrayBufferLike>();
    for (let read = 0; read < 300; read++) {
      const space = buffer();
      buffers.add(space.buffer);
      // The space overlaps no chunk with a byte at or past the released offset.
      for (const { chunk, start } of chunks) {
        if (chunk.buffer !== space.buffer || start + chunk.length <= released) continue;
        const overlaps =
          space.byteOffset < chunk.byteOffset + chunk.length &&
          chunk.byteOffset < space.byteOffset + space.length;
        expect(overlaps).toBe(false);
      }
      const bytes = Math.min(space.length, 100_000 + ((read * 7919) % 60_000));
      callback(bytes, space);
      // The consumer lags behind by a varying amount, sometimes releasing nothing new.
      if (read % 3 !== 0) {
        released = Math.max(released, offset - 1_500_000 - ((read * 104_729) % 1_000_000));
        if (released > 0) reader.release(released);
      }
    }
    // About 37 MB read through a handful of buffers.
    expect(offset).toBeGreaterThan(30 * READ_BUFFER_SIZE);
    expect(buffers.size).toBeLessThanOrEqual(6);
  });

  it('reuses nothing without release, and forgets filled buffers past a bound', () => {
    const reader = new SocketReader();
    const { buffer, callback } = reader.options as {
      buffer: () => Uint8Array;
      callback: (bytes: number, buffer: Uint8Array) => boolean;
    };
    reader.target = () => {};
    const buffers = new Set<ArrayBufferLike>();
    for (let read = 0; read < 100; read++) {
      const space = buffer();
      buffers.add(space.buffer);
      callback(Math.min(space.length, 500_000), space);
    }
    expect(buffers.size).toBeGreaterThanOrEqual(49);
    // A consumer that released once then stopped: the reader keeps at most MAX_RETIRED_BUFFERS.
    reader.release(1);
    for (let read = 0; read < 100; read++) {
      const space = buffer();
      callback(Math.min(space.length, 500_000), space);
    }
    expect((reader as unknown as { retired: unknown[] }).retired.length).toBe(MAX_RETIRED_BUFFERS);
  });

  it('hands out consecutive views of one buffer and never reuses bytes it handed out', () => {
    const reader = new SocketReader();
    const chunks: Buffer[] = [];
    reader.target = (chunk) => chunks.push(chunk);
    const { buffer, callback } = reader.options as {
      buffer: () => Uint8Array;
      callback: (bytes: number, buffer: Uint8Array) => boolean;
    };
    // Node calls buffer() for the first read, then after each callback for the next one.
    let space = buffer();
    const snapshots: Buffer[] = [];
    let total = 0;
    for (let read = 0; read < 40; read++) {
      const bytes = 1 + ((read * 104_729) % space.length);
      space.fill(read & 0xff, 0, bytes);
      expect(callback(bytes, space)).toBe(true);
      total += bytes;
      snapshots.push(Buffer.from(chunks.at(-1)!));
      // The next read's space never overlaps a chunk handed out.
      const next = buffer();
      for (const chunk of chunks) {
        if (chunk.buffer !== next.buffer) continue;
        expect(next.byteOffset).toBeGreaterThanOrEqual(chunk.byteOffset + chunk.length);
      }
      expect(next.length).toBeGreaterThanOrEqual(MIN_READ_SPACE);
      // The readable end of a chunk that lies in the same buffer as the next space is the space's start.
      if (next.buffer === space.buffer) expect(next.byteOffset).toBe(space.byteOffset + bytes);
      space = next;
    }
    // Writing into every later space left each chunk as it was handed out.
    chunks.forEach((chunk, index) => {
      expect(chunk.equals(snapshots[index]!)).toBe(true);
    });
    expect(chunks.reduce((sum, chunk) => sum + chunk.length, 0)).toBe(total);
    expect(new Set(chunks.map((chunk) => chunk.buffer)).size).toBeGreaterThan(1);
  });

  it('keeps chunks that arrive before a target is set and hands them over in order', () => {
    const reader = new SocketReader();
    const { buffer, callback } = reader.options as {
      buffer: () => Uint8Array;
      callback: (bytes: number, buffer: Uint8Array) => boolean;
    };
    for (const value of [1, 2, 3]) {
      const space = buffer();
      space[0] = value;
      callback(1, space);
    }
    const received: number[] = [];
    reader.target = (chunk) => received.push(chunk[0]!);
    expect(received).toEqual([1, 2, 3]);
  });
});
