/**
 * The client a run of `wal receive` needs once its command line asks to run: the connection, the
 * stream and the sink. receive.ts imports this module only then (`loadClient`), so `--version`,
 * `-?` and refused command lines never load the client; the bundle keeps it as a chunk of its own
 * (dist/receive-chunks/receive-run-*.js, see scripts/bundle-receive.mjs).
 */
export { connect, parseConnectionString } from '@wal/libpq-lite';
export { DirectorySink } from '@wal/sink-fs';
export { boundCommand, boundConnect, classifyError, receiveWal, StreamError } from '@wal/stream';
export { VerifyingSink } from './verifying-sink.js';
