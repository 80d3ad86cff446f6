import { PhaseFailedError } from '../errors.js';
import { readCniConfigs, CNI_CONF_DIR } from '../inspect.js';
import { isPodNetworkConfig } from '../profiles/targets.js';
import type { Phase } from './types.js';
import { nothing } from './types.js';
import { kubectlArgv } from './kube.js';

export const uncordon: Phase = {
  name: 'uncordon',
  summary: 'uncordon the node (only with --uncordon, and only when a pod network config is present again)',
  cleanup: false,
  async plan(ctx) {
    if (!ctx.hasWork) return nothing();
    if (!ctx.opts.uncordon)
      return nothing(
        ctx.drained ? `leaving ${ctx.opts.node} cordoned: pass --uncordon, or run kubectl uncordon once the new CNI is in place` : '',
      );
    if (!ctx.drained) return nothing('the node was not drained by this run');
    // In a plan the removals have not happened yet, so count what will remain.
    const left = ctx.opts.dryRun ? ctx.snapshot.remainingConfigs : await readCniConfigs(ctx.host, ctx.snapshot.distro?.confDirs);
    // Only a pod network counts: the runtime would wire new pods into podman's bridge just as well.
    if (!left.some(isPodNetworkConfig)) {
      const others = left.length ? ` (only ${left.map((c) => c.file).join(', ')}, which no pod network cni-sweep knows owns)` : '';
      throw new PhaseFailedError(
        'uncordon',
        new Error(
          `refusing to uncordon: no CNI config of a pod network left in ${(ctx.snapshot.distro?.confDirs ?? [CNI_CONF_DIR]).join(', ')}${others}; install the new CNI first, then run kubectl uncordon ${ctx.opts.node}`,
        ),
      );
    }
    const k = await kubectlArgv(ctx);
    if ('why' in k) return nothing(`not uncordoning: ${k.why}`);
    return { steps: [{ argv: [...k.argv, 'uncordon', ctx.opts.node] }], notes: [] };
  },
};
