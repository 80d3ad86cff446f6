// Routes that outlive the CNI's devices, by the exact shapes the CNI writes (ownership.classifyRoutes):
// host-gw routes to other nodes' leases via the uplink, and routes with the CNI's own protocols.
// Routes that look like the CNI's but are not in its shapes stay, each with a note saying why.
import { LINKS_AND_ADDRS, listLinks, listRoutes, MAIN_ROUTES } from '../inspect.js';
import { classifyRoutes, cniDevices, dyingDevices, ownedLinks, routeDeleteLine, routeLabel } from '../ownership.js';
import { knownProfiles } from '../profiles/index.js';
import type { Phase } from './types.js';
import { nothing } from './types.js';
import { planPolicyRouting } from './policy-routing.js';
import { plural } from '../util/plural.js';

/** Notes past this many kept routes are summed up in one line. */
const MAX_NOTES = 10;

export const routes: Phase = {
  name: 'routes',
  summary:
    "delete the CNI's remaining routes (host-gw routes to other nodes' leases, its routing protocols' routes), its ip rules, routing tables and rt_tables entries",
  cleanup: true,
  async plan(ctx) {
    const links = await listLinks(ctx.host, ctx.gaps);
    const mineLinks = ownedLinks(links, ctx.snapshot.facts);
    const owned = new Set(mineLinks.map((l) => l.name));
    // When the interfaces phase runs, routes through those devices disappear with them.
    const dying = ctx.selected.has('interfaces') ? dyingDevices(mineLinks) : new Set<string>();
    const known = [...knownProfiles(), ...ctx.profiles];
    const cni = cniDevices(links, known, ctx.snapshot.configs);
    for (const d of owned) cni.add(d);
    const { owned: mine, kept } = classifyRoutes(await listRoutes(ctx.host, ctx.gaps), {
      facts: ctx.snapshot.facts,
      ownedDevices: owned,
      dyingDevices: dying,
      cniDevices: cni,
    });
    const notes = kept.slice(0, MAX_NOTES).map((k) => `kept route ${routeLabel(k.route)}: ${k.why}`);
    const more = kept.length - MAX_NOTES;
    if (more > 0)
      notes.push(
        `kept ${plural(more, 'more route', 'more routes')} in the pod network that ${more === 1 ? 'is' : 'are'} not in the CNI's shapes`,
      );
    // ip rules, the CNI's own tables and its rt_tables lines (profile routes.rules, tables, rtTables).
    const policy = await planPolicyRouting(ctx);
    notes.push(...policy.notes);
    if (!mine.length) return policy.steps.length ? { steps: policy.steps, notes } : nothing(...notes);
    const lines = mine.map(routeDeleteLine);
    return {
      steps: [
        {
          argv: ['ip', '-batch', '-'],
          touches: ['routes'],
          stdin: lines.join('\n') + '\n',
          removes: { kind: 'route', items: lines.map((l) => l.replace(/^route delete /, '')) },
        },
        ...policy.steps,
      ],
      notes,
    };
  },
  // After the interfaces phase deleted links, both listings are read again: together, not one
  // process after another as plan() asks for them.
  async reads() {
    return [LINKS_AND_ADDRS, ...MAIN_ROUTES];
  },
};
