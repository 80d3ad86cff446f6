// --root is a boundary. A node's disk mounted elsewhere holds absolute symlinks (/var/run -> /run,
// microk8s' /etc/cni/net.d -> /var/snap/...) that the kernel would follow out of the root, into the
// machine running cni-sweep: a read would answer for that machine and a removal would remove its
// file. Paths under another root are resolved here as openat2's RESOLVE_IN_ROOT resolves them
// (Node has no call for it): an absolute target starts again at the root, and ".." stops there.
import { readlinkSync, statSync } from 'node:fs';
import { decodeName, fsPath } from '../util/names.js';
import { UsageError } from '../errors.js';
import { underRoot } from './host.js';

/** The kernel's limit on the links one lookup follows (MAXSYMLINKS). */
const MAX_LINKS = 40;

/**
 * The machine path of a node path under `root`, every symlink on the way followed inside the
 * root, the last one only with `followLast` (lstat, readlink and unlink look at the link itself).
 * Where a component is missing or no directory, the rest is left as written (mkdir -p makes it
 * there), unless a link put a ".." in it: that lookup fails as the kernel's would, with the same
 * error, rather than climb lexically. Under "/" the kernel's own lookup is this one.
 */
export function inRoot(root: string, nodePath: string, followLast: boolean): string {
  const lexical = underRoot(root, nodePath);
  if (root === '/') return lexical;
  const base = root.replace(/\/+$/, '');
  const at = (parts: string[]) => (parts.length ? `${base}/${parts.join('/')}` : base || '/');
  // A stack: the next component last.
  const todo = nodePath.split('/').filter(Boolean).reverse();
  const done: string[] = [];
  let links = 0;
  while (todo.length) {
    const name = todo.pop()!;
    if (name === '.') continue;
    if (name === '..') {
      // The kernel goes up only from a directory (a link's ".." after a file is ENOTDIR).
      if (done.length && !statSync(fsPath(at(done))).isDirectory())
        throw Object.assign(new Error(`ENOTDIR: not a directory, '${lexical}'`), { code: 'ENOTDIR' });
      done.pop();
      continue;
    }
    done.push(name);
    if (!todo.length && !followLast) break;
    let target: string;
    try {
      target = decodeName(readlinkSync(fsPath(at(done)), { encoding: 'buffer' }));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EINVAL') continue; // there, and no symlink
      if (todo.includes('..')) throw e;
      return at([...done, ...todo.reverse()]);
    }
    // The node's own disk is broken there: bad input, said in one line (exit 2), as a chroot's ELOOP.
    if (++links > MAX_LINKS)
      throw Object.assign(new UsageError(`${nodePath} under --root ${root}: a symlink loop (more than ${MAX_LINKS} links)`), {
        code: 'ELOOP',
      });
    done.pop();
    if (target.startsWith('/')) done.length = 0;
    todo.push(...target.split('/').filter(Boolean).reverse());
  }
  return at(done);
}
