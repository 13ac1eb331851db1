import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { type Cluster, startCluster } from '@wal/pg-cluster';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  applicationName,
  daemonYaml,
  NotifyListener,
  python,
  serverEntry,
  startDaemon,
  waitForNoWalsender,
  waitForWalsender,
  walsenderPid,
  writeDaemonConfig,
} from './daemon-harness.js';
import {
  compareDecompressedWithPgWal,
  compareWithPgWal,
  createTable,
  describeRun,
  flushLsn,
  generateWal,
  KEEP_WAL_SETTINGS,
  killAll,
  MEGABYTE,
  matching,
  partialAgainstPgWal,
  removeDirectory,
  suiteVersion,
  switchWal,
  temporaryDirectory,
  waitForFile,
  waitForWritten,
  waitUntil,
  walFileNameOf,
} from './harness.js';
import {
  havePrometheus,
  metricsUrl,
  PROMTOOL,
  parseSamples,
  queryUntil,
  scrapeText,
  serverSample,
  withPrometheus,
} from './prometheus.js';

/**
 * `wal daemon -c FILE` with two real servers: both archived (one with lz4) equal to pg_wal; SIGHUP
 * removes, adds and changes servers while the others keep their walsender; a server whose
 * postmaster stops touches no other; SIGTERM ends with 0 and the `.partial` files kept; systemd
 * hears READY, RELOADING and STOPPING.
 */

const VERSION = suiteVersion(18);
const TABLE = 'daemon_rows';
const requireTools = process.env.WAL_REQUIRE_CLIENT_TOOLS === '1';

describe(`wal daemon on PostgreSQL ${VERSION}`, () => {
  let first: Cluster;
  let second: Cluster;
  let base: string;
  let counter = 0;

  beforeAll(async () => {
    first = await startCluster({ version: VERSION, segmentSizeMb: 1, settings: { ...KEEP_WAL_SETTINGS } });
    second = await startCluster({ version: VERSION, segmentSizeMb: 1, settings: { ...KEEP_WAL_SETTINGS } });
    base = temporaryDirectory('daemon');
    await createTable(first, TABLE);
    await createTable(second, TABLE);
  });

  afterEach(async () => {
    await killAll();
  });

  afterAll(async () => {
    await first?.stop();
    await second?.stop();
    removeDirectory(base);
  });

  /** New directories for a test: `main` (first server) and `other` (second), and the file's path. */
  function layout() {
    counter += 1;
    const root = join(base, `t${counter}`);
    const directories = { main: join(root, 'main'), other: join(root, 'other') };
    for (const directory of [root, ...Object.values(directories)]) {
      mkdirSync(directory, { mode: 0o700 });
    }
    return { config: join(root, 'daemon.yaml'), ...directories };
  }

  it('archives both servers, one with lz4, equal to pg_wal; SIGTERM exits 0 with the .partial files kept', async () => {
    const { config, main, other } = layout();
    writeDaemonConfig(config, [
      // Status every second: the wait for the written position below need not wait 10 s per report.
      serverEntry(first, 'main', main, {
        slot: 'daemon_main',
        'create-slot': true,
        verbose: true,
        'status-interval': 1,
      }),
      serverEntry(second, 'other', other, { compress: 'lz4', verbose: true, 'status-interval': 1 }),
    ]);
    const daemon = startDaemon(first, config);
    await waitForWalsender(first, 'main');
    await waitForWalsender(second, 'other');

    for (const cluster of [first, second]) {
      await generateWal(cluster, TABLE, 300 * 1024);
      await switchWal(cluster);
    }
    const switchedMain = walFileNameOf(1, (await flushLsn(first)) - 1n, MEGABYTE);
    const switchedOther = walFileNameOf(1, (await flushLsn(second)) - 1n, MEGABYTE);
    await waitForFile(main, new RegExp(`^${switchedMain}$`));
    await waitForFile(other, new RegExp(`^${switchedOther}\\.lz4$`));
    const plain = compareWithPgWal(main, first.pgWalDir);
    expect(plain.differences).toEqual([]);
    expect(plain.compared).toContain(switchedMain);
    const compressed = compareDecompressedWithPgWal(other, second.pgWalDir);
    expect(compressed.differences).toEqual([]);
    expect(compressed.compared).toContain(switchedOther);
    // The slot was created by create-slot: true and is the one streamed from.
    const [slot] = await first.sql("SELECT active FROM pg_replication_slots WHERE slot_name = 'daemon_main'");
    expect(slot).toEqual({ active: true });

    // WAL after the switch, received into each server's .partial before the stop.
    await generateWal(first, TABLE, 50 * 1024);
    await generateWal(second, TABLE, 50 * 1024);
    const targets = { main: await flushLsn(first), other: await flushLsn(second) };
    await waitForWritten(first, applicationName('main'), targets.main);
    await waitForWritten(second, applicationName('other'), targets.other);
    daemon.signal('SIGTERM');
    const result = await daemon.wait(30_000);
    expect(result.code, describeRun(result)).toBe(0);
    expect(result.stderr).toMatch(/wal daemon \[main\]: received interrupt signal, exiting/);
    expect(result.stderr).toMatch(/wal daemon \[other\]: received interrupt signal, exiting/);
    const [mainPartial] = matching(main, /\.partial$/);
    const [otherPartial] = matching(other, /\.lz4\.partial$/);
    expect(partialAgainstPgWal(main, mainPartial!, first.pgWalDir, targets.main).differences).toEqual([]);
    expect(partialAgainstPgWal(other, otherPartial!, second.pgWalDir, targets.other).differences).toEqual([]);
  });

  it('SIGHUP: a removed server stops with its .partial kept, an added one starts, a changed one restarts; the others keep their walsender', async () => {
    const { config, main, other } = layout();
    const servers = {
      main: serverEntry(first, 'main', main),
      other: serverEntry(second, 'other', other),
    };
    writeDaemonConfig(config, [servers.main, servers.other]);
    const pythonPath = python();
    const listener =
      pythonPath === undefined ? undefined : new NotifyListener(pythonPath, join(base, `notify${counter}`));
    await listener?.ready();
    const daemon = startDaemon(first, config, listener === undefined ? {} : { NOTIFY_SOCKET: listener.path });
    const mainPid = await waitForWalsender(first, 'main');
    const otherPid = await waitForWalsender(second, 'other');
    await listener?.waitFor(/^READY=1\|STATUS=archiving 2 servers$/);
    await generateWal(second, TABLE, 20 * 1024);
    await waitForFile(other, /\.partial$/);

    // Removed: stopped gracefully, its .partial kept; main's walsender is the same process.
    writeDaemonConfig(config, [servers.main]);
    daemon.signal('SIGHUP');
    await daemon.waitForStderr(/reloaded: added none; removed other; restarted none; unchanged main/);
    await waitForNoWalsender(second, 'other');
    expect(daemon.stderr).toMatch(/wal daemon \[other\]: stopped\n/);
    expect(matching(other, /\.partial$/)).toHaveLength(1);
    expect(await walsenderPid(first, 'main')).toBe(mainPid);
    await listener?.waitFor(/^RELOADING=1\|MONOTONIC_USEC=\d+$/);

    // Added back: it starts (a new walsender); main still the same.
    writeDaemonConfig(config, [servers.main, servers.other]);
    daemon.signal('SIGHUP');
    await daemon.waitForStderr(/reloaded: added other; removed none; restarted none; unchanged main/);
    const addedPid = await waitForWalsender(second, 'other');
    expect(addedPid).not.toBe(otherPid);
    expect(await walsenderPid(first, 'main')).toBe(mainPid);

    // Changed: only it restarts.
    writeDaemonConfig(config, [servers.main, { ...servers.other, 'status-interval': 2 }]);
    daemon.signal('SIGHUP');
    await daemon.waitForStderr(/reloaded: added none; removed none; restarted other; unchanged main/);
    await waitUntil(async () => ![undefined, addedPid].includes(await walsenderPid(second, 'other')), {
      description: 'a new walsender for the changed server',
    });
    expect(await walsenderPid(first, 'main')).toBe(mainPid);

    // A refused file: reported, and every server runs on.
    const changedPid = await walsenderPid(second, 'other');
    writeDaemonConfig(config, [servers.main, { ...servers.other, 'status-interval': 'soon' }]);
    daemon.signal('SIGHUP');
    await daemon.waitForStderr(/the file was refused; every server runs on as before/);
    expect(daemon.stderr).toMatch(
      new RegExp(
        `wal daemon: error: ${config}:\\d+: server "other" key "status-interval": invalid value "soon"`,
      ),
    );
    expect(await walsenderPid(first, 'main')).toBe(mainPid);
    expect(await walsenderPid(second, 'other')).toBe(changedPid);

    daemon.signal('SIGTERM');
    const result = await daemon.wait(30_000);
    expect(result.code, describeRun(result)).toBe(0);
    if (listener !== undefined) {
      await listener.waitFor(/^STOPPING=1$/);
      expect(listener.messages.filter((message) => /READY|RELOADING|STOPPING/.test(message))).toEqual([
        'READY=1|STATUS=archiving 2 servers',
        expect.stringMatching(/^RELOADING=1\|MONOTONIC_USEC=\d+$/),
        'READY=1|STATUS=archiving 1 server',
        expect.stringMatching(/^RELOADING=1/),
        'READY=1|STATUS=archiving 2 servers',
        expect.stringMatching(/^RELOADING=1/),
        'READY=1|STATUS=archiving 2 servers',
        expect.stringMatching(/^RELOADING=1/),
        'READY=1|STATUS=archiving 2 servers',
        'STOPPING=1',
      ]);
      listener.stop();
    }
  });

  it.runIf(havePrometheus || requireTools)(
    'one /metrics for both servers: promtool accepts it, received bytes grow, a real Prometheus has the lag of both',
    async () => {
      const { config, main, other } = layout();
      const metricsLine = ['metrics_address: 127.0.0.1:0', 'log_format: json'];
      writeDaemonConfig(
        config,
        [
          serverEntry(first, 'main', main, { 'status-interval': 1 }),
          serverEntry(second, 'other', other, { compress: 'lz4', 'status-interval': 1 }),
        ],
        metricsLine,
      );
      const daemon = startDaemon(first, config);
      const url = await metricsUrl(daemon);
      await waitForWalsender(first, 'main');
      await waitForWalsender(second, 'other');
      await waitUntil(async () => (await fetch(url.replace(/metrics$/, 'readyz'))).status === 200, {
        description: `both servers streaming (/readyz):\n${daemon.stderr}`,
      });

      const before = parseSamples(await scrapeText(url));
      await generateWal(first, TABLE, 256 * 1024);
      await generateWal(second, TABLE, 256 * 1024);
      const received = (samples: Map<string, number>, server: string) =>
        serverSample(samples, 'wal_receive_received_bytes_total', server);
      await waitUntil(
        async () => {
          const now = parseSamples(await scrapeText(url));
          return ['main', 'other'].every(
            (server) => received(now, server) > received(before, server) + 200 * 1024,
          );
        },
        { description: 'the received bytes of both servers to grow' },
      );
      const text = await scrapeText(url);
      execFileSync(PROMTOOL, ['check', 'metrics'], { input: text });
      const samples = parseSamples(text);
      for (const server of ['main', 'other']) {
        expect(serverSample(samples, 'wal_receive_connected', server)).toBe(1);
        expect(serverSample(samples, 'wal_receive_lag_bytes', server)).toBeGreaterThanOrEqual(0);
      }

      await withPrometheus(join(base, `t${counter}`), new URL(url).host, 'wal-daemon', async (prometheus) => {
        const answer = await queryUntil(
          prometheus,
          'wal_receive_lag_bytes',
          (answer) => answer.data.result.length === 2,
          'to have the lag of both servers',
        );
        expect(answer.data.result.map((series) => series.metric.server!).sort()).toEqual(['main', 'other']);
      });

      // A removed server's series go with it.
      writeDaemonConfig(config, [serverEntry(first, 'main', main, { 'status-interval': 1 })], metricsLine);
      daemon.signal('SIGHUP');
      await daemon.waitForStderr(/reloaded: added none; removed other/);
      const after = await scrapeText(url);
      expect(after).toMatch(/wal_receive_connected\{server="main"\} 1/);
      expect(after).not.toMatch(/server="other"/);

      daemon.signal('SIGTERM');
      const result = await daemon.wait(30_000);
      expect(result.code, describeRun(result)).toBe(0);
      // log_format: json: every line a record; a server's records carry its name.
      const records = result.stderr
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(records.every((record) => record.program === 'wal daemon')).toBe(true);
      expect(records).toContainEqual(expect.objectContaining({ server: 'other', event: 'server-stopped' }));
      expect(records).toContainEqual(expect.objectContaining({ server: 'main', event: 'server-stopped' }));
      expect(records).toContainEqual(
        expect.objectContaining({ event: 'daemon-reloaded', removed: ['other'] }),
      );
    },
  );

  describe('a refused configuration: exit 1, the file, line and key, and nothing started', () => {
    const cases: [string, (directories: { main: string; other: string }) => string[], number, string][] = [
      ['unknown top-level key', () => ['metric_address: 127.0.0.1:0'], 1, 'metric_address: unknown key'],
      ['unknown server key', () => ['    slots: x'], 7, 'server "main" key "slots": unknown key'],
      [
        'refused option',
        () => ['    endpos: 0/5000000'],
        7,
        'server "main" key "endpos": not taken by wal daemon',
      ],
      [
        'wrong type',
        () => ['    synchronous: 1'],
        7,
        'server "main" key "synchronous": must be true or false',
      ],
      [
        'bad option value',
        () => ['    status-interval: -1'],
        7,
        'server "main" key "status-interval": -s/--status-interval must be in range',
      ],
      [
        'missing name',
        ({ other }) => ['  - conninfo: host=x', `    directory: ${other}`],
        7,
        'servers[1] key "name": missing',
      ],
      [
        'missing conninfo',
        ({ other }) => ['  - name: b', `    directory: ${other}`],
        7,
        'server "b" key "conninfo": missing',
      ],
      [
        'missing directory',
        () => ['  - name: b', '    conninfo: host=x'],
        7,
        'server "b" key "directory": missing',
      ],
      [
        'duplicate name',
        ({ other }) => ['  - name: main', '    conninfo: host=x', `    directory: ${other}`],
        7,
        'server "main": the name is taken by the server at line 2',
      ],
      [
        'one directory for two servers',
        ({ main }) => ['  - name: b', '    conninfo: host=x', `    directory: ${main}`],
        7,
        'server "b" key "directory": ',
      ],
      ['YAML syntax', () => ['    slot: a: b'], 7, 'not valid YAML: '],
      [
        'bad metrics address',
        () => ['metrics_address: 127.0.0.1'],
        1,
        'metrics_address: invalid metrics address "127.0.0.1"',
      ],
    ];

    it.each(cases)('%s', async (_kind, bad, line, message) => {
      const { config, main, other } = layout();
      const valid = serverEntry(first, 'main', main, { slot: 'daemon_never', 'create-slot': true });
      const lines = daemonYaml([valid]).trimEnd().split('\n');
      const text = line === 1 ? [...bad({ main, other }), ...lines] : [...lines, ...bad({ main, other })];
      writeFileSync(config, `${text.join('\n')}\n`);
      const result = await startDaemon(first, config).wait(30_000);
      expect(result.code, describeRun(result)).toBe(1);
      expect(result.stderr.split('\n')[0]).toContain(`wal daemon: error: ${config}:${line}: ${message}`);
      expect(result.stderr).not.toMatch(/starting|started/);
      expect(matching(main, /./)).toEqual([]);
      expect(await first.sql("SELECT 1 FROM pg_replication_slots WHERE slot_name = 'daemon_never'")).toEqual(
        [],
      );
    });
  });

  it('a server that is down when the daemon starts is started again with backoff; /healthz is 503 until it streams', async () => {
    const { config, main, other } = layout();
    writeDaemonConfig(
      config,
      [serverEntry(first, 'main', main), serverEntry(second, 'other', other)],
      ['metrics_address: 127.0.0.1:0'],
    );
    await second.shutdown('fast');
    const daemon = startDaemon(first, config);
    let health = '';
    try {
      health = (await metricsUrl(daemon)).replace(/metrics$/, 'healthz');
      await daemon.waitForStderr(
        /wal daemon \[other\]: warning: stopped with exit status 1; starting again in 5 seconds/,
      );
      expect(daemon.stderr).toMatch(/wal daemon \[other\]: error: connection to server at .* failed/);
      await waitForWalsender(first, 'main');
      expect((await fetch(health)).status).toBe(503);
    } finally {
      await second.start();
    }
    // Back up: started again by the daemon (after 5, then 10 s), without a reload.
    await waitForWalsender(second, 'other', 45_000);
    await waitUntil(async () => (await fetch(health)).status === 200, { description: '/healthz 200 again' });
    daemon.signal('SIGTERM');
    expect((await daemon.wait(30_000)).code).toBe(0);
  });

  it('a server whose host never answers holds up neither a reload that removes it nor SIGTERM', async () => {
    // Accepts connections and never says a word: without connect_timeout, libpq would wait forever.
    const sockets: Socket[] = [];
    const silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    try {
      const { config, main, other } = layout();
      const mute = { name: 'mute', conninfo: `host=127.0.0.1 port=${port} user=nobody`, directory: other };
      writeDaemonConfig(config, [serverEntry(first, 'main', main), mute]);
      const daemon = startDaemon(first, config);
      const mainPid = await waitForWalsender(first, 'main');
      await waitUntil(() => sockets.length === 1, {
        description: 'the connection attempt to the silent host',
      });
      writeDaemonConfig(config, [serverEntry(first, 'main', main)]);
      daemon.signal('SIGHUP');
      await daemon.waitForStderr(/reloaded: added none; removed mute; restarted none; unchanged main/);
      expect(await walsenderPid(first, 'main')).toBe(mainPid);

      writeDaemonConfig(config, [serverEntry(first, 'main', main), mute]);
      daemon.signal('SIGHUP');
      await daemon.waitForStderr(/reloaded: added mute/);
      await waitUntil(() => sockets.length === 2, { description: 'the second connection attempt' });
      daemon.signal('SIGTERM');
      const result = await daemon.wait(30_000);
      expect(result.code, describeRun(result)).toBe(0);
      expect(result.stderr).toMatch(/wal daemon \[mute\]: stopped\n[\s\S]*wal daemon \[mute\]: stopped\n/);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  it('a server whose postmaster stops touches no other: it waits to reconnect, the other streams on', async () => {
    const { config, main, other } = layout();
    writeDaemonConfig(config, [serverEntry(first, 'main', main), serverEntry(second, 'other', other)]);
    const daemon = startDaemon(first, config);
    const mainPid = await waitForWalsender(first, 'main');
    await waitForWalsender(second, 'other');

    await second.shutdown('fast');
    try {
      await daemon.waitForStderr(/wal daemon \[other\]: disconnected; waiting \d+ seconds to try again/);
      await generateWal(first, TABLE, 100 * 1024);
      await switchWal(first);
      const switched = walFileNameOf(1, (await flushLsn(first)) - 1n, MEGABYTE);
      await waitForFile(main, new RegExp(`^${switched}$`));
      expect(await walsenderPid(first, 'main')).toBe(mainPid);
      expect(daemon.stderr).not.toMatch(/\[main\]: (error|warning|disconnected)/);
    } finally {
      await second.start();
    }
    // Back up: the server reconnects on its own.
    await waitForWalsender(second, 'other', 45_000);
    daemon.signal('SIGTERM');
    expect((await daemon.wait(30_000)).code).toBe(0);
  });
});
