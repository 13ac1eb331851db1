// The least CPU a Node.js process spends per synchronous commit on this machine: a peer process
// sends a small message, the subject writes it to a file with a blocking pwrite and fsync and sends
// a 39-byte reply (pg_receivewal's system calls per commit, with nothing else), round after round.
// Prints the subject's user and system CPU per round trip, with and without the pwrite + fsync.
// Calibrates bench/README.md, "The synchronous standby": what is Node.js's floor, what is ours.
//
//   node bench/node-floor.mjs [ROUND_TRIPS] [DIRECTORY]
import { fork } from 'node:child_process';
import { closeSync, fsyncSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MESSAGE_BYTES = 200; // about one small commit's XLogData
const REPLY_BYTES = 39; // a standby status update frame

if (process.argv[2] === '--peer') {
  const roundTrips = Number(process.argv[3]);
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    const message = Buffer.alloc(MESSAGE_BYTES, 1);
    let replies = 0;
    socket.on('data', () => {
      replies += 1;
      if (replies >= roundTrips) socket.end();
      else socket.write(message);
    });
    socket.write(message);
  });
  server.listen(0, '127.0.0.1', () => process.send?.(server.address().port));
  process.on('disconnect', () => server.close());
} else {
  const roundTrips = Number(process.argv[2] ?? 5000);
  const directory = mkdtempSync(join(process.argv[3] ?? tmpdir(), 'wal-node-floor-'));
  try {
    for (const withFsync of [false, true, false, true]) {
      const { user, system } = await measure(roundTrips, withFsync, directory);
      console.log(
        `${withFsync ? 'pwrite + fsync + reply' : 'reply only           '}: user ${user.toFixed(1)} µs, system ${system.toFixed(1)} µs per round trip (${roundTrips})`,
      );
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

async function measure(roundTrips, withFsync, directory) {
  const peer = fork(new URL(import.meta.url), ['--peer', String(roundTrips)]);
  const port = await new Promise((resolve) => peer.once('message', resolve));
  const fd = openSync(join(directory, 'segment'), 'w');
  ftruncateSync(fd, 16 * 1024 * 1024);
  const reply = Buffer.alloc(REPLY_BYTES, 2);
  let position = 0;
  let count = 0;
  const started = process.cpuUsage();
  await new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    socket.on('data', (data) => {
      count += 1;
      if (withFsync) {
        writeSync(fd, data, 0, data.length, position % (16 * 1024 * 1024));
        position += data.length;
        fsyncSync(fd);
      }
      socket.write(reply);
    });
    socket.on('end', resolve);
    socket.on('error', reject);
  });
  const used = process.cpuUsage(started);
  closeSync(fd);
  peer.disconnect();
  return { user: used.user / count, system: used.system / count };
}
