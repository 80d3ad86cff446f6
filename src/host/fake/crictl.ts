// The fake node's container runtime as crictl (cri-tools) shows and changes it: `pods -q`,
// `pods -o json`, `inspectp -o json ID` (the CRI's PodSandboxStatus with its verbose info, trimmed to
// the fields cni-sweep reads) and `stopp|rmp IDS`. The node has one runtime: crictl aimed at a
// distribution's socket (`--runtime-endpoint SOCK`) answers as crictl at the default one. Any other
// form is left to FakeHost, which fails closed.
import type { ExecResult } from '../host.js';
import { fail, OK, printed, refused, type FakePod, type Outcome } from './model.js';

/** The sandboxes crictl lists, and what the CRI says of each (a listed id without one is READY with no IP). */
export interface CriState {
  sandboxes: string[];
  pods: Map<string, FakePod>;
}

/** crictl's argv without a --runtime-endpoint, which the single-runtime fake ignores. */
export function withoutEndpoint(argv: string[]): string[] {
  return argv[0] === 'crictl' && argv[1] === '--runtime-endpoint' ? ['crictl', ...argv.slice(3)] : argv;
}

const metadata = (id: string, p: FakePod) => ({ name: p.name ?? id, uid: `uid-${id}`, namespace: p.namespace ?? 'default', attempt: 0 });

export function crictlQuery(node: CriState, argv: string[]): ExecResult | undefined {
  const a = argv.join(' ');
  if (a === 'crictl pods -q') return printed(node.sandboxes.map((x) => `${x}\n`).join(''));
  if (a === 'crictl pods -o json') {
    const items = node.sandboxes.map((id) => {
      const p = node.pods.get(id) ?? {};
      return { id, metadata: metadata(id, p), state: p.state ?? 'SANDBOX_READY' };
    });
    return printed(JSON.stringify({ items }, null, 2) + '\n');
  }
  const inspectp = /^crictl inspectp -o json (\S+)$/.exec(a);
  if (inspectp) {
    const id = inspectp[1]!;
    if (!node.sandboxes.includes(id)) return refused(1, `getting the pod sandbox status for "${id}": rpc error: code = NotFound\n`);
    const p = node.pods.get(id) ?? {};
    const status = {
      id,
      metadata: metadata(id, p),
      state: p.state ?? 'SANDBOX_READY',
      network: { additionalIps: (p.additionalIps ?? []).map((ip) => ({ ip })), ip: p.ip ?? '' },
      linux: { namespaces: { options: { ipc: 'POD', network: p.hostNetwork ? 'NODE' : 'POD', pid: 'CONTAINER' } } },
    };
    const namespaces = [{ type: 'pid' }, { type: 'network', ...(p.hostNetwork ? {} : { path: p.netns ?? '' }) }];
    return printed(JSON.stringify({ status, info: { pid: 4242, runtimeSpec: { linux: { namespaces } } } }, null, 2) + '\n');
  }
  return undefined;
}

export function crictlCommand(node: CriState, argv: string[]): (() => Outcome) | undefined {
  if (argv[0] !== 'crictl' || (argv[1] !== 'stopp' && argv[1] !== 'rmp') || argv.length <= 2) return undefined;
  return () => {
    const missing = argv.slice(2).find((id) => !node.sandboxes.includes(id));
    if (missing) return fail(1, `getting sandbox status of pod "${missing}": rpc error: code = NotFound\n`);
    if (argv[1] === 'rmp') node.sandboxes = node.sandboxes.filter((id) => !argv.includes(id));
    return OK;
  };
}
