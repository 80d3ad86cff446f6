// Opt-in: stop and remove the pod sandboxes through crictl while the runtime is still up, so that
// the pods kubelet restarts come back on the new network instead of keeping the old one.
import type { Phase } from './types.js';
import { nothing } from './types.js';

export const removeSandboxes: Phase = {
  name: 'remove-sandboxes',
  summary: 'stop and remove pod sandboxes with crictl while the runtime is up (opt-in)',
  cleanup: false,
  optIn: true,
  async plan(ctx) {
    if (!ctx.hasWork) return nothing();
    const r = await ctx.host.query(['crictl', 'pods', '-q']);
    if (!r) return nothing('crictl is not installed: sandboxes not removed');
    if (r.code !== 0) return nothing(`crictl pods failed: ${r.stderr.trim() || `exit ${r.code}`}`);
    const ids = r.stdout
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean);
    if (!ids.length) return nothing('no pod sandboxes');
    return {
      steps: [{ argv: ['crictl', 'stopp', ...ids] }, { argv: ['crictl', 'rmp', ...ids], removes: { kind: 'pod sandbox', items: ids } }],
      notes: [],
    };
  },
};
