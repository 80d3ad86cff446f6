// Names read from the node (CNI network names, device names, file names) are untrusted: they are
// validated before anything is derived from them, and file names that are not UTF-8 are carried as
// strings without losing a byte.

/**
 * The CNI spec's network name grammar, as libcni validates it (pkg/utils ValidateNetworkName):
 * a letter or digit, then letters, digits, '_', '.', '-'. This also keeps the name one path component.
 */
const CNI_NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Why a CNI network name is unusable, or null when it is valid. */
export function networkNameProblem(name: string): string | null {
  if (name === '') return 'the network name is empty';
  if (!CNI_NETWORK_NAME.test(name))
    return `network name ${JSON.stringify(name)} is not a valid CNI network name (letters, digits, '_', '.', '-', starting with a letter or digit)`;
  return null;
}

/**
 * The kernel's dev_valid_name: 1 to 15 bytes (IFNAMSIZ - 1), not "." or "..", and no '/', ':' or
 * whitespace (isspace: space, \t, \n, \v, \f, \r).
 */
export function deviceNameProblem(name: string): string | null {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0) return 'the device name is empty';
  if (bytes > 15) return `device name ${JSON.stringify(name)} is longer than 15 bytes`;
  if (name === '.' || name === '..') return `device name ${JSON.stringify(name)} is not allowed`;
  if (/[/:\s]/.test(name) || name.includes('\0')) return `device name ${JSON.stringify(name)} contains '/', ':', NUL or whitespace`;
  return null;
}

/**
 * A device name that can go into an `ip -batch` line as one word: ip splits batch lines at
 * whitespace, reads quotes and backslashes, and treats '#' as a comment. Names with such characters
 * are valid for the kernel but are never the CNI's (it names its devices cni0, flannel.1, veth<hex>).
 */
export function batchSafeDevice(name: string): boolean {
  return deviceNameProblem(name) === null && /^[A-Za-z0-9_.@%+=,-]+$/.test(name);
}

/** A plugin type names a binary in the CNI bin dir: one path component, printable. */
export function pluginTypeProblem(type: string): string | null {
  if (type === '' || type === '.' || type === '..' || /[/\0-\x1f\x7f]/.test(type))
    return `plugin type ${JSON.stringify(type)} is not a file name`;
  return null;
}

/** One path component a removal may name: not empty, ".", "..", and no '/' or NUL. */
export function isPathComponent(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}

// File names are bytes. Names that are not UTF-8 are carried as strings the way Python's
// surrogateescape does: each byte that is not part of a valid UTF-8 sequence becomes the lone
// surrogate U+DC80..U+DCFF, which no valid UTF-8 decodes to, so the bytes come back exactly.

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes of a name (a directory entry) as a string, losing nothing. */
export function decodeName(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    /* not UTF-8: below, sequence by sequence */
  }
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const len = sequenceLength(bytes, i);
    if (len === 0) {
      out += String.fromCharCode(0xdc00 + bytes[i]!);
      i++;
    } else {
      out += utf8.decode(bytes.subarray(i, i + len));
      i += len;
    }
  }
  return out;
}

/** Length of the valid UTF-8 sequence at i, or 0 when the byte there does not start one. */
function sequenceLength(b: Uint8Array, i: number): number {
  const c = b[i];
  if (c === undefined) return 0;
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => {
    const x = b[i + k];
    return x !== undefined && x >= lo && x <= hi;
  };
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((c >= 0xe1 && c <= 0xec) || c === 0xee || c === 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

const ESCAPED = /[\udc80-\udcff]/;

/** Whether a name carries bytes that are not UTF-8. */
export function hasRawBytes(s: string): boolean {
  return ESCAPED.test(s);
}

/** The bytes a name stands for. */
export function encodeName(s: string): Buffer {
  if (!hasRawBytes(s)) return Buffer.from(s, 'utf8');
  const parts: Buffer[] = [];
  let run = '';
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if (ch.length === 1 && c >= 0xdc80 && c <= 0xdcff) {
      if (run) parts.push(Buffer.from(run, 'utf8'));
      run = '';
      parts.push(Buffer.from([c - 0xdc00]));
    } else run += ch;
  }
  if (run) parts.push(Buffer.from(run, 'utf8'));
  return Buffer.concat(parts);
}

/** A path for node:fs: the string itself, or its bytes when it carries bytes that are not UTF-8. */
export function fsPath(s: string): string | Buffer {
  return hasRawBytes(s) ? encodeName(s) : s;
}
