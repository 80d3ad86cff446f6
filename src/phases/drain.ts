import type { Phase } from './types.js';
import { nothing } from './types.js';
import { kubectlArgv } from './kube.js';

export const drain: Phase = {
  name: 'drain',
  summary: 'cordon and drain the node (when a kubeconfig is available)',
  cleanup: false,
  async plan(ctx) {
    if (!ctx.hasWork) return nothing();
    const k = await kubectlArgv(ctx);
    if ('why' in k) return nothing(`not draining: ${k.why}`);
    ctx.drained = true;
    const t = ctx.opts.drainTimeoutSec;
    return {
      steps: [
        {
          argv: [...k.argv, 'drain', ctx.opts.node, '--ignore-daemonsets', '--delete-emptydir-data', `--timeout=${t}s`],
          timeoutMs: (t + 30) * 1000,
        },
      ],
      notes: [],
    };
  },
};
