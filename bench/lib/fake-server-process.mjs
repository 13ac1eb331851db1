// Child process for the ceiling benchmark: the fake walsender streaming pregenerated WAL as fast as
// the socket takes it, and next to it a raw TCP server writing the same frames with no protocol at
// all (the loopback limit). The WAL is generated before "ready", so generating it costs nothing
// during a measurement. Prints one JSON line per event on stdout.
//
//   node fake-server-process.mjs --bytes N [--segment-size-mb 16]
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { repositoryRoot } from './receivers.mjs';

const { values } = parseArgs({
  options: { bytes: { type: 'string' }, 'segment-size-mb': { type: 'string' } },
});
const segmentSize = Number(values['segment-size-mb'] ?? '16') * 1024 * 1024;
const segments = Math.ceil(Number(values.bytes) / segmentSize);
const CHUNK = 128 * 1024; // walsender's MAX_SEND_SIZE: XLOG_BLCKSZ * 16
const XLOG_DATA_HEADER = 1 + 8 + 8 + 8; // 'w', dataStart, walEnd, sendTime

const emit = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);

const { createFakeWalsender } = await import(join(repositoryRoot, 'apps/fake-walsender/dist/index.js'));
const originLsn = BigInt(segmentSize);
const endLsn = originLsn + BigInt(segments * segmentSize);
const wal = []; // one Buffer per segment, from originLsn

const server = await createFakeWalsender({
  server: { version: 15, segmentSize, originLsn, flushLsn: endLsn, reportedLsn: 'first-segment' },
  timeoutMs: 600_000,
  async script(session) {
    await session.handshake();
    for (;;) {
      const request = await session.serveCommands();
      if (request === undefined) return;
      const started = performance.now();
      let position = request.startLsn;
      while (position < endLsn) {
        const index = Number((position - originLsn) / BigInt(segmentSize));
        const offset = Number((position - originLsn) % BigInt(segmentSize));
        const length = Math.min(CHUNK - (offset % CHUNK), segmentSize - offset);
        await session.sendXLogData(position, wal[index].subarray(offset, offset + length), endLsn);
        position += BigInt(length);
      }
      const sent = performance.now();
      await session.finishCopy();
      emit({
        event: 'streamed',
        bytes: Number(endLsn - request.startLsn),
        seconds: (performance.now() - started) / 1000,
        sendSeconds: (sent - started) / 1000,
      });
    }
  },
});

const started = performance.now();
const generator = server.model.currentTimeline.generator;
for (let index = 0; index < segments; index += 1) {
  const start = originLsn + BigInt(index * segmentSize);
  wal.push(Buffer.from(generator.read(start, start + BigInt(segmentSize))));
}
const generateSeconds = (performance.now() - started) / 1000;

// The raw server: the same XLogData frames (CopyData 'd' + length + 'w' header + WAL), written as
// fast as the socket drains, then the connection ends.
const raw = createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => {});
  const send = async () => {
    const began = performance.now();
    for (let index = 0; index < segments; index += 1) {
      for (let offset = 0; offset < segmentSize; offset += CHUNK) {
        const data = wal[index].subarray(offset, offset + CHUNK);
        const header = Buffer.allocUnsafe(5 + XLOG_DATA_HEADER);
        header[0] = 0x64;
        header.writeUInt32BE(4 + XLOG_DATA_HEADER + data.length, 1);
        header[5] = 0x77;
        const position = originLsn + BigInt(index * segmentSize + offset);
        header.writeBigUInt64BE(position, 6);
        header.writeBigUInt64BE(endLsn, 14);
        header.writeBigUInt64BE(0n, 22);
        socket.cork();
        socket.write(header);
        const flowing = socket.write(data);
        socket.uncork();
        if (!flowing) await new Promise((resolve) => socket.once('drain', resolve));
      }
    }
    socket.end();
    emit({ event: 'raw-sent', seconds: (performance.now() - began) / 1000 });
  };
  send().catch((error) => emit({ event: 'error', message: error.message }));
});
await new Promise((resolve) => raw.listen(0, '127.0.0.1', resolve));

emit({
  event: 'ready',
  host: server.host,
  port: server.port,
  rawPort: raw.address().port,
  startLsn: originLsn.toString(),
  endLsn: endLsn.toString(),
  generateSeconds,
});

const stop = async () => {
  raw.close();
  await server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
