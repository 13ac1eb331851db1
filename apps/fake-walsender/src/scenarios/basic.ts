import type { ScenarioFactory } from './scenario.js';
import { commonServer, integerParameter } from './scenario.js';

/**
 * happy: answers every command like a real walsender and streams the WAL from the requested point
 * to the flush position (several segments, 1/16/64 MB), then keeps COPY open until the client's
 * CopyDone (spec §5.6 scenario 1). Reconnections get the same service.
 */
export const happy: ScenarioFactory = (parameters) => {
  const server = commonServer(parameters);
  // IDENTIFY_SYSTEM reports a position in the first segment (as if WAL grew since), so a client
  // starting there, like pg_receivewal with an empty directory, receives several segments.
  server.reportedLsn ??= 'first-segment';
  return {
    name: 'happy',
    description: 'stream WAL from the start point to the flush position, end COPY when the client does',
    server,
    run: (session) => session.serveDefault(),
  };
};

/** keepalive-reply: after the WAL, a keepalive with replyRequested=1 that must be answered with 'r'. */
export const keepaliveReply: ScenarioFactory = (parameters) => ({
  name: 'keepalive-reply',
  description: 'stream WAL, send k(replyRequested=0), then k(replyRequested=1) and wait for the r reply',
  server: commonServer(parameters),
  async run(session) {
    await session.handshake();
    for (;;) {
      const request = await session.serveCommands();
      if (request === undefined) return;
      await session.sendWal(request.startLsn, request.endLsn, { timeline: request.timeline });
      await session.keepalive({ replyRequested: false });
      await session.keepalive({ replyRequested: true, waitForReply: true });
      await session.finishCopy();
    }
  },
});

/** shutdown: stream, then a fast shutdown as WalSndDone does it: k(1), wait for r, 'COPY 0', close (spec §3.8). */
export const shutdown: ScenarioFactory = (parameters) => ({
  name: 'shutdown',
  description: 'stream WAL, then keepalive(reply) + CommandComplete "COPY 0" inside COPY + close',
  server: commonServer(parameters),
  async run(session) {
    await session.handshake();
    const request = await session.serveCommands();
    if (request === undefined) return;
    await session.sendWal(request.startLsn, request.endLsn, { timeline: request.timeline });
    await session.shutdown({ waitForReply: parameters.waitForReply !== 'false' });
  },
});

/** cut-at: the happy path, but the connection is cut after exactly `byte` bytes of server output. */
export const cutAt: ScenarioFactory = (parameters) => {
  const byte = integerParameter(parameters, 'byte', 4096);
  const onConnection = integerParameter(parameters, 'connection', 1);
  return {
    name: 'cut-at',
    description: `the happy path, with connection ${onConnection} cut after byte ${byte} of server output`,
    server: commonServer(parameters),
    async run(session) {
      if (session.connectionIndex === onConnection)
        session.cutAtByte(byte, parameters.mode === 'reset' ? 'reset' : 'end');
      await session.serveDefault();
    },
  };
};
