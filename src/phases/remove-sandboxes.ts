// Opt-in: stop and remove the pod sandboxes through crictl while the runtime is still up, so that
// the pods kubelet restarts come back on the new network instead of keeping the old one.
import { crictl } from '../distros/node.js';
import type { Phase } from './types.js';
import { nothing } from './types.js';

export const removeSandboxes: Phase = {
  name: 'remove-sandboxes',
  summary: 'stop and remove pod sandboxes with crictl while the runtime is up (opt-in)',
  cleanup: false,
  optIn: true,
  async plan(ctx) {
    if (!ctx.hasWork) return nothing();
    // The distribution's runtime socket (k3s, rke2, microk8s do not use crictl's default).
    const cri = (...args: string[]) => crictl(ctx.snapshot.distro, ctx.host.root, ...args);
    const r = await ctx.host.query(cri('pods', '-q'));
    if (!r) return nothing('crictl is not installed: sandboxes not removed');
    if (r.code !== 0) return nothing(`crictl pods failed: ${r.stderr.trim() || `exit ${r.code}`}`);
    const ids = r.stdout
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean);
    if (!ids.length) return nothing('no pod sandboxes');
    return {
      steps: [{ argv: cri('stopp', ...ids) }, { argv: cri('rmp', ...ids), removes: { kind: 'pod sandbox', items: ids } }],
      notes: [],
    };
  },
};
