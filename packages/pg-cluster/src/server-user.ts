import { readFileSync } from 'node:fs';
import { chown } from 'node:fs/promises';

/**
 * The operating-system identity the server runs as. PostgreSQL refuses to run as root
 * ("root" execution of the PostgreSQL server is not permitted), and CI runs as root, so there
 * the server runs as `nobody`; otherwise as the current user.
 */
export interface ServerUser {
  /** Set only when the server runs as another user than this process. */
  readonly uid: number | undefined;
  readonly gid: number | undefined;
  readonly name: string;
}

const NOBODY_ID = 65534;

function lookupPasswdEntry(name: string): { uid: number; gid: number } | undefined {
  let passwd: string;
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of passwd.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name && fields.length >= 4) {
      const uid = Number(fields[2]);
      const gid = Number(fields[3]);
      if (Number.isInteger(uid) && Number.isInteger(gid)) return { uid, gid };
    }
  }
  return undefined;
}

let cached: ServerUser | undefined;

export function serverUser(): ServerUser {
  if (cached !== undefined) return cached;
  if (process.getuid?.() === 0) {
    const nobody = lookupPasswdEntry('nobody') ?? { uid: NOBODY_ID, gid: NOBODY_ID };
    cached = { uid: nobody.uid, gid: nobody.gid, name: 'nobody' };
  } else {
    cached = { uid: undefined, gid: undefined, name: process.env.USER ?? 'current user' };
  }
  return cached;
}

/** Hands a path to the server user (a no-op when the server runs as this process's user). */
export async function giveToServerUser(path: string): Promise<void> {
  const user = serverUser();
  if (user.uid !== undefined && user.gid !== undefined) await chown(path, user.uid, user.gid);
}

/** spawn() options that run a child as the server user. */
export function spawnIdentity(): { uid?: number; gid?: number } {
  const user = serverUser();
  return user.uid !== undefined && user.gid !== undefined ? { uid: user.uid, gid: user.gid } : {};
}
