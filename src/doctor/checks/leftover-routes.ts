// Routes of a CNI not in use that do not go away with its devices: Calico's BIRD (proto bird) and
// felix (proto 80) routes and IPAM blackholes, Flannel's host-gw routes into its old pod network.
// The same selection `run --only routes` deletes (ownership.ownedRoutes).
import { notInUse, plural, routeText } from '../helpers.js';
import { cniRoutes, removalFix } from '../owned.js';
import type { Check, Finding } from '../types.js';

/** For a profile without its own sentence (leftoverWhy.routes). */
const GENERIC = 'They route addresses of a network that no longer exists on this node.';

export const leftoverRoutes: Check = {
  name: 'leftover-routes',
  run(v) {
    const out: Finding[] = [];
    const reported = new Set<string>();
    for (const { profile, facts } of notInUse(v)) {
      // Routes through its devices are reported with the devices and go with them.
      const routes = cniRoutes(v, facts).filter((r) => !reported.has(routeText(r)));
      if (!routes.length) continue;
      for (const r of routes) reported.add(routeText(r));
      out.push({
        id: 'leftover-routes',
        severity: 'warning',
        title: `${plural(routes.length, 'route')} of ${profile.name} ${routes.length === 1 ? 'remains' : 'remain'} while ${profile.name} is not in use`,
        evidence: routes.map((r) => `route: ${routeText(r)}`),
        why: profile.leftoverWhy.routes || GENERIC,
        fix: removalFix(v, [profile.name]),
      });
    }
    return out;
  },
};
