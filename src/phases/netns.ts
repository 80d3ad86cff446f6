// Stale pod network namespaces (cni-*). They are bind-mounted files under <root>/run/netns: unmount
// (lazily, as `ip netns delete` does) then unlink. Working on the files, not on `ip netns`, keeps
// this correct under --root, where `ip netns` would look at the real /run/netns.
import { underRoot } from '../host/host.js';
import { NETNS_DIR } from '../inspect.js';
import type { PlannedStep, Phase } from './types.js';
import { nothing } from './types.js';

const POD_NETNS = /^cni-[0-9a-f-]+$/;

export const netns: Phase = {
  name: 'netns',
  summary: 'remove stale cni-* pod network namespaces (after the runtime is stopped)',
  cleanup: true,
  async plan(ctx) {
    if (!ctx.snapshot.facts.length) return nothing();
    const entries = (await ctx.host.readDir(NETNS_DIR)) ?? [];
    const names = entries.filter((e) => e.type === 'file' && POD_NETNS.test(e.name)).map((e) => e.name);
    if (!names.length) return nothing();
    const paths = names.map((n) => underRoot(ctx.host.root, `${NETNS_DIR}/${n}`));
    const inUse = await ctx.host.netnsInUse(paths);
    const notes = [...inUse].map((p) => `kept ${p}: a running process still uses it`);
    const stale = paths.filter((p) => !inUse.has(p));
    if (!stale.length) return nothing(...notes);
    const mounts = await ctx.host.mountPoints();
    const mounted = stale.filter((p) => mounts.has(p));
    const steps: PlannedStep[] = [];
    if (mounted.length) steps.push({ argv: ['umount', '--lazy', '--', ...mounted] });
    steps.push({ argv: ['rm', '-f', '--', ...stale], removes: { kind: 'network namespace', items: stale.map((p) => p.split('/').pop()!) } });
    return { steps, notes };
  },
};
