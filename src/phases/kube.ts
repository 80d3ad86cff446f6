// Shared by drain and uncordon: which kubeconfig to use, and whether kubectl can be run at all.
import type { Ctx, RunOptions } from './types.js';
import { underRoot, type Host } from '../host/host.js';
import { containment } from '../inspect.js';

const ADMIN_CONF = '/etc/kubernetes/admin.conf';

/**
 * --kubeconfig or $KUBECONFIG (resolved by the CLI), else the admin kubeconfig the distribution
 * writes on a server (a k3s or rke2 server's, microk8s's), else the control plane's admin.conf. A
 * kubelet.conf cannot evict pods.
 */
export async function kubeconfigFor(ctx: {
  opts: Pick<RunOptions, 'kubeconfig'>;
  host: Pick<Host, 'entryType' | 'root'>;
  snapshot?: { distro?: { kubeconfig?: string | null } | null };
}): Promise<string | null> {
  return ctx.opts.kubeconfig ?? (await adminConf(ctx.host, ctx.snapshot?.distro?.kubeconfig));
}

/**
 * The distribution's admin kubeconfig, else the control plane's admin.conf, under the root, when it
 * is there (doctor looks it up the same way). Not when a directory above it is a symlink: kubectl
 * would follow it, under --root out of it, and drain with another machine's cluster credentials.
 */
export async function adminConf(host: Pick<Host, 'entryType' | 'root'>, distroConf?: string | null): Promise<string | null> {
  for (const file of [...new Set([distroConf ?? ADMIN_CONF, ADMIN_CONF])]) {
    if ((await host.entryType(file).catch(() => null)) !== 'file') continue;
    if (await containment(host)(file)) return underRoot(host.root, file);
  }
  return null;
}

export async function kubectlArgv(ctx: Ctx): Promise<{ argv: string[] } | { why: string }> {
  const kubeconfig = await kubeconfigFor(ctx);
  if (!kubeconfig) return { why: 'no kubeconfig (pass --kubeconfig or set KUBECONFIG)' };
  if (!(await ctx.host.has('kubectl'))) return { why: 'kubectl is not installed' };
  return { argv: ['kubectl', '--kubeconfig', kubeconfig] };
}
