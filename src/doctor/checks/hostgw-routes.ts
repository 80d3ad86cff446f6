// host-gw sends another node's pod subnet straight to that node's address, which only works while
// the node is on the same L2 segment: the gateway must be covered by a connected (no-gateway)
// route on the same device. The kernel drops such routes when the covering address goes, so what
// survives is an onlink route or one whose segment was re-addressed around it.
import { connectedByDev, gatewayConnected, notHostGw, routeDeleteLine } from '../../ownership.js';
import { routeText } from '../helpers.js';
import { knownCniDevices } from '../owned.js';
import type { Check, Finding } from '../types.js';

export const hostgwRoutes: Check = {
  name: 'hostgw-routes',
  run(v) {
    const out: Finding[] = [];
    const seen = new Set<string>();
    // Routes through CNI devices (flannel.1 onlink) are the overlay's, not host-gw; the same shapes `run` owns.
    const cni = knownCniDevices(v);
    const connectedRoutes = connectedByDev(v.routes);
    for (const p of v.profiles.filter((x) => x.routes.podNetworkRoutes && v.inUse.has(x.name))) {
      const facts = v.facts.get(p.name)!;
      for (const r of v.routes) {
        if (notHostGw(r, facts, cni) !== null || r.dst === 'default') continue;
        const connected = gatewayConnected(r, v.routes, cni, connectedRoutes);
        const key = routeText(r);
        if (connected || seen.has(key)) continue;
        seen.add(key);
        const onDev = v.routes
          .filter((c) => c.family === r.family && c.dev === r.dev && !c.gateway && c.dst !== 'default' && !c.dst.startsWith('fe80:'))
          .map((c) => c.dst);
        out.push({
          id: 'hostgw-gateway-unreachable',
          severity: 'error',
          title: `Pod subnet ${r.dst} is routed via ${r.gateway}, which is not on ${r.dev}'s segment`,
          evidence: [
            `route: ${key}`,
            `connected routes on ${r.dev}: ${onDev.join(', ') || 'none'}; none covers ${r.gateway}`,
            `pod network: ${facts.podNetworks.map((n) => n.text).join(', ')}`,
          ],
          why:
            `Pods in ${r.dst} are unreachable from this node: host-gw needs every node on one L2 segment, and ${r.gateway} cannot be reached without a router, which knows nothing of pod subnets. ` +
            'Either that node moved (then the route is stale) or the nodes span subnets (then use the vxlan backend).',
          fix: ['ip', ...routeDeleteLine(r).split(' ')],
        });
      }
    }
    return out;
  },
};
