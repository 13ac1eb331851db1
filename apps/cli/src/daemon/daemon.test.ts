import { EventEmitter } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ReceiveEnvironment } from '../receive.js';
import type { ReceiveOptions } from '../receive-options.js';
import { CapturedOutput } from '../test-support.js';
import { daemonMain, type SignalSource } from './daemon.js';

/** Signals sent by the test, not by the system. */
class TestSignals extends EventEmitter {
  readonly pid = 0;
  kill(): true {
    return true;
  }
}

async function until(condition: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 500 && !condition(); attempt++) await new Promise((r) => setTimeout(r, 5));
  expect(condition()).toBe(true);
}

let root: string | undefined;

afterEach(() => {
  if (root !== undefined) rmSync(root, { recursive: true, force: true });
  root = undefined;
});

describe('daemonMain', () => {
  it('a reload asked for before the stop signal does not start servers once the daemon stops', async () => {
    root = mkdtempSync(join(tmpdir(), 'wal-daemon-'));
    const config = join(root, 'daemon.yaml');
    const write = (names: string[], slow = 'no') => {
      const entries = names.flatMap((name) => {
        mkdirSync(join(root!, name), { recursive: true });
        const note = name === 'a' ? [`    slot: ${slow}`] : [];
        return [`  - name: ${name}`, '    conninfo: host=x', `    directory: ${name}`, ...note];
      });
      writeFileSync(config, ['servers:', ...entries].join('\n'));
    };
    const started: string[] = [];
    let releaseSlowStop: (() => void) | undefined;
    const runReceive = (options: ReceiveOptions, environment: ReceiveEnvironment): Promise<number> => {
      const name = options.directory!.split('/').pop()!;
      started.push(name);
      return new Promise((resolve) => {
        const release = environment.onStopSignal!(() => {
          release();
          // The first run of a stops slowly, so that the reload changing it is still under way.
          if (name === 'a' && releaseSlowStop === undefined) releaseSlowStop = () => resolve(0);
          else resolve(0);
        });
      });
    };
    write(['a']);
    const signals = new TestSignals();
    const stderr = new CapturedOutput();
    const exit = daemonMain(config, {
      stderr,
      env: {},
      runReceive,
      signals: signals as unknown as SignalSource,
    });
    await until(() => started.length === 1 || stderr.text.includes('error'));
    expect(stderr.text).not.toContain('error');
    write(['a'], 'changed');
    signals.emit('SIGHUP', 'SIGHUP');
    await until(() => releaseSlowStop !== undefined);
    write(['a', 'late'], 'changed');
    signals.emit('SIGHUP', 'SIGHUP');
    signals.emit('SIGTERM', 'SIGTERM');
    releaseSlowStop!();
    expect(await exit).toBe(0);
    expect(started).not.toContain('late');
  });
});
