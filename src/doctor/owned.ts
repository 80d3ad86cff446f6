// What of a CNI is on the node, by the same ownership rules the phases use: what the leftover
// checks report, and what the one command that removes a departed CNI must cover.
import type { Backend, ProfileFacts } from '../inspect.js';
import {
  cniDevices,
  firewallDeletions,
  ownedLinks,
  ownedRoutes,
  type FamilyRoute,
  type OwnedLink,
  type TableDeletions,
} from '../ownership.js';
import type { IptDump } from '../parse/iptables.js';
import { addrsOf, runFix } from './helpers.js';
import type { NodeView } from './types.js';

/** Its interfaces, less a bridge a config still names (containerd's own config uses cni0 too) and a tunl0 out of service. */
export function cniLinks(v: NodeView, facts: ProfileFacts): OwnedLink[] {
  const configBridges = new Set(v.configs.flatMap((c) => c.config?.bridges ?? []));
  const master = new Map(v.links.map((l) => [l.ifname, l.master]));
  return ownedLinks(v.links, [facts]).filter((l) => {
    if (configBridges.has(l.name) || (l.isPort && configBridges.has(master.get(l.name) ?? ''))) return false;
    // tunl0 down and without an address is what a cleanup leaves: only its module can remove it.
    return !l.kernelOwned || l.up || addrsOf(v, l.name).length > 0;
  });
}

/** Its routes that outlive its devices (routes through them go with them). */
export function cniRoutes(v: NodeView, facts: ProfileFacts): FamilyRoute[] {
  const devices = new Set(ownedLinks(v.links, [facts]).map((l) => l.name));
  return ownedRoutes(v.routes, { facts: [facts], ownedDevices: devices, dyingDevices: devices, cniDevices: knownCniDevices(v) });
}

/** Devices of every known CNI on the node: never an uplink. */
export function knownCniDevices(v: NodeView): Set<string> {
  return cniDevices(
    v.links,
    v.allProfiles,
    v.configs.flatMap((c) => (c.config ? [c.config] : [])),
  );
}

/** Its rules per iptables backend (every config stays when a CNI without one is cleaned), and its nftables tables. */
export function cniFirewall(
  v: NodeView,
  facts: ProfileFacts,
): { iptables: Array<{ backend: Backend; dump: IptDump; tables: TableDeletions[] }>; nft: Array<{ family: string; name: string }> } {
  const remainingConfigs = v.configs.flatMap((c) => (c.config && !facts.configs.includes(c.config) ? [c.config] : []));
  return {
    iptables: v.iptables
      .map(({ backend, dump }) => ({
        backend,
        dump,
        tables: firewallDeletions(dump, { facts: [facts], remainingConfigs, family: backend.family }),
      }))
      .filter((x) => x.tables.length),
    nft: facts.profile.nftables.filter((t) => v.nftTables.some((x) => x.family === t.family && x.name === t.name)),
  };
}

/**
 * The one command that removes departed CNIs whole: a whole run, so the node is drained and its
 * services stopped first, and one run, because its snapshot is taken before anything goes:
 * separate runs lose subnet.env with cni-state, and with it the pod network that identifies
 * host-gw routes and old untagged rules. doctor merges these into one recommended command.
 */
export function removalFix(v: NodeView, cnis: string[]): string[] {
  return runFix(v, cnis);
}
