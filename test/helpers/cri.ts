// Pod sandboxes for the crictl shim: one state file per sandbox holding exactly what
// `crictl inspectp -o json <id>` prints for a containerd sandbox (cri-tools marshals the CRI
// PodSandboxStatusResponse: "status", and containerd's verbose "info" with the OCI runtime spec).
import fs from 'node:fs';
import path from 'node:path';
import { shimDir, write } from './flannel-node.js';

export interface TestSandbox {
  id: string;
  name: string;
  namespace: string;
  ip?: string;
  /** Real path of its network namespace file; none for a host-network pod. */
  netns?: string;
  hostNetwork?: boolean;
  state?: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
}

export function addSandbox(node: { root: string }, s: TestSandbox): void {
  const metadata = { name: s.name, uid: `uid-${s.id}`, namespace: s.namespace, attempt: 0 };
  const status = {
    id: s.id,
    metadata,
    state: s.state ?? 'SANDBOX_READY',
    createdAt: '1764460800000000000',
    network: { additionalIps: [], ip: s.hostNetwork ? '' : (s.ip ?? '') },
    linux: {
      namespaces: { options: { ipc: 'POD', network: s.hostNetwork ? 'NODE' : 'POD', pid: 'CONTAINER', targetId: '', usernsOptions: null } },
    },
    labels: { 'io.kubernetes.pod.name': s.name, 'io.kubernetes.pod.namespace': s.namespace },
    annotations: {},
    runtimeHandler: '',
  };
  const namespaces = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (!s.hostNetwork) namespaces.push({ type: 'network', path: s.netns ?? '' } as { type: string });
  const info = {
    image: 'registry.k8s.io/pause:3.10',
    pid: 4242,
    config: { metadata },
    runtimeSpec: { ociVersion: '1.1.0', linux: { namespaces } },
  };
  write(shimDir(node.root), `pods/${s.id}.json`, JSON.stringify({ status, info }, null, 2) + '\n');
}

/** The sandbox ids the crictl shim still has. */
export function sandboxIds(node: { root: string }): string[] {
  const dir = path.join(shimDir(node.root), 'pods');
  return fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .map((f) => f.replace(/\.json$/, ''))
        .sort()
    : [];
}
