import type { ServerConfig } from './config.js';
import type { ServerRunner } from './server-runner.js';

/**
 * The set of servers `wal daemon` runs, by name; the only owner of their runners. A new
 * configuration is applied as a difference (docs/adr/0014-wal-daemon.md, "Reload"): a server whose
 * entry is unchanged keeps its run, and with it its connection; a removed one is stopped; a
 * changed one is stopped and started again; an added one is started.
 */

export interface Changes {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly string[];
  readonly unchanged: readonly string[];
}

export class Supervisor {
  private readonly runners = new Map<string, ServerRunner>();
  private readonly createRunner: (config: ServerConfig) => ServerRunner;

  constructor(createRunner: (config: ServerConfig) => ServerRunner) {
    this.createRunner = createRunner;
  }

  get servers(): readonly ServerRunner[] {
    return [...this.runners.values()];
  }

  /**
   * Makes the running set `servers`. Every stop completes before any start, so a directory that
   * moves from one entry to another is never written by two runs at once.
   */
  async apply(servers: readonly ServerConfig[]): Promise<Changes> {
    const wanted = new Map(servers.map((server) => [server.name, server]));
    const removed: string[] = [];
    const changed: string[] = [];
    const stops: Promise<void>[] = [];
    for (const [name, runner] of this.runners) {
      const next = wanted.get(name);
      if (next !== undefined && next.identity === runner.config.identity) continue;
      (next === undefined ? removed : changed).push(name);
      this.runners.delete(name);
      stops.push(runner.stop());
    }
    await Promise.all(stops);
    const added: string[] = [];
    const unchanged: string[] = [];
    for (const server of servers) {
      const running = this.runners.get(server.name);
      if (running !== undefined) {
        if (!changed.includes(server.name)) unchanged.push(server.name);
        // A server waiting to start again tries now: the operator may have fixed what failed.
        running.retryNow();
        continue;
      }
      if (!changed.includes(server.name)) added.push(server.name);
      const runner = this.createRunner(server);
      this.runners.set(server.name, runner);
      runner.start();
    }
    return { added, removed, changed, unchanged };
  }

  /** Stops every server (each gracefully, all at once) and waits for them. */
  async stopAll(): Promise<void> {
    const runners = [...this.runners.values()];
    this.runners.clear();
    await Promise.all(runners.map((runner) => runner.stop()));
  }
}
