/**
 * What glibc's strerror() says for an errno, by the name Node.js gives it as `code`: PostgreSQL's
 * programs print `%m`, and a drop-in prints the same words ("No space left on device", not
 * "ENOSPC: no space left on device, write"). Only the errnos a WAL client meets are listed.
 */
const STRERROR: Readonly<Record<string, string>> = {
  EACCES: 'Permission denied',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  EAGAIN: 'Resource temporarily unavailable',
  EBADF: 'Bad file descriptor',
  EBUSY: 'Device or resource busy',
  ECONNABORTED: 'Software caused connection abort',
  ECONNREFUSED: 'Connection refused',
  ECONNRESET: 'Connection reset by peer',
  EDQUOT: 'Disk quota exceeded',
  EEXIST: 'File exists',
  EFBIG: 'File too large',
  EHOSTUNREACH: 'No route to host',
  EINTR: 'Interrupted system call',
  EINVAL: 'Invalid argument',
  EIO: 'Input/output error',
  EISDIR: 'Is a directory',
  ELOOP: 'Too many levels of symbolic links',
  EMFILE: 'Too many open files',
  ENAMETOOLONG: 'File name too long',
  ENETDOWN: 'Network is down',
  ENETUNREACH: 'Network is unreachable',
  ENFILE: 'Too many open files in system',
  ENOENT: 'No such file or directory',
  ENOMEM: 'Cannot allocate memory',
  ENOSPC: 'No space left on device',
  ENOTDIR: 'Not a directory',
  ENOTEMPTY: 'Directory not empty',
  ENXIO: 'No such device or address',
  EPERM: 'Operation not permitted',
  EPIPE: 'Broken pipe',
  EROFS: 'Read-only file system',
  ETIMEDOUT: 'Connection timed out',
  EXDEV: 'Invalid cross-device link',
};

/**
 * getaddrinfo's gai_strerror() texts, by the code Node.js reports for a failed lookup (it reports
 * both EAI_NONAME and EAI_NODATA as ENOTFOUND; glibc says the former for an unknown name).
 */
const GAI_STRERROR: Readonly<Record<string, string>> = {
  ENOTFOUND: 'Name or service not known',
  EAI_AGAIN: 'Temporary failure in name resolution',
  EAI_FAIL: 'Non-recoverable failure in name resolution',
  EAI_NODATA: 'No address associated with hostname',
  EAI_NONAME: 'Name or service not known',
};

function codeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  const code = (error as { code: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * strerror()'s text for a Node.js system error (by its `code`), or undefined for an errno not
 * listed and for anything that is not a system error.
 */
export function systemErrorText(error: unknown): string | undefined {
  const code = codeOf(error);
  return code === undefined ? undefined : STRERROR[code];
}

/** gai_strerror()'s text for a failed host name lookup, else the error's code or message. */
export function lookupErrorText(error: unknown): string {
  const code = codeOf(error);
  if (code !== undefined) return GAI_STRERROR[code] ?? code;
  return error instanceof Error ? error.message : String(error);
}
