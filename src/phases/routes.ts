// Routes that outlive the CNI's devices: host-gw routes to other nodes' pod subnets via the uplink.
import { listLinks, listRoutes } from '../inspect.js';
import { dyingDevices, ownedLinks, ownedRoutes, routeDeleteLine } from '../ownership.js';
import type { Phase } from './types.js';
import { nothing } from './types.js';

export const routes: Phase = {
  name: 'routes',
  summary: "delete the CNI's remaining routes (host-gw routes into the pod network)",
  cleanup: true,
  async plan(ctx) {
    const links = ownedLinks(await listLinks(ctx.host, ctx.gaps), ctx.snapshot.facts);
    const owned = new Set(links.map((l) => l.name));
    // When the interfaces phase runs, routes through those devices disappear with them.
    const dying = ctx.selected.has('interfaces') ? dyingDevices(links) : new Set<string>();
    const mine = ownedRoutes(await listRoutes(ctx.host, ctx.gaps), ctx.snapshot.facts, owned, dying);
    if (!mine.length) return nothing();
    const lines = mine.map(routeDeleteLine);
    return {
      steps: [
        {
          argv: ['ip', '-batch', '-'],
          stdin: lines.join('\n') + '\n',
          removes: { kind: 'route', items: lines.map((l) => l.replace(/^route delete /, '')) },
        },
      ],
      notes: [],
    };
  },
};
