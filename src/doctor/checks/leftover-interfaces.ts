// Interfaces of a CNI that is not in use (no config of it, or only one the runtime ignores):
// cni0 and flannel.1, cali* veths, vxlan.calico, and tunl0 when it is still up or addressed
// (the ipip module owns tunl0 and it exists wherever the module is loaded).
import { addrsOf, notInUse, plural } from '../helpers.js';
import { cniLinks, removalFix } from '../owned.js';
import type { Check, Finding } from '../types.js';

/** For a profile without its own sentence (leftoverWhy.interfaces). */
const GENERIC = "They keep addresses and routes of a network that no longer exists on this node and conflict with the next CNI's devices.";

export const leftoverInterfaces: Check = {
  name: 'leftover-interfaces',
  run(v) {
    const out: Finding[] = [];
    const reported = new Set<string>();
    const byName = new Map(v.links.map((l) => [l.ifname, l]));
    for (const { profile, facts } of notInUse(v)) {
      const links = cniLinks(v, facts).filter((l) => !reported.has(l.name));
      if (!links.length) continue;
      for (const l of links) reported.add(l.name);
      const isVeth = (name: string) => byName.get(name)?.linkinfo?.info_kind === 'veth';
      const devices = links.filter((l) => !isVeth(l.name));
      const veths = links.filter((l) => isVeth(l.name));
      const evidence: string[] = [];
      const listed = new Set<string>();
      for (const l of devices) {
        const kind = byName.get(l.name)?.linkinfo?.info_kind;
        const addrs = addrsOf(v, l.name);
        const ports = veths.filter((p) => byName.get(p.name)?.master === l.name).map((p) => p.name);
        for (const p of ports) listed.add(p);
        evidence.push(
          `${l.name}${kind ? ` (${kind})` : ''}: ${l.up ? 'up' : 'down'}${addrs.length ? `, ${addrs.join(' ')}` : ''}${ports.length ? `, ${plural(ports.length, 'pod veth')}: ${ports.join(' ')}` : ''}`,
        );
      }
      const loose = veths.filter((p) => !listed.has(p.name));
      if (loose.length) evidence.push(`${plural(loose.length, 'pod veth')}: ${loose.map((p) => p.name).join(' ')}`);
      const shown = [...devices.map((l) => l.name), ...(veths.length ? [plural(veths.length, 'pod veth')] : [])];
      out.push({
        id: 'leftover-interfaces',
        severity: 'warning',
        title: `${profile.name}'s interfaces remain while ${profile.name} is not in use: ${shown.join(', ')}`,
        evidence,
        why: `${profile.leftoverWhy.interfaces || GENERIC} No CNI config of ${profile.name} is in use, so nothing on this node needs them.`,
        fix: removalFix(v, [profile.name]),
      });
    }
    return out;
  },
};
