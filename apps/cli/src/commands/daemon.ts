import { Flags } from '@oclif/core';
import { BaseCommand } from '../base-command.js';

/** `wal daemon -c FILE`: the flags, then src/daemon/daemon.ts until a stop signal. */
export default class Daemon extends BaseCommand {
  static override summary = 'Archive the WAL of many servers in one process, from a YAML file.';
  static override description =
    "Each server of the file is streamed as `wal receive` would stream it, on its own: its failures and reconnects touch no other. SIGHUP reads the file again (added servers start, removed ones stop, changed ones restart, unchanged ones keep their connection); SIGTERM and SIGINT stop every server gracefully. Speaks systemd's notify protocol when $NOTIFY_SOCKET is set.";
  static override examples = ['<%= config.bin %> daemon -c /etc/wal/daemon.yaml'];
  static override flags = {
    config: Flags.string({ char: 'c', summary: 'The configuration file (YAML).', required: true }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Daemon);
    const { daemonMain } = await import('../daemon/daemon.js');
    this.exit(await daemonMain(flags.config, { stderr: process.stderr, env: process.env }));
  }
}
