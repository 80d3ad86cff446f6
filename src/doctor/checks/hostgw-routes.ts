// host-gw sends another node's pod subnet straight to that node's address, which only works while
// the node is on the same L2 segment: the gateway must be covered by a connected (no-gateway)
// route on the same device. The kernel drops such routes when the covering address goes, so what
// survives is an onlink route or one whose segment was re-addressed around it.
import { ownedLinks, routeDeleteLine } from '../../ownership.js';
import { contains, parsePrefix, routeDst } from '../../util/cidr.js';
import { routeText } from '../helpers.js';
import type { Check, Finding } from '../types.js';

export const hostgwRoutes: Check = {
  name: 'hostgw-routes',
  run(v) {
    const out: Finding[] = [];
    const seen = new Set<string>();
    for (const p of v.profiles.filter((x) => x.routes.podNetworkRoutes && v.inUse.has(x.name))) {
      const facts = v.facts.get(p.name)!;
      // Routes through the CNI's own devices (flannel.1 onlink) are the overlay's, not host-gw.
      const own = new Set(ownedLinks(v.links, [facts]).map((l) => l.name));
      for (const r of v.routes) {
        const dst = routeDst(r.dst, r.family);
        const gw = r.gateway ? parsePrefix(r.gateway) : null;
        if (!dst || !gw || !r.dev || own.has(r.dev) || r.dst === 'default' || !facts.podNetworks.some((n) => contains(n, dst))) continue;
        const connected = v.routes.some((c) => {
          const cdst = routeDst(c.dst, c.family);
          return c.dev === r.dev && !c.gateway && (c.type ?? 'unicast') === 'unicast' && cdst !== null && contains(cdst, gw);
        });
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
