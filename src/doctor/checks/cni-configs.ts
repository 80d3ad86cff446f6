// The conf dir as the runtime sees it: configs it cannot load, and more than one config, of which
// it uses only the first in lexical order (libcni sorts the file names; containerd and CRI-O take
// the first loadable one).
import path from 'node:path';
import { cniOf, realPath, sweepFix } from '../helpers.js';
import { removalFix } from '../owned.js';
import type { Check, Finding } from '../types.js';

export const cniConfigs: Check = {
  name: 'cni-configs',
  run(v) {
    const out: Finding[] = [];
    for (const c of v.configs.filter((x) => !x.config)) {
      out.push({
        id: 'cni-config-invalid',
        severity: 'error',
        title: `${c.file} is not a CNI config the runtime can load`,
        evidence: [c.error ?? c.file],
        why:
          'containerd stops loading CNI configs at the first one it cannot parse (`cni config load failed: failed to load CNI config list file ...`) and the node stays NotReady. ' +
          `Fix the file or move it out of ${path.posix.dirname(c.file)}; cni-sweep will not guess which CNI owns it.`,
        fix: null,
      });
    }

    // The runtime reads one conf dir: a config in another (k3s's two) is never the one it uses.
    const valid = v.configs.filter((c) => c.config && path.posix.dirname(c.file) === v.confDir);
    const [first, ...rest] = valid;
    if (!first) return out;
    // Multus delegates to the other configs: with it first, none of them is stale (multus.ts checks its delegate).
    if (first.config!.multus) return out;
    // The runtime takes the first config whatever it is: no pod network first means pods on podman's bridge.
    if (!first.owners.length) {
      out.push({
        id: 'cni-config-not-pod-network',
        severity: 'warning',
        title: `the runtime uses ${first.file}, which is no pod network cni-sweep knows`,
        evidence: [
          `runtime uses: ${first.file} (${cniOf(first)}; first in lexical order)`,
          ...rest.map((c) => `not used: ${c.file} (${cniOf(c)})`),
        ],
        why:
          `containerd and CRI-O give every new pod the network of the first config in ${v.confDir}, whatever it is: with a podman or plain bridge config first, ` +
          "pods get its addresses (podman's: 10.88.0.0/16) instead of the cluster's pod network and cannot reach pods on other nodes. " +
          `Install the pod network's config so that it sorts first (e.g. 10-<cni>.conflist), or move this file out of ${v.confDir}.`,
        fix: null,
      });
      return out;
    }
    if (valid.length < 2) return out;
    const firstOwners = new Set(first.owners);
    const otherCni = rest.filter((c) => c.owners.length && !c.owners.some((o) => firstOwners.has(o)));
    const duplicates = rest.filter((c) => c.owners.some((o) => firstOwners.has(o)));
    // Configs no known pod network claims (podman's bridge) are another tool's: unused while a pod network's sorts first.
    const foreign = rest.filter((c) => !c.owners.length);
    const evidence = [
      `runtime uses: ${first.file} (${cniOf(first)}; first in lexical order)`,
      ...rest.map((c) => `${foreign.includes(c) ? 'not used' : 'stale'}: ${c.file} (${cniOf(c)})`),
    ];
    let fix: string[] | null = null;
    // `--cni X --only cni-config` removes every config of X: only right when X is not the CNI in use.
    if (otherCni.length) {
      const owners = otherCni.flatMap((c) => c.owners);
      // Flannel's state under Canal is Canal's live state: then only the stale config goes; a CNI that is gone goes whole.
      fix = owners.some((o) => v.inUse.has(o)) ? sweepFix(v, owners, ['cni-config']) : removalFix(v, owners);
    } else if (duplicates.length) fix = ['rm', '-f', '--', ...duplicates.map((c) => realPath(v, c.file))];
    out.push({
      id: 'cni-config-multiple',
      severity: otherCni.length || duplicates.length ? 'warning' : 'info',
      title: `${valid.length} CNI configs in ${v.confDir}; the runtime uses only ${first.file}`,
      evidence,
      why:
        otherCni.length || duplicates.length
          ? 'The runtime (containerd, CRI-O) loads only the first config in lexical order and ignores the rest. A stale config of another CNI means two CNIs fighting over one node: ' +
            "pods silently switch networks as soon as a config is added or removed, and the old CNI's leftovers keep routing and filtering traffic. `kubectl delete -f` of a CNI never removes its config."
          : "The runtime loads only the first config in lexical order, whatever it is; the others belong to no pod network cni-sweep knows (e.g. podman's bridge) and stay unused only as long as a pod network's config sorts before them: " +
            "remove the pod network's config without installing another one first, and new pods get their network from one of these.",
      fix,
    });
    return out;
  },
};
