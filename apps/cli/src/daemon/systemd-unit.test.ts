import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The systemd unit of apps/cli/README.md, as a user copies it: systemd's own checker accepts it
 * without a warning (it warns, and still exits 0, on unknown keys and bad values), and it asks for
 * what the daemon does (notify from a child, reload by SIGHUP).
 */

const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';

function readmeUnit(): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const unit = /```ini\n(# \/etc\/systemd\/system\/wal-daemon\.service\n[\s\S]*?)```/.exec(readme)?.[1];
  if (unit === undefined) throw new Error('no wal-daemon.service block in apps/cli/README.md');
  return unit;
}

describe('the systemd unit in the README', () => {
  it('asks for notify from a child, reloads with SIGHUP, runs wal daemon -c', () => {
    const unit = readmeUnit();
    expect(unit).toMatch(/^Type=notify$/m);
    expect(unit).toMatch(/^NotifyAccess=all$/m);
    expect(unit).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/wal daemon -c \S+\.yaml$/m);
  });

  it.skipIf(!existsSync(SYSTEMD_ANALYZE))('systemd-analyze verify accepts it without a warning', () => {
    const directory = mkdtempSync(join(tmpdir(), 'wal-unit-'));
    try {
      // The program and the user need not exist on the test machine.
      const unit = readmeUnit()
        .replace('/usr/bin/wal', '/bin/true')
        .replace(/^User=.*$/m, 'User=root');
      const path = join(directory, 'wal-daemon.service');
      writeFileSync(path, unit);
      const result = spawnSync(SYSTEMD_ANALYZE, ['verify', path], { encoding: 'utf8' });
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
