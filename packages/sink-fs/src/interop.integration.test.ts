import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Cluster, clientToolsPath, startCluster } from '@wal/pg-cluster';
import { formatLsn, parseLsn, segmentNumberOf, segmentStartLsn, walFileName } from '@wal/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStoredSystem } from './directory-guard.js';
import { DirectorySink } from './directory-sink.js';
import { scanDirectory } from './scan.js';
import { decoders, removeDirectory, suffixes, temporaryDirectory } from './testing/sink-test-kit.js';

/**
 * Our directory and pg_receivewal's are interchangeable: pg_receivewal 15 resumes after segments
 * we wrote (its scan decodes our complete `.lz4` files with LZ4F and reads our gzip trailers), and
 * our scan and guard read what it wrote. The WAL bytes are the server's own segment files.
 */
const tools = clientToolsPath();
const segmentSize = 1024 * 1024;
const run = promisify(execFile);
let cluster: Cluster;
let systemId: bigint;

async function makeWal(segments: number): Promise<bigint> {
  for (let index = 0; index < segments; index += 1) {
    await cluster.sql('INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 3000) g');
    await cluster.sql('SELECT pg_switch_wal()');
  }
  await cluster.sql('INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 500) g');
  const [row] = await cluster.sql<{ lsn: string }>('SELECT pg_current_wal_flush_lsn()::text AS lsn');
  return parseLsn(row!.lsn);
}

describe.skipIf(tools === undefined)('interoperability with pg_receivewal 15', () => {
  beforeAll(async () => {
    cluster = await startCluster({ version: 15, segmentSizeMb: 1 });
    await cluster.sql('CREATE TABLE items (id int, payload text)');
    const [row] = await cluster.sql<{ id: string }>(
      'SELECT system_identifier::text AS id FROM pg_control_system()',
    );
    systemId = BigInt(row!.id);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it.each(['none', 'gzip', 'lz4'] as const)(
    '%s: pg_receivewal resumes after our segments, and we resume after its .partial',
    async (method) => {
      const directory = await temporaryDirectory(`sink-interop-${method}-`);
      try {
        const flushLsn = await makeWal(3);
        const current = segmentNumberOf(flushLsn, segmentSize);
        // Our sink stores the three segments before the current one, from the server's pg_wal.
        const sink = new DirectorySink({ directory, compression: { method } });
        await sink.prepare({ systemId, segmentSize, fileMode: 0o700 });
        for (let segment = current - 3n; segment < current; segment += 1n) {
          const bytes = await readFile(join(cluster.pgWalDir, walFileName(1, segment, segmentSize)));
          for (let offset = 0; offset < bytes.length; offset += 128 * 1024) {
            await sink.write(
              1,
              segmentStartLsn(segment, segmentSize) + BigInt(offset),
              bytes.subarray(offset, offset + 128 * 1024),
            );
          }
        }
        await sink.close();

        const result = await run(
          join(tools!, 'pg_receivewal'),
          [
            '-D',
            directory,
            '-h',
            cluster.host,
            '-p',
            String(cluster.port),
            '-U',
            cluster.superuser,
            '-w',
            '-n',
            '-v',
            `--endpos=${formatLsn(flushLsn - 1n)}`,
            '-Z',
            method,
          ],
          { env: { ...process.env, PGCONNECT_TIMEOUT: '10' }, timeout: 30_000 },
        );
        // It trusted all three of our segments: no size warning, and it starts after them.
        expect(result.stderr).not.toMatch(/warning/);
        expect(result.stderr).toContain(
          `starting log streaming at ${formatLsn(segmentStartLsn(current, segmentSize))} (timeline 1)`,
        );

        // What pg_receivewal left is what our scan and guard read.
        const partialName = `${walFileName(1, current, segmentSize)}${suffixes[method]}.partial`;
        const partial = decoders[method](await readFile(join(directory, partialName)));
        const server = await readFile(join(cluster.pgWalDir, walFileName(1, current, segmentSize)));
        const received = Number(flushLsn - segmentStartLsn(current, segmentSize));
        expect(partial.subarray(0, received).equals(server.subarray(0, received))).toBe(true);
        const warnings: string[] = [];
        const scan = await scanDirectory(directory, segmentSize, {
          onWarning: (m) => warnings.push(m),
          checkAllFiles: true,
        });
        expect(scan.resumePoint).toEqual({ lsn: segmentStartLsn(current, segmentSize), timeline: 1 });
        expect(warnings).toEqual([]);
        expect(await readStoredSystem(directory)).toEqual({ fileName: partialName, systemId, segmentSize });
        const resumed = new DirectorySink({ directory, compression: { method } });
        await resumed.prepare({ systemId, segmentSize });
        expect(await resumed.resumePoint()).toEqual({
          lsn: segmentStartLsn(current, segmentSize),
          timeline: 1,
        });
      } finally {
        await removeDirectory(directory);
      }
    },
  );
});
