// IPAM allocations, result caches and the CNI's own state directories.
import path from 'node:path';
import { insideLocations, underRoot, type Host } from '../host/host.js';
import { containment, networksOf, RESULTS_DIR, stateCandidates, untrustedNote } from '../inspect.js';
import { networkNameProblem } from '../util/names.js';
import type { Phase, PlannedStep } from './types.js';
import { nothing } from './types.js';

export const cniState: Phase = {
  name: 'cni-state',
  summary: 'remove IPAM allocations, result caches and state directories of the CNI',
  cleanup: true,
  async plan(ctx) {
    const paths: string[] = [];
    const chosen = new Set<string>();
    const notes: string[] = [];
    const results = (await ctx.host.readDir(RESULTS_DIR)) ?? [];
    // The result caches were listed just now: they need no look of their own (hundreds of lstats).
    const listed = new Set(results.map((e) => `${RESULTS_DIR}/${e.name}`));
    const contained = containment(ctx.host);
    for (const f of ctx.snapshot.facts) {
      // Said once: by cni-config when it takes part.
      if (!ctx.selected.has('cni-config')) for (const c of f.untrusted ?? []) notes.push(untrustedNote(c));
      const owned = f.profile.state.paths;
      // Directories whose entries are per-network: a network name fills exactly one component.
      const parents = [...f.profile.state.networkPaths.map((p) => path.posix.dirname(p)), RESULTS_DIR];
      // Names also come from a crashed run's journal: checked here too, whatever their source.
      for (const [net, why] of f.keptNetworks ?? []) notes.push(`left alone: the state of network ${JSON.stringify(net)}: ${why}`);
      const networks = networksOf(f).filter((net) => {
        const problem = networkNameProblem(net);
        if (problem) notes.push(`left alone: the state of network ${JSON.stringify(net)}: ${problem}`);
        return !problem;
      });
      const candidates = stateCandidates(
        f.profile,
        networks,
        results.map((e) => e.name),
      );
      for (const p of candidates) {
        if (chosen.has(p)) continue;
        // Checked on the final path, before anything is looked up with it.
        if (!insideLocations(p, owned, parents)) {
          notes.push(`left alone: ${JSON.stringify(p)} is not inside ${f.profile.name}'s own locations`);
          continue;
        }
        if (!listed.has(p) && (await ctx.host.entryType(p)) === null) continue;
        if (!(await contained(p))) {
          // /var/run is the system's link to /run, and profiles list the /run path as well.
          if (p.startsWith('/var/run/') && (await ctx.host.entryType('/var/run')) === 'symlink') continue;
          notes.push(`left alone: a directory above ${p} is a symlink, and cni-sweep never follows one out of the CNI's locations`);
          continue;
        }
        paths.push(p);
        chosen.add(p);
      }
    }
    if (!paths.length) return nothing(...notes);
    const steps: PlannedStep[] = [];
    // A file system the CNI mounted inside its state (Cilium's cgroup2) is unmounted first, and only
    // when /proc/self/mountinfo shows it as a mount point: rm -rf must never walk into it.
    const wanted = [...new Set(ctx.snapshot.facts.flatMap((f) => f.profile.state.mounts))];
    const mounted = wanted.length ? await ctx.host.mountPoints() : new Set<string>();
    const unmount: string[] = [];
    for (const m of wanted) {
      const real = underRoot(ctx.host.root, m);
      if (!mounted.has(real) || unmount.includes(real)) continue;
      const holder = paths.find((p) => m.startsWith(`${p}/`));
      if (holder) {
        unmount.push(real);
        notes.push(`unmounts ${m} (a mount point) before ${holder} is removed`);
      } else notes.push(`left mounted: ${m}: it is not inside a path this run removes`);
    }
    if (unmount.length) steps.push({ argv: ['umount', '--lazy', '--', ...unmount] });
    steps.push({
      argv: ['rm', '-rf', '--', ...paths.map((p) => underRoot(ctx.host.root, p))],
      touches: ['files'],
      removes: { kind: 'CNI state', items: paths },
      backup: {
        files: await outsideMounts(
          ctx.host,
          paths,
          wanted.filter((m) => unmount.includes(underRoot(ctx.host.root, m))),
        ),
      },
    });
    return { steps, notes };
  },
};

/**
 * What the backup keeps of these paths: all of them, but never what is below a mount this run
 * unmounts (a cgroup2 hierarchy is the whole machine's, not the CNI's state): a path holding one
 * is kept entry by entry around it.
 */
async function outsideMounts(host: Host, paths: string[], mounts: string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (p: string): Promise<void> => {
    if (mounts.includes(p)) return;
    if (!mounts.some((m) => m.startsWith(`${p}/`))) {
      out.push(p);
      return;
    }
    for (const e of (await host.readDir(p)) ?? []) await walk(`${p}/${e.name}`);
  };
  for (const p of paths) await walk(p);
  return out;
}
