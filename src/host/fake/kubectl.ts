// The fake node's view of the Kubernetes API through kubectl: `get node NAME -o json` (NotFound
// for a node it does not hold), `get networkpolicies -A -o json` (a List, as kubectl prints one), and
// `drain|uncordon NAME`, which only cordon and uncordon here. Every form carries `--kubeconfig PATH`
// first, as cni-sweep always passes it. Any other form is left to FakeHost, which fails closed.
import type { ExecResult } from '../host.js';
import { OK, printed, refused, type Outcome } from './model.js';

export interface KubeState {
  /** Node objects by name. */
  kubeNodes: Map<string, unknown>;
  networkPolicies: Array<{ namespace: string; name: string }>;
  /** Nodes cordoned through kubectl drain and not uncordoned since. */
  cordoned: Set<string>;
}

export function kubectlQuery(node: KubeState, argv: string[]): ExecResult | undefined {
  const kube = /^kubectl --kubeconfig \S+ get (?:node (\S+)|(networkpolicies) -A) -o json$/.exec(argv.join(' '));
  if (kube?.[1] !== undefined) {
    const obj = node.kubeNodes.get(kube[1]);
    if (obj === undefined) return refused(1, `Error from server (NotFound): nodes "${kube[1]}" not found\n`);
    return printed(JSON.stringify(obj) + '\n');
  }
  if (kube?.[2]) {
    const items = node.networkPolicies.map((p) => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: p.name, namespace: p.namespace },
      spec: { podSelector: {} },
    }));
    return printed(JSON.stringify({ apiVersion: 'v1', kind: 'List', items, metadata: { resourceVersion: '' } }) + '\n');
  }
  return undefined;
}

export function kubectlCommand(node: KubeState, argv: string[]): (() => Outcome) | undefined {
  if (argv[0] !== 'kubectl' || argv[1] !== '--kubeconfig' || !argv[2] || (argv[3] !== 'drain' && argv[3] !== 'uncordon') || !argv[4])
    return undefined;
  return () => {
    if (argv[3] === 'drain') node.cordoned.add(argv[4]!);
    else node.cordoned.delete(argv[4]!);
    return OK;
  };
}
