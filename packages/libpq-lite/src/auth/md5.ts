import { nodeCrypto } from '../lazy-crypto.js';

/**
 * The answer to AuthenticationMD5Password (`pg_md5_encrypt` twice):
 * "md5" + hex(md5(hex(md5(password ‖ user)) ‖ salt)).
 */
export function md5PasswordResponse(password: Buffer, user: string, salt: Buffer): Buffer {
  const { createHash } = nodeCrypto();
  const inner = createHash('md5').update(password).update(user, 'utf8').digest('hex');
  const outer = createHash('md5').update(inner, 'latin1').update(salt).digest('hex');
  return Buffer.from(`md5${outer}`, 'latin1');
}
