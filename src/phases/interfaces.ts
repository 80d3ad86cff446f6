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
    if (!owned.length) return nothing();
    const ordered = [...owned.filter((l) => l.isPort), ...owned.filter((l) => !l.isPort)];
    return {
      steps: [
        {
          argv: ['ip', '-batch', '-'],
          stdin: ordered.map((l) => `link delete ${l.name}`).join('\n') + '\n',
          removes: { kind: 'interface', items: ordered.map((l) => l.name) },
        },
      ],
      notes: [],
    };
  },
};
