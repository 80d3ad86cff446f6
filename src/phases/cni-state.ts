// IPAM allocations, result caches and the CNI's own state directories.
import { underRoot } from '../host/host.js';
import { containment, networksOf, RESULTS_DIR } from '../inspect.js';
import type { Phase } from './types.js';
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
    const contained = containment(ctx.host);
    for (const f of ctx.snapshot.facts) {
      const candidates = [...f.profile.state.paths];
      for (const net of networksOf(f)) {
        for (const p of f.profile.state.networkPaths) candidates.push(p.replaceAll('{network}', net));
        // libcni names result caches <network>-<containerID>-<ifname>; the ID pins the network name, so
        // "cbr0-v2-<id>-eth0" (network cbr0-v2) is not cbr0's.
        const cache = new RegExp(`^${net.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-[0-9a-f]{64}-[^/]+$`);
        for (const e of results) if (cache.test(e.name)) candidates.push(`${RESULTS_DIR}/${e.name}`);
      }
      for (const p of candidates) {
        if (chosen.has(p) || (await ctx.host.entryType(p)) === null) continue;
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
    return {
      steps: [
        {
          argv: ['rm', '-rf', '--', ...paths.map((p) => underRoot(ctx.host.root, p))],
          removes: { kind: 'CNI state', items: paths },
          backup: { files: paths },
        },
      ],
      notes,
    };
  },
};
