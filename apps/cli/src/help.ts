import { type Command, Help } from '@oclif/core';
import { receiveHelpText } from './receive-help.js';

/**
 * oclif answers `--help` anywhere on the line before a command runs. For `wal receive` that help
 * must be the pg_receivewal-style text (`wal receive -?` prints the same), so this help class
 * hands that command to our own text and leaves the rest to oclif.
 */
export default class WalHelp extends Help {
  override async showCommandHelp(command: Command.Loadable): Promise<void> {
    if (command.id === 'receive') {
      process.stdout.write(receiveHelpText(`${this.config.bin} receive`));
      return;
    }
    await super.showCommandHelp(command);
  }
}
