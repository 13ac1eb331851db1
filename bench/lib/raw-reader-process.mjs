// Child process for the ceiling benchmark: connects to the raw server, reads and discards until
// the server ends the connection, and prints the bytes and the seconds from connect to end.
//
//   node raw-reader-process.mjs --port N [--host 127.0.0.1]
import { connect } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string' } } });
let bytes = 0;
let started;
const socket = connect({ port: Number(values.port), host: values.host ?? '127.0.0.1' }, () => {
  started = performance.now();
});
socket.on('data', (chunk) => {
  bytes += chunk.length;
});
socket.on('end', () => {
  process.stdout.write(
    `${JSON.stringify({ event: 'raw-read', bytes, seconds: (performance.now() - started) / 1000 })}\n`,
  );
});
socket.on('error', (error) => {
  process.stderr.write(`raw-reader: ${error.message}\n`);
  process.exit(1);
});
