import { RefusedError } from '../errors.js';
import type { Host } from '../host/host.js';
import type { Phase, RunOptions } from './types.js';
import { nothing } from './types.js';
import { kubeconfigFor, kubectlArgv } from './kube.js';

/** Said in the plan, the prompt and the report whenever a run that changes the node will not drain it. */
export const NOT_DRAINED = 'the node will not be drained: its pods lose networking';

/**
 * Whether a run that has work refuses at drain, before any change: it asks nobody (`run --yes`) and
 * has no kubeconfig to drain with. Reads started early for the phases after drain are not started then.
 */
export async function refusesUndrained(ctx: {
  opts: Pick<RunOptions, 'refuseUndrained' | 'kubeconfig'>;
  host: Pick<Host, 'entryType' | 'root'>;
  selected: Set<string>;
}): Promise<boolean> {
  return Boolean(ctx.opts.refuseUndrained) && ctx.selected.has('drain') && !(await kubeconfigFor(ctx));
}

export const drain: Phase = {
  name: 'drain',
  summary: 'cordon and drain the node (when a kubeconfig is available)',
  cleanup: false,
  async plan(ctx) {
    if (!ctx.hasWork) return nothing();
    // Draining is never skipped silently: without a kubeconfig the operator is told, and a run
    // that asks nobody (--yes) refuses unless told to go on without draining (--skip drain).
    if (!(await kubeconfigFor(ctx))) {
      const why = `no kubeconfig found (--kubeconfig, $KUBECONFIG${ctx.snapshot.distro?.kubeconfig ? `, ${ctx.snapshot.distro.kubeconfig}` : ''} or /etc/kubernetes/admin.conf)`;
      if (await refusesUndrained(ctx))
        throw new RefusedError(
          `${NOT_DRAINED} (${why}); nothing was changed`,
          'pass --kubeconfig <file> to drain it first, or --skip drain when it is drained already or its pods may lose networking',
        );
      return { steps: [], notes: [`not draining: ${why}`], warnings: [`${NOT_DRAINED} (${why}; pass --kubeconfig, or --skip drain)`] };
    }
    const k = await kubectlArgv(ctx);
    if ('why' in k) return nothing(`not draining: ${k.why}`);
    const t = ctx.opts.drainTimeoutSec;
    return {
      facts: { drained: true },
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
