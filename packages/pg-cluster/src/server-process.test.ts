import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { findFreePort, isPortConflict, serverEnvironment } from './server-process.js';
import { serverUser } from './server-user.js';

describe('server process helpers', () => {
  it('finds a port that can be bound on 127.0.0.1', async () => {
    const { port } = await findFreePort();
    expect(port).toBeGreaterThan(0);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    await new Promise((resolve) => server.close(resolve));
  });

  it.each([
    ['LOG:  could not bind IPv4 address "127.0.0.1": Address already in use', true],
    ['FATAL:  could not create any TCP/IP sockets', true],
    ['FATAL:  could not load server certificate file "server.crt": No such file or directory', false],
  ])('recognises a lost port race in %j: %s', (log, expected) => {
    expect(isPortConflict(log)).toBe(expected);
  });

  it('gives servers no PG* variables, whatever this process has', () => {
    const previous = process.env.PGDATA;
    process.env.PGDATA = '/somewhere/else';
    try {
      const environment = serverEnvironment('/tmp/home');
      expect(Object.keys(environment).filter((name) => name.startsWith('PG'))).toEqual([]);
      expect(environment.HOME).toBe('/tmp/home');
    } finally {
      if (previous === undefined) delete process.env.PGDATA;
      else process.env.PGDATA = previous;
    }
  });

  it('runs the server as nobody when this process is root, else as this user', () => {
    const user = serverUser();
    if (process.getuid?.() === 0) {
      expect(user.name).toBe('nobody');
      expect(user.uid).not.toBe(0);
    } else {
      expect(user.uid).toBeUndefined();
    }
  });
});
