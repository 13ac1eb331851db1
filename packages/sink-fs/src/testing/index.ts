/** Test helpers of @wal/sink-fs (subpath `@wal/sink-fs/testing`): deterministic fake WAL. */
export { type FakeWalOptions, fakeWal, longPageHeader } from './fake-wal.js';
