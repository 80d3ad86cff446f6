import { PhaseFailedError } from '../errors.js';
import { readCniConfigs, CNI_CONF_DIR } from '../inspect.js';
import type { Phase } from './types.js';
import { nothing } from './types.js';
import { kubectlArgv } from './kube.js';

export const uncordon: Phase = {
  name: 'uncordon',
  summary: 'uncordon the node (only with --uncordon, and only when a CNI config is present again)',
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
    if (!left.length) {
      throw new PhaseFailedError(
        'uncordon',
        new Error(
          `refusing to uncordon: no CNI config left in ${(ctx.snapshot.distro?.confDirs ?? [CNI_CONF_DIR]).join(', ')}; install the new CNI first, then run kubectl uncordon ${ctx.opts.node}`,
        ),
      );
    }
    const k = await kubectlArgv(ctx);
    if ('why' in k) return nothing(`not uncordoning: ${k.why}`);
    return { steps: [{ argv: [...k.argv, 'uncordon', ctx.opts.node] }], notes: [] };
  },
};
