// CNI config files are the CNI's by content (plugin types), not by file name.
import { underRoot } from '../host/host.js';
import { containment, untrustedNote } from '../inspect.js';
import { isPodNetworkConfig } from '../profiles/targets.js';
import type { Phase, PlannedStep } from './types.js';
import { nothing } from './types.js';

export const cniConfig: Phase = {
  name: 'cni-config',
  summary: "remove the CNI config files of the CNI (detected by plugin type) from the conf dirs (/etc/cni/net.d; the distribution's)",
  cleanup: true,
  async plan(ctx) {
    const files: string[] = [];
    // A config whose names fail validation stays: it is the CNI's by its plugin type, but one that
    // names "../../etc" or the uplink was not written by the CNI as released, and whoever wrote it
    // decides what happens to it.
    const notes = ctx.snapshot.facts.flatMap((f) => [
      ...(f.untrusted ?? []).map(untrustedNote),
      ...(f.shared ?? []).map(
        (s) =>
          `kept ${s.config.file}: ${s.with.join(' and ')}'s config too (a chained config), and this run keeps ${s.with.join(' and ')}; it stays, with its network's state (to remove both: --cni ${[f.profile.name, ...s.with].join(',')})`,
      ),
    ]);
    const dirs: string[] = [];
    for (const f of ctx.snapshot.facts) {
      for (const p of [...f.configs.map((c) => c.file), ...f.extraFiles]) {
        if ((await ctx.host.entryType(p)) !== null && !files.includes(p)) files.push(p);
      }
      for (const w of f.wrappers ?? []) {
        if ((await ctx.host.entryType(w.config.file)) === null || files.includes(w.config.file)) continue;
        files.push(w.config.file);
        notes.push(w.why);
      }
      for (const d of f.confSubdirs ?? []) if (!dirs.includes(d)) dirs.push(d);
    }
    // Configs another CNI renamed aside (*.cilium_bak): each says what happens to it and why.
    const renamed = ctx.snapshot.renamed ?? [];
    // The conf dirs were looked up inside the root (symlinks resolved); this is the check that every
    // path below still is: the steps name them as the kernel resolves them.
    const contained = containment(ctx.host);
    const outside = new Set<string>();
    for (const p of [...files, ...dirs, ...renamed.flatMap((r) => [r.file, r.original])])
      if (!outside.has(p) && !(await contained(p))) {
        outside.add(p);
        notes.push(`left alone: ${p}: a directory above it is a symlink, and cni-sweep never follows one out of the conf dir`);
      }
    const inside = (p: string) => !outside.has(p);
    files.splice(0, files.length, ...files.filter(inside));
    dirs.splice(0, dirs.length, ...dirs.filter(inside));
    for (const r of renamed.filter((r) => inside(r.file) && inside(r.original))) {
      notes.push(`${{ remove: 'removes', restore: 'puts back', keep: 'kept' }[r.action]} ${r.file}: ${r.why}`);
      if (r.action === 'remove' && !files.includes(r.file)) files.push(r.file);
    }
    // mv -n: never over a config written since the plan; -T: never into a directory of that name.
    const restores: PlannedStep[] = renamed
      .filter((r) => r.action === 'restore' && inside(r.file) && inside(r.original))
      .map((r) => ({
        argv: ['mv', '-n', '-T', '--', underRoot(ctx.host.root, r.file), underRoot(ctx.host.root, r.original)],
        removes: { kind: 'CNI config put back', items: [`${r.file} -> ${r.original}`] },
      }));
    if (!files.length && !dirs.length && !restores.length) return nothing(...notes);
    // The runtime takes the first config in the directory, whatever it is: with the pod network's
    // gone, a podman or plain bridge config would give new pods its addresses.
    const warnings: string[] = [];
    const first = ctx.snapshot.remainingConfigs[0];
    if (first && !first.multus && !isPodNetworkConfig(first))
      warnings.push(
        `after the removal the runtime's first CNI config is ${first.file} (network ${first.name}, plugins ${first.types.join(', ')}), which is no pod network: pods created after it restarts get their network from it; install the new CNI's config (or move ${first.file} away) before pods are scheduled here`,
      );
    const steps: PlannedStep[] = [];
    if (files.length)
      steps.push({
        argv: ['rm', '-f', '--', ...files.map((p) => underRoot(ctx.host.root, p))],
        touches: ['files'],
        unlinks: files,
        removes: { kind: 'CNI config', items: files },
        backup: { files },
      });
    // The CNI's own directories in the conf dir (multus.d/, whereabouts.d/): kubeconfigs and settings only it reads.
    if (dirs.length)
      steps.push({
        argv: ['rm', '-rf', '--', ...dirs.map((p) => underRoot(ctx.host.root, p))],
        touches: ['files'],
        removes: { kind: 'CNI config', items: dirs },
        backup: { files: dirs },
      });
    // After the removal: a name it frees may be the one a config goes back under.
    steps.push(...restores);
    return { warnings, steps, notes };
  },
};
