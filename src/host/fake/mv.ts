// The fake node's `mv -n -T -- SRC DST` (a config another CNI set aside, put back under its name):
// GNU mv as coreutils 9.1 does it, renaming within one file system and silently leaving an existing
// DST alone (-n). Anything else about mv stays unknown to the fake.
import path from 'node:path';
import type { FsNode } from './model.js';

const clean = (real: string) => {
  const p = path.posix.normalize(real);
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
};

export function fakeMv(fs: Map<string, FsNode>, root: string, argv: string[]): (() => { code: number; stderr?: string }) | undefined {
  if (argv.length !== 6 || argv[0] !== 'mv' || argv[1] !== '-n' || argv[2] !== '-T' || argv[3] !== '--') return undefined;
  const [src, dst] = [clean(argv[4]!), clean(argv[5]!)];
  const top = clean(root);
  for (const p of [src, dst])
    if (top !== '/' && p !== top && !p.startsWith(`${top}/`)) throw new Error(`FakeHost: ${p} is outside the root ${root}`);
  return () => {
    if (!fs.has(src)) return { code: 1, stderr: `mv: cannot stat '${argv[4]!}': No such file or directory\n` };
    if (fs.get(path.posix.dirname(dst))?.type !== 'dir')
      return { code: 1, stderr: `mv: cannot move '${argv[4]!}' to '${argv[5]!}': No such file or directory\n` };
    if (fs.has(dst)) return { code: 0 };
    for (const [k, n] of [...fs]) {
      if (k !== src && !k.startsWith(`${src}/`)) continue;
      fs.delete(k);
      fs.set(dst + k.slice(src.length), n);
    }
    return { code: 0 };
  };
}
