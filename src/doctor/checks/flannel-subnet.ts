// Flannel's CNI plugin reads /run/flannel/subnet.env on every pod ADD, and hands FLANNEL_SUBNET's
// gateway to the bridge plugin as the bridge address. A config without the file, or a bridge
// holding another address, fails every new pod.
import { contains, parsePrefix } from '../../util/cidr.js';
import { addrsOf, sweepFix } from '../helpers.js';
import { removalFix } from '../owned.js';
import type { Check, Finding } from '../types.js';

export const flannelSubnet: Check = {
  name: 'flannel-subnet',
  run(v) {
    const out: Finding[] = [];
    const valid = v.configs.filter((c) => c.config);
    const flannelConfigs = valid.filter((c) => c.config!.types.includes('flannel'));
    if (!flannelConfigs.length) return out;
    const { env, path } = v.subnetEnv;
    const owners = [...new Set(flannelConfigs.flatMap((c) => c.owners))];
    const cnis = owners.length ? owners : ['flannel'];

    if (!env || !env.subnet) {
      const used = valid[0] !== undefined && flannelConfigs.includes(valid[0]);
      out.push({
        id: 'flannel-subnet-env-missing',
        severity: used ? 'error' : 'warning',
        title: `Flannel's CNI config is present but ${path} is ${v.subnetEnv.error ? 'unreadable' : env ? 'missing FLANNEL_SUBNET' : 'not'}`,
        evidence: [
          ...flannelConfigs.map(
            (c) => `${c.file}: plugin "flannel" (network ${c.config!.name})${c === valid[0] ? ', the config the runtime uses' : ''}`,
          ),
          v.subnetEnv.error ? `${path}: ${v.subnetEnv.error}` : env ? `${path}: no FLANNEL_SUBNET line` : `${path}: no such file`,
        ],
        why:
          `Every new pod fails: \`plugin type="flannel" failed (add): loadFlannelSubnetEnv failed: open ${path}: no such file or directory\`. ` +
          'flanneld writes that file when it starts; without it, Flannel was removed (`kubectl delete -f kube-flannel.yml` leaves the config behind, and a reboot empties /run) ' +
          'or flanneld has not started on this node. If Flannel is meant to run here, look at the kube-flannel pod on this node instead of removing its config.' +
          (v.podCidrs.length
            ? ''
            : " Without subnet.env a run knows Flannel's pod network only from --pod-cidr: pass it (e.g. --pod-cidr 10.244.0.0/16) so host-gw routes and old untagged rules go too."),
        fix: removalFix(v, cnis),
      });
      return out;
    }

    // The bridge plugin's ensureAddr: an IPv4 address other than the gateway's, or an IPv6 one
    // overlapping the v6 gateway's subnet, makes it refuse.
    const wanted = [env.subnet, env.ipv6Subnet].map((s) => (s ? parsePrefix(s) : null)).filter((p) => p !== null);
    for (const bridge of [...new Set(flannelConfigs.flatMap((c) => c.config!.bridges))]) {
      if (!v.links.some((l) => l.ifname === bridge)) continue; // created at the next pod, with the right address
      const have = addrsOf(v, bridge)
        .map((a) => parsePrefix(a)!)
        .filter(Boolean);
      for (const gw of wanted) {
        const same = have.filter((a) => a.family === gw.family);
        if (same.some((a) => a.text === gw.text)) continue;
        const conflicting = same.filter((a) => gw.family === 4 || contains(a, { ...gw, len: 128 }) || contains(gw, { ...a, len: 128 }));
        if (!conflicting.length) continue;
        const key = gw.family === 4 ? 'FLANNEL_SUBNET' : 'FLANNEL_IPV6_SUBNET';
        out.push({
          id: 'flannel-subnet-mismatch',
          severity: 'error',
          title: `${bridge} has ${conflicting.map((a) => a.text).join(', ')}, but ${path} says ${key}=${gw.text}`,
          evidence: [`${bridge}: ${conflicting.map((a) => a.text).join(', ')}`, `${path}: ${key}=${gw.text}`],
          why:
            `Every new pod fails: \`failed to set bridge addr: "${bridge}" already has an IP address different from ${gw.text}\`. ` +
            `${bridge} kept the address of an earlier Flannel subnet (the node moved to another cluster or got a new pod CIDR; flannel-io/flannel#1850). ` +
            `Deleting ${bridge} lets the bridge plugin create it again with ${gw.text} at the next pod; ` +
            'the run also deletes flannel.1 and the pod veths, so restart the kube-flannel pod on this node and recreate its pods.',
          fix: sweepFix(v, cnis, ['interfaces']),
        });
      }
    }
    return out;
  },
};
