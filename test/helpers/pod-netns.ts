// Pod network namespaces as a container runtime leaves them: a `cni-<uuid>` file under
// <root>/run/netns holding a network namespace, with the pod's end of a veth pair (eth0) in it.
import fs from 'node:fs';
import path from 'node:path';
import { sh } from './flannel-node.js';

/**
 * Makes `n` pod namespaces under `root`; `pod(i)` says the i-th one's `uuid` (32 hex digits, named
 * `cni-<uuid>` as containerd names them) and `veth` (the host end), plus anything the caller wants
 * back. Returns each pod with its namespace's name (`netns`), and the ip -batch lines that add the
 * veths (eth0 in the namespace) and set them up, for the caller's batch.
 */
export function podNamespaces<T extends { uuid: string; veth: string }>(
  root: string,
  n: number,
  pod: (i: number) => T,
): { pods: Array<T & { netns: string }>; lines: string[] } {
  const dir = path.join(root, 'run/netns');
  fs.mkdirSync(dir, { recursive: true });
  const pods: Array<T & { netns: string }> = [];
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = pod(i);
    const u = p.uuid;
    const netns = `cni-${u.slice(0, 8)}-${u.slice(8, 12)}-${u.slice(12, 16)}-${u.slice(16, 20)}-${u.slice(20, 32)}`;
    const file = path.join(dir, netns);
    fs.writeFileSync(file, '');
    sh('unshare', [`--net=${file}`, 'true']);
    lines.push(`link add ${p.veth} type veth peer name eth0 netns ${file}`, `link set ${p.veth} up`);
    pods.push({ ...p, netns });
  }
  return { pods, lines };
}
