// Stale pod network namespaces (cni-*). They are bind-mounted files under <root>/run/netns: unmount
// (lazily, as `ip netns delete` does) then unlink. Working on the files, not on `ip netns`, keeps
// this correct under --root, where `ip netns` would look at the real /run/netns.
//
// Where the directory is on a mount of its own (as on a node: /run is a tmpfs, and `ip netns add`
// makes /run/netns a bind mount of itself), one process unlinks them all from a private mount
// namespace (host/mounts.ts DETACH_SCRIPT): umount reads the whole mount table for each file, and
// every pod's namespace is one more mount, so N files cost N x (N + other mounts). On the root
// mount (a --root on the root file system), the files are unmounted, then removed.
//
// With another CNI beside, a namespace whose pod interface pairs with a host interface that is not
// the removed CNI's belongs to the other CNI's pod and stays; so does one a process still uses.
import { z } from 'zod';
import { netnsIdsArgv, underRoot, type Host } from '../host/host.js';
import { detachArgv } from '../host/mounts.js';
import { containment, listLinks, NETNS_DIR } from '../inspect.js';
import { ownedLinks } from '../ownership.js';
import { parseJsonArray, parseLinks } from '../parse/iproute.js';
import type { PlannedStep, Phase } from './types.js';
import { nothing } from './types.js';

const POD_NETNS = /^cni-[0-9a-f-]+$/;
const UMOUNT_PROCESSES = 4;
const UMOUNT_CHUNK = 32;

/**
 * The id of each namespace file in `dir` (a real path), by file name: `ip -j netns list` asks the
 * kernel for the id of every file in /var/run/netns (RTM_GETNSID, a read); it is pointed at `dir`
 * in a private mount namespace that ends with it, so this works under --root and touches nothing
 * outside. A file without an id is in the map with `undefined`. null when this cannot be read (no
 * unshare, no /var/run/netns to mount over, mounts not permitted): the caller looks into each file.
 */
async function netnsIds(host: Host, dir: string): Promise<Map<string, number | undefined> | null> {
  const r = await host.query(netnsIdsArgv(dir));
  if (!r || r.code !== 0) return null;
  try {
    return new Map(parseJsonArray(NetnsSchema, r.stdout, 'ip -j netns list').map((n) => [n.name, n.id]));
  } catch {
    return null;
  }
}

const NetnsSchema = z.object({ name: z.string(), id: z.number().optional() });

export const netns: Phase = {
  name: 'netns',
  summary: 'remove stale cni-* pod network namespaces (after the runtime is stopped)',
  cleanup: true,
  // After the links: a namespace that dies while the interfaces phase deletes its veth would take
  // the veth with it mid-batch. Not after the firewall or cni-state's files, which run beside these.
  after: ['interfaces'],
  async plan(ctx) {
    if (!ctx.snapshot.facts.length) return nothing();
    // The files are removed by the path the plan shows, which the kernel resolves: a symlink above
    // them could lead that out of the root, or to namespaces that are not the pods'.
    if (!(await containment(ctx.host)(`${NETNS_DIR}/-`)))
      return nothing(`left alone: the namespaces in ${NETNS_DIR}: a directory above them is a symlink, and cni-sweep never follows one`);
    const entries = (await ctx.host.readDir(NETNS_DIR)) ?? [];
    const names = entries.filter((e) => e.type === 'file' && POD_NETNS.test(e.name)).map((e) => e.name);
    if (!names.length) return nothing();
    const paths = names.map((n) => underRoot(ctx.host.root, `${NETNS_DIR}/${n}`));
    const notes: string[] = [];
    const keep = new Set<string>();
    for (const p of await ctx.host.netnsInUse(paths)) {
      keep.add(p);
      notes.push(`kept ${p}: a running process still uses it`);
    }

    // Only look for the peers when some host veth that is not the CNI's has its peer in another
    // namespace: on a node with one CNI, every cni-* namespace is the CNI's. A host veth's
    // link_netnsid is its peer namespace's id here, so a namespace whose id is that of a foreign
    // veth holds that veth's peer. One process reads every file's id; a file it does not answer for
    // is looked into, as before.
    const links = await listLinks(ctx.host, ctx.gaps);
    const owned = new Set(ownedLinks(links, ctx.snapshot.facts).map((l) => l.name));
    const foreign = links.filter((l) => l.linkinfo?.info_kind === 'veth' && l.link_netnsid !== undefined && !owned.has(l.ifname));
    if (foreign.length) {
      const byNsid = new Map<number, string>();
      for (const l of foreign) if (!byNsid.has(l.link_netnsid!)) byNsid.set(l.link_netnsid!, l.ifname);
      const byIndex = new Map(links.map((l) => [l.ifindex, l]));
      const todo = paths.filter((x) => !keep.has(x));
      const ids = todo.length ? await netnsIds(ctx.host, underRoot(ctx.host.root, NETNS_DIR)) : null;
      for (const p of todo) {
        let peer: string | undefined;
        const name = p.split('/').pop()!;
        if (ids?.has(name)) {
          const id = ids.get(name);
          // No id: a stale file, or a namespace no veth here pairs with.
          peer = id === undefined ? undefined : byNsid.get(id);
        } else {
          const r = await ctx.host.query(['nsenter', `--net=${p}`, 'ip', '-j', '-d', 'link', 'show']);
          if (!r || r.code !== 0) continue; // a stale file whose namespace is gone
          peer = parseLinks(r.stdout)
            .filter((l) => l.linkinfo?.info_kind === 'veth' && l.link_index !== undefined)
            .map((l) => byIndex.get(l.link_index!))
            .find((h) => h && !owned.has(h.ifname))?.ifname;
        }
        if (peer) {
          keep.add(p);
          notes.push(`kept ${p}: its pod interface pairs with ${peer}, which is not ${ctx.profiles.map((x) => x.name).join('/')}'s`);
        }
      }
    }

    // A namespace file is an nsfs mount, or an empty file once unmounted: a file with content named
    // like one is somebody's data, and rm would take it without a backup.
    const mounts = await ctx.host.mountPoints();
    for (const [i, p] of paths.entries()) {
      if (keep.has(p) || mounts.has(p)) continue;
      const text = await ctx.host.readFile(`${NETNS_DIR}/${names[i]!}`).then(
        (t) => t ?? '',
        (err: unknown) => err as Error,
      );
      if (text === '') continue;
      keep.add(p);
      notes.push(
        typeof text === 'string'
          ? `kept ${p}: it holds ${Buffer.byteLength(text)} bytes, so it is no network namespace (a namespace file is a mount, or empty)`
          : `kept ${p}: not a mount, and not an empty file (${text.message})`,
      );
    }

    const stale = paths.filter((p) => !keep.has(p));
    const staleNames = names.filter((_, i) => !keep.has(paths[i]!));
    if (!stale.length) return nothing(...notes);
    const removes = { kind: 'network namespace', items: staleNames };
    const dir = underRoot(ctx.host.root, NETNS_DIR);
    const ready = ctx.host.detachableMount && (await Promise.all(['unshare', 'umount', 'sh'].map((b) => ctx.host.has(b)))).every(Boolean);
    const mount = ready ? await ctx.host.detachableMount!(dir, staleNames) : null;
    if (mount) return { steps: [{ argv: detachArgv(dir, mount, staleNames), touches: ['namespaces', 'files'], removes }], notes };

    const mounted = stale.filter((p) => mounts.has(p));
    const steps: PlannedStep[] = [];
    // umount reads the whole mount table for each target (libmount finds the mount there), which
    // with hundreds of namespaces is most of the time, and each unmount waits for an RCU grace
    // period: a few umount processes side by side spread both over the cores (twice as fast at 250).
    const chunks = Math.min(UMOUNT_PROCESSES, Math.ceil(mounted.length / UMOUNT_CHUNK));
    const size = Math.ceil(mounted.length / chunks);
    for (let i = 0; i < mounted.length; i += size)
      steps.push({ argv: ['umount', '--lazy', '--', ...mounted.slice(i, i + size)], touches: ['namespaces'], concurrent: chunks > 1 });
    steps.push({
      argv: ['rm', '-f', '--', ...stale],
      touches: ['namespaces', 'files'],
      unlinks: staleNames.map((n) => `${NETNS_DIR}/${n}`),
      removes,
    });
    return { steps, notes };
  },
};
