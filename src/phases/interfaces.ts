// Deletes the CNI's links in one `ip -batch`. Bridge ports go first: deleting a veth's host end
// also destroys its peer in the pod namespace.
import { listLinks } from '../inspect.js';
import { ownedLinks } from '../ownership.js';
import type { Phase } from './types.js';
import { nothing } from './types.js';

export const interfaces: Phase = {
  name: 'interfaces',
  summary: 'delete the CNI\'s interfaces (bridge, overlay devices, pod veths)',
  cleanup: true,
  async plan(ctx) {
    const owned = ownedLinks(await listLinks(ctx.host, ctx.gaps), ctx.snapshot.facts);
    const deletable = owned.filter((l) => !l.kernelOwned);
    const ordered = [...deletable.filter((l) => l.isPort), ...deletable.filter((l) => !l.isPort)];
    const lines = ordered.map((l) => `link delete ${l.name}`);
    const items = ordered.map((l) => l.name);
    const notes: string[] = [];
    for (const k of owned.filter((l) => l.kernelOwned)) {
      const addrs = await ctx.host.query(['ip', '-j', 'addr', 'show', 'dev', k.name]);
      const has = addrs?.code === 0 && /"local"/.test(addrs.stdout);
      if (!has && !k.up) continue;
      // `ip link delete tunl0` cannot remove it: the ipip module owns it. Take it out of service instead.
      if (has) lines.push(`address flush dev ${k.name}`);
      if (k.up) lines.push(`link set ${k.name} down`);
      items.push(`${k.name} (addresses flushed, set down; its module goes only in the opt-in modules phase)`);
    }
    if (!lines.length) return nothing(...notes);
    return {
      steps: [{ argv: ['ip', '-batch', '-'], stdin: lines.join('\n') + '\n', removes: { kind: 'interface', items } }],
      notes,
    };
  },
};
