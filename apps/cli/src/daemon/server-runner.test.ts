import { type AddressInfo, createServer, type Socket } from 'node:net';
import { WalError } from '@wal/protocol';
import { describe, expect, it } from 'vitest';
import { Logger } from '../log.js';
import { type ReceiveEnvironment, runReceive } from '../receive.js';
import type { ReceiveOptions } from '../receive-options.js';
import { reportError } from '../report-error.js';
import { CapturedOutput } from '../test-support.js';
import { parseDaemonConfig, type ServerConfig } from './config.js';
import { ServerRunner } from './server-runner.js';
import { Supervisor } from './supervisor.js';

/**
 * The runner and the supervisor around a scripted `runReceive` (what a real run does is shown
 * with real servers in e2e/daemon.integration.test.ts): restarts after a run ends, stops that
 * reach a run whenever they come, and a reload as a difference.
 */

function server(name: string, extra: Record<string, string> = {}): ServerConfig {
  const keys = Object.entries(extra).map(([key, value]) => `    ${key}: ${value}`);
  const text = ['servers:', `  - name: ${name}`, '    conninfo: host=x', '    directory: /', ...keys].join(
    '\n',
  );
  return parseDaemonConfig('/etc/wal/daemon.yaml', text).servers[0]!;
}

/** A run per call: `plan` says what each one does; it records the actions and traps the stop. */
class ScriptedRuns {
  readonly actions: string[] = [];
  private readonly plan: ('fail' | 'stream')[];

  constructor(plan: ('fail' | 'stream')[]) {
    this.plan = plan;
  }

  readonly run = (options: ReceiveOptions, environment: ReceiveEnvironment): Promise<number> => {
    this.actions.push(
      options.action === 'stream' ? 'stream' : `${options.action} if-not-exists=${options.ifNotExists}`,
    );
    if (options.action !== 'stream') return Promise.resolve(0);
    const step = this.plan.shift() ?? 'stream';
    if (step === 'fail') return Promise.resolve(1);
    // Streams until stopped, as runReceive does once connected: the stop ends it with 0.
    return new Promise((resolve) => {
      const release = environment.onStopSignal!(() => {
        release();
        resolve(0);
      });
    });
  };
}

function runnerFor(config: ServerConfig, runs: ScriptedRuns, output = new CapturedOutput()) {
  const logger = new Logger({ program: 'wal daemon', output, server: config.name });
  return new ServerRunner({ config, logger, runReceive: runs.run, restartDelayMs: 10 });
}

async function until(condition: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 500 && !condition(); attempt++) await new Promise((r) => setTimeout(r, 5));
  expect(condition()).toBe(true);
}

describe('ServerRunner', () => {
  it('starts a run again after one ends, and a stop ends the streaming run', async () => {
    const runs = new ScriptedRuns(['fail', 'fail', 'stream']);
    const output = new CapturedOutput();
    const runner = runnerFor(server('main'), runs, output);
    runner.start();
    await until(() => runs.actions.length === 3 && runner.state === 'running');
    await runner.stop();
    expect(runner.state).toBe('stopped');
    expect(output.lines).toEqual([
      'wal daemon [main]: starting',
      'wal daemon [main]: warning: stopped with exit status 1; starting again in 0.01 seconds',
      'wal daemon [main]: warning: stopped with exit status 1; starting again in 0.02 seconds',
      'wal daemon [main]: stopped',
    ]);
  });

  it('create-slot: true creates the slot unless it exists before each stream', async () => {
    const runs = new ScriptedRuns(['fail', 'stream']);
    const runner = runnerFor(server('main', { slot: 's', 'create-slot': 'true' }), runs);
    runner.start();
    await until(() => runs.actions.length === 4);
    await runner.stop();
    expect(runs.actions).toEqual([
      'create-slot if-not-exists=true',
      'stream',
      'create-slot if-not-exists=true',
      'stream',
    ]);
  });

  it('a stop while waiting to start again ends the wait at once', async () => {
    const runs = new ScriptedRuns(['fail']);
    const logger = new Logger({ program: 'wal daemon', output: new CapturedOutput(), server: 'main' });
    const runner = new ServerRunner({
      config: server('main'),
      logger,
      runReceive: runs.run,
      restartDelayMs: 3_600_000,
    });
    runner.start();
    await until(() => runner.state === 'waiting');
    await runner.stop();
    expect(runs.actions).toEqual(['stream']);
  });

  it('a stop asked before the run trapped it reaches the run when it does', async () => {
    let trap: (() => void) | undefined;
    const logger = new Logger({ program: 'wal daemon', output: new CapturedOutput(), server: 'main' });
    const runner = new ServerRunner({
      config: server('main'),
      logger,
      runReceive: (_options, environment) =>
        new Promise((resolve) => {
          // Still connecting: the stop is trapped only later.
          trap = () => environment.onStopSignal!(() => resolve(0));
        }),
    });
    runner.start();
    await until(() => trap !== undefined);
    const stopped = runner.stop();
    trap!();
    await stopped;
    expect(runner.state).toBe('stopped');
  });

  it('a stop during the first connection attempt is no failure for the metrics', async () => {
    // Accepts connections and never answers, so the run is still connecting when stopped.
    const sockets: Socket[] = [];
    const silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as AddressInfo;
      const failures: unknown[] = [];
      const runner = new ServerRunner({
        config: server('main', { host: '127.0.0.1', port: String(port), username: 'nobody' }),
        logger: new Logger({ program: 'wal daemon', output: new CapturedOutput(), server: 'main' }),
        runReceive,
        environment: { env: {}, observer: { event: () => {}, failed: (error) => failures.push(error) } },
      });
      runner.start();
      await until(() => sockets.length === 1);
      await runner.stop();
      expect(failures).toEqual([]);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});

describe('Supervisor', () => {
  it('applies a configuration as a difference: unchanged runners are kept', async () => {
    const runs = new ScriptedRuns([]);
    const created: string[] = [];
    const supervisor = new Supervisor((config) => {
      created.push(config.name);
      return runnerFor(config, runs);
    });
    expect(await supervisor.apply([server('a'), server('b')])).toEqual({
      added: ['a', 'b'],
      removed: [],
      changed: [],
      unchanged: [],
    });
    const [a] = supervisor.servers;
    expect(await supervisor.apply([server('a'), server('b', { slot: 'x' }), server('c')])).toEqual({
      added: ['c'],
      removed: [],
      changed: ['b'],
      unchanged: ['a'],
    });
    expect(supervisor.servers[0]).toBe(a);
    expect(await supervisor.apply([server('c')])).toMatchObject({ removed: ['a', 'b'], unchanged: ['c'] });
    expect(a!.state).toBe('stopped');
    expect(created).toEqual(['a', 'b', 'b', 'c']);
    await supervisor.stopAll();
    expect(supervisor.servers).toEqual([]);
  });
});

describe("a daemon server's errors", () => {
  it('suggest keys of the file, not flags', () => {
    const output = new CapturedOutput();
    const logger = new Logger({ program: 'wal daemon', output, server: 'main' });
    reportError(logger, new WalError('WAL_ERR_CONNECTION_REFUSED', 'connection refused'));
    const missing = Object.assign(new WalError('WAL_ERR_STREAM_SLOT_MISSING', 'x'), { slot: 'archive' });
    reportError(logger, missing);
    expect(output.lines).toEqual([
      'wal daemon [main]: error: connection refused',
      "wal daemon [main]: hint: Check the host and port in the server's conninfo (or its host and port keys).",
      'wal daemon [main]: error: replication slot "archive" does not exist',
      'wal daemon [main]: hint: Add "create-slot: true" to the server\'s entry and reload, or create the slot.',
    ]);
  });
});
