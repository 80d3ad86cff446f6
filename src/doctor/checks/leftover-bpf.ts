// BPF state of a CNI not in use (profiles' `bpf`): its programs still attached to host devices by tc
// (and the clsact qdiscs only they use) or XDP, and its pins below the bpffs mount; what the bpf
// phase of a run removes, as it would plan it (planned.ts). Devices of the CNI itself are left out:
// what is attached to them goes with them (leftover-interfaces).
import { notInUse, plural } from '../helpers.js';
import { removalFix } from '../owned.js';
import type { Check, Finding } from '../types.js';

/** For a profile without its own sentence (leftoverWhy.bpf). */
const GENERIC =
  'Its programs stay attached to host devices and keep acting on every packet through them, for a network that no longer exists on this node.';

export const leftoverBpf: Check = {
  name: 'leftover-bpf',
  run(v) {
    const out: Finding[] = [];
    const reported = new Set<string>();
    for (const { profile } of notInUse(v)) {
      const evidence = (v.planned?.get(profile.name)?.bpf ?? []).filter((e) => !reported.has(e));
      if (!evidence.length) continue;
      for (const e of evidence) reported.add(e);
      const attached = evidence.filter((e) => /^BPF attachment: (tc filter|XDP) /.test(e)).length;
      const pins = evidence.filter((e) => e.startsWith('BPF pin:')).length;
      const parts = [...(attached ? [plural(attached, 'attached program')] : []), ...(pins ? [plural(pins, 'bpffs pin')] : [])];
      out.push({
        id: 'leftover-bpf',
        severity: 'warning',
        title: `${profile.name}'s BPF state remains while ${profile.name} is not in use: ${parts.join(', ') || 'clsact qdiscs'}`,
        evidence,
        why:
          `${profile.leftoverWhy.bpf || GENERIC} cni-sweep detaches only programs by ${profile.name}'s names and removes a clsact qdisc only when all its filters are ${profile.name}'s; ` +
          'pinned objects live in the kernel and cannot be backed up.',
        fix: removalFix(v, [profile.name]),
      });
    }
    return out;
  },
};
