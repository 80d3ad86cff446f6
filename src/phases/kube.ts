// Shared by drain and uncordon: which kubeconfig to use, and whether kubectl can be run at all.
import type { Ctx } from './types.js';
import { underRoot } from '../host/host.js';

const ADMIN_CONF = '/etc/kubernetes/admin.conf';

/** --kubeconfig or $KUBECONFIG (resolved by the CLI), else the control plane's admin.conf. A kubelet.conf cannot evict pods. */
export async function kubeconfigFor(ctx: Ctx): Promise<string | null> {
  if (ctx.opts.kubeconfig) return ctx.opts.kubeconfig;
  if ((await ctx.host.entryType(ADMIN_CONF)) === 'file') return underRoot(ctx.host.root, ADMIN_CONF);
  return null;
}

export async function kubectlArgv(ctx: Ctx): Promise<{ argv: string[] } | { why: string }> {
  const kubeconfig = await kubeconfigFor(ctx);
  if (!kubeconfig) return { why: 'no kubeconfig (pass --kubeconfig or set KUBECONFIG)' };
  if (!(await ctx.host.has('kubectl'))) return { why: 'kubectl is not installed' };
  return { argv: ['kubectl', '--kubeconfig', kubeconfig] };
}
