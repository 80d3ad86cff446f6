// Fault injection for integration tests: PATH directories that wrap real binaries.
import fs from 'node:fs';
import path from 'node:path';

/**
 * A directory whose `name` runs `script` (bash) and otherwise the real binary, found after it on
 * PATH, or `real` (a test shim: the recording systemctl).
 */
export function wrapper(dir: string, name: string, script: string, real?: string): string {
  fs.mkdirSync(dir, { recursive: true });
  real ??= ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].map((d) => path.join(d, name)).find((p) => fs.existsSync(p));
  fs.writeFileSync(path.join(dir, name), `#!/usr/bin/env bash\nREAL=${real}\n${script}\nexec "$REAL" "$@"\n`, { mode: 0o755 });
  return dir;
}

/** A PATH directory holding only the listed binaries (symlinks), to stand for a node without the others. */
export function onlyBinaries(dir: string, names: string[]): string {
  fs.mkdirSync(dir, { recursive: true });
  for (const n of names) {
    const real = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].map((d) => path.join(d, n)).find((p) => fs.existsSync(p));
    if (!real) throw new Error(`no ${n} on this machine`);
    fs.symlinkSync(real, path.join(dir, n));
  }
  return dir;
}
