import { describe, expect, it } from 'vitest';
import { createNotifier } from './notify.js';

/** The notify protocol itself is shown with systemd-notify and a real datagram socket in e2e/daemon. */
describe('createNotifier', () => {
  it('sends nothing without $NOTIFY_SOCKET', async () => {
    const warnings: string[] = [];
    const notifier = createNotifier({
      env: {},
      onWarning: (message) => warnings.push(message),
      command: '/nonexistent/notify',
    });
    await notifier.notify('READY=1');
    expect(warnings).toEqual([]);
  });

  it('a missing systemd-notify is reported once, and the daemon goes on', async () => {
    const warnings: string[] = [];
    const notifier = createNotifier({
      env: { NOTIFY_SOCKET: '/run/nonexistent/notify' },
      onWarning: (message) => warnings.push(message),
      command: '/nonexistent/systemd-notify',
    });
    await notifier.notify('READY=1');
    await notifier.notify('STOPPING=1');
    expect(warnings).toEqual([
      'could not notify systemd: /nonexistent/systemd-notify: spawn /nonexistent/systemd-notify ENOENT (install systemd, or use Type=simple in the unit)',
    ]);
  });

  it('a helper that fails is reported with its status and message', async () => {
    const warnings: string[] = [];
    const notifier = createNotifier({
      env: { NOTIFY_SOCKET: '/run/nonexistent/notify', PATH: process.env.PATH },
      onWarning: (message) => warnings.push(message),
      command: 'false',
    });
    await notifier.notify('READY=1');
    expect(warnings).toEqual(['could not notify systemd: false exited with status 1']);
  });
});
