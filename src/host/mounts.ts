// Which mount holds the pod network namespace files, read from /proc/self/mountinfo, and the step
// that removes them through it (emitted by the netns phase, answered by the fake host).

/**
 * Run by `sh -c` in a mount namespace of its own whose mounts are private (nothing unmounted there
 * reaches the node), with $1 the netns directory, $2 the mount holding it, then `--` and the file
 * names. It works from inside the directory, so that the names still lead to the files once the
 * mount holding them is unmounted there (lazily: the working directory keeps it): that one umount
 * takes this namespace's copies of all the namespace mounts, and each unlink then detaches the
 * node's mounts of that file (Linux 3.18+: a file mounted only in other mount namespaces can be
 * unlinked). The node's other mounts, and the namespaces kept, stay mounted.
 */
export const DETACH_SCRIPT = 'cd -- "$1" && umount --lazy -- "$2" && shift 2 && exec rm -f "$@"';

/** The step that removes the netns files `names` of `dir`, held by the mount at `mount` (see DETACH_SCRIPT). */
export const detachArgv = (dir: string, mount: string, names: string[]): string[] => [
  'unshare',
  '--mount',
  '--propagation',
  'private',
  'sh',
  '-c',
  DETACH_SCRIPT,
  'sh',
  dir,
  mount,
  '--',
  ...names,
];

/** The files a detachArgv step removes (real paths), or null when the step is not one. */
export function detachedFiles(argv: string[]): string[] | null {
  if (argv[0] !== 'unshare' || argv[6] !== DETACH_SCRIPT || argv[10] !== '--') return null;
  return argv.slice(11).map((n) => `${argv[8]}/${n}`);
}

interface MountEntry {
  id: number;
  parent: number;
  point: string;
}

function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    // Fields 1, 2 and 5: mount id, parent id, mount point (spaces and such octal-escaped).
    if (!f[4]) continue;
    const point = f[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    out.push({ id: Number(f[0]), parent: Number(f[1]), point });
  }
  return out;
}

const inside = (p: string, point: string) => point === '/' || p === point || p.startsWith(`${point}/`);

/**
 * The mount point of the outermost mount other than "/" that holds `dir` (a real path), when every
 * mount on one of `files` (real paths in `dir`) hangs below it: unmounting it in a mount namespace
 * of one's own then takes every copy of those mounts there at once, and the files can be unlinked
 * (from a working directory inside it). Outermost, not innermost: where /run is shared (systemd),
 * the self-bind mount `ip netns add` makes on /run/netns is a peer of /run, so each namespace is
 * mounted twice, once on the bind mount and once on /run beneath it. null when `dir` is on the
 * root mount (a mount namespace's root cannot be unmounted) or a file is mounted elsewhere.
 */
export function detachableMount(mountinfo: string, dir: string, files: string[]): string | null {
  const mounts = parseMountinfo(mountinfo);
  const holding = mounts.filter((m) => m.point !== '/' && inside(dir, m.point));
  if (!holding.length) return null;
  const point = holding.reduce((a, b) => (b.point.length < a.point.length ? b : a)).point;
  // Mounts stacked on one point: umount takes the top one, the one no other mount there sits on.
  const here = mounts.filter((m) => m.point === point);
  const top = here.filter((m) => !here.some((o) => o.parent === m.id)).at(-1);
  if (!top) return null;
  const byId = new Map(mounts.map((m) => [m.id, m]));
  const below = (m: MountEntry): boolean => {
    for (let cur: MountEntry | undefined = m, hops = 0; cur && hops < 4096; cur = byId.get(cur.parent), hops++)
      if (cur.id === top.id) return true;
    return false;
  };
  // The working directory too: the mount `cd dir` lands on, the innermost one holding it.
  const cwd = mounts.filter((m) => inside(dir, m.point)).reduce((a, b) => (b.point.length >= a.point.length ? b : a));
  if (!below(cwd)) return null;
  const wanted = new Set(files);
  for (const m of mounts) if (wanted.has(m.point) && !below(m)) return null;
  return point;
}
