/**
 * The client a run of `wal receive` needs once its command line asks to run: the connection, the
 * stream and the sink. receive.ts imports this module only then (`loadClient`), so `--version`,
 * `-?` and refused command lines never load the client; the bundle keeps it as a chunk of its own
 * (dist/receive-chunks/receive-run-*.js, see scripts/bundle-receive.mjs). The object-store sink and
 * client (`@wal/sink-s3`, `@wal/s3` and the AWS SDK) are loaded only for `-D s3://…`
 * (receive-store.ts).
 */
export { connect, parseConnectionString } from '@wal/libpq-lite';
export { DirectorySink } from '@wal/sink-fs';
export { boundCommand, boundConnect, classifyError, receiveWal, StreamError } from '@wal/stream';
export { VerifyingSink } from './verifying-sink.js';
