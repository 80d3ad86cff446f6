// What a directory holds, with the entries' types, read once per directory: a run removes hundreds
// of files from a few directories (netns files, IPAM allocations, result caches), and one
// readdir(3) answers for all of them where an lstat(2) each cost 20-40 us here. (A mount point has
// the type of what is mounted on it: the kernel mounts files on files, directories on directories.
// Where readdir gives no type, Node asks lstat.)
import { readdirSync } from 'node:fs';

export type EntryKind = 'dir' | 'symlink' | 'other';

/** A reader of directories, each listed on first use and remembered: entry name -> kind; an Error: unreadable. */
export function dirListings(): (dir: string) => Map<string, EntryKind> | Error {
  const listings = new Map<string, Map<string, EntryKind> | Error>();
  return (dir) => {
    let l = listings.get(dir);
    if (l === undefined) {
      try {
        l = new Map(
          readdirSync(dir, { withFileTypes: true }).map((e) => [
            e.name,
            e.isSymbolicLink() ? 'symlink' : e.isDirectory() ? 'dir' : 'other',
          ]),
        );
      } catch (e) {
        l = e as Error;
      }
      listings.set(dir, l);
    }
    return l;
  };
}
