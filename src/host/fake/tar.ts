// The fake node's tar, for the backup and restore: `tar -C DIR -cpf ARCHIVE -- MEMBERS` and
// `tar -C DIR -xpf ARCHIVE --skip-old-files [-- MEMBERS]`, with GNU tar 1.34's messages and exit
// codes. The archive is a stand-in: its members and their contents as JSON in a file of the fake
// filesystem (symlinks kept as links), which tarMembers lists as the real reader (backup/tar.ts) would.
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { TarMember } from '../../backup/tar.js';
import { fileContent, mkdirAt } from './fs.js';
import { clean, fail, OK, type FsNode, type Outcome } from './model.js';

type Entries = Array<{ path: string } & FsNode>;

/** A tar command cni-sweep emits, as what running it does; undefined for any other form. */
export function tarCommand(fs: Map<string, FsNode>, argv: string[]): (() => Outcome) | undefined {
  if (argv[0] === 'tar' && argv[1] === '-C' && argv[2] && argv[3] === '-cpf' && argv[4] && argv[5] === '--' && argv.length > 6) {
    return () => tarCreate(fs, clean(argv[2]!), clean(argv[4]!), argv.slice(6));
  }
  if (
    argv[0] === 'tar' &&
    argv[1] === '-C' &&
    argv[2] &&
    argv[3] === '-xpf' &&
    argv[4] &&
    argv[5] === '--skip-old-files' &&
    (argv.length === 6 || (argv[6] === '--' && argv.length > 7))
  ) {
    return () => tarExtract(fs, clean(argv[2]!), clean(argv[4]!), argv.slice(7));
  }
  return undefined;
}

function tarCreate(fs: Map<string, FsNode>, dir: string, archive: string, members: string[]): Outcome {
  const entries: Entries = [];
  const errs: string[] = [];
  for (const m of members) {
    const top = clean(path.posix.join(dir, m));
    if (!fs.has(top)) {
      errs.push(`tar: ${m}: Cannot stat: No such file or directory`);
      continue;
    }
    for (const [k, n] of fs) if (k === top || k.startsWith(`${top}/`)) entries.push({ path: path.posix.relative(dir, k), ...n });
  }
  if (fs.get(path.posix.dirname(archive))?.type !== 'dir') return fail(2, `tar: ${archive}: Cannot open: No such file or directory\n`);
  fs.set(archive, { type: 'file', content: JSON.stringify({ fakeTar: 1, entries }), mode: 0o644 });
  return errs.length ? fail(2, `${errs.join('\n')}\ntar: Exiting with failure status due to previous errors\n`) : OK;
}

/** The members of an archive (a real path), as the tar reader lists them. */
export function tarMembers(fs: Map<string, FsNode>, archive: string): TarMember[] {
  const text = fileContent(fs, clean(archive));
  if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file, open '${archive}'`), { code: 'ENOENT' });
  const { entries } = JSON.parse(text) as { entries: Entries };
  return entries.map(({ path: name, ...n }) =>
    n.type === 'file'
      ? { name, type: 'file', size: Buffer.byteLength(n.content), sha256: createHash('sha256').update(n.content).digest('hex') }
      : n.type === 'symlink'
        ? { name, type: 'symlink', size: 0, link: n.target }
        : { name, type: n.type === 'dir' ? 'dir' : 'other', size: 0 },
  );
}

/** GNU tar -x: every member, or only the named ones and what is below them. */
function tarExtract(fs: Map<string, FsNode>, dir: string, archive: string, only: string[] = []): Outcome {
  const text = fileContent(fs, archive);
  if (text === undefined) return fail(2, `tar: ${archive}: Cannot open: No such file or directory\n`);
  const { entries } = JSON.parse(text) as { entries: Entries };
  const named = (rel: string) => !only.length || only.some((m) => rel.replace(/\/+$/, '') === m || rel.startsWith(`${m}/`));
  for (const { path: rel, ...node } of entries) {
    if (!named(rel)) continue;
    const to = clean(path.posix.join(dir, rel));
    if (fs.has(to)) continue; // --skip-old-files
    mkdirAt(fs, path.posix.dirname(to), 0o755);
    fs.set(to, node);
  }
  return OK;
}
