// Which CNIs have state on this node, and the evidence, so `plan` can say what it found and why.
import type { Host } from '../host/host.js';
import {
  CNI_CONF_DIR,
  Gaps,
  listLinks,
  nftTablesPresent,
  ownedNftTables,
  ownsConfig,
  readCniConfigs,
  saveAllIptables,
} from '../inspect.js';
import { protectedName } from './protected.js';
import type { Profile } from './schema.js';

export interface Detection {
  profile: Profile;
  evidence: string[];
}

/**
 * `claimed`: chain prefixes and nftables tables a distribution adds to a profile (k3s's embedded
 * kube-router netpol goes with its Flannel): they are no sign of another CNI that uses the same names.
 */
export async function detect(
  host: Host,
  profiles: Profile[],
  gaps: Gaps,
  confDirs?: string[],
  claimed: { chainPrefixes: string[]; nftables: Array<{ family: string; name: string }> } = { chainPrefixes: [], nftables: [] },
): Promise<Detection[]> {
  // The listings are independent: read them at the same time.
  const [configs, links, nft, dumps] = await Promise.all([
    readCniConfigs(host, confDirs),
    listLinks(host, gaps),
    nftTablesPresent(host, ownedNftTables(profiles), gaps),
    saveAllIptables(host, gaps),
  ]);
  const chains: Array<{ name: string; label: string }> = [];
  for (const { backend, dump } of dumps) {
    for (const t of dump?.tables ?? []) for (const c of t.chains) chains.push({ name: c.name, label: `${backend.id} ${t.name} ${c.name}` });
  }
  const out: Detection[] = [];
  for (const profile of profiles) {
    const evidence: string[] = [];
    for (const c of configs) if (ownsConfig(profile, c)) evidence.push(`config ${c.file}`);
    for (const p of profile.state.paths) if ((await host.entryType(p)) !== null) evidence.push(`state ${p}`);
    // Configs it set aside (*.cilium_bak) are its leftovers too: removing it is what puts them back.
    for (const suffix of profile.config.renamedSuffixes)
      for (const dir of confDirs ?? [CNI_CONF_DIR])
        for (const e of (await host.readDir(dir)) ?? [])
          if (e.type === 'file' && e.name.endsWith(suffix) && e.name.length > suffix.length)
            evidence.push(`set-aside config ${dir}/${e.name}`);
    const patterns = profile.interfaces.patterns.map((p) => new RegExp(p));
    for (const l of links) {
      // tunl0 exists wherever the ipip module is loaded: only an active one is evidence.
      const active = profile.interfaces.kernelOwned.includes(l.ifname) && (l.flags ?? []).includes('UP');
      if (active || profile.interfaces.names.includes(l.ifname) || patterns.some((r) => r.test(l.ifname)))
        evidence.push(`interface ${l.ifname}`);
    }
    for (const { name, label } of chains) {
      if (
        profile.firewall.chainPrefixes.some((p) => name.startsWith(p)) &&
        !protectedName(name) &&
        !claimed.chainPrefixes.some((p) => name.startsWith(p))
      )
        evidence.push(`chain ${label}`);
    }
    for (const t of profile.nftables) {
      if (claimed.nftables.some((x) => x.family === t.family && x.name === t.name)) continue;
      if (nft?.some((x) => x.family === t.family && x.name === t.name)) evidence.push(`nftables table ${t.family} ${t.name}`);
    }
    if (evidence.length) out.push({ profile, evidence });
  }
  // A composite (Canal) is only told apart from its parts by its config. With that config present,
  // its parts' state without a config of their own is the composite's; without it, the parts stand alone.
  const byConfig = (d: Detection) => d.evidence.some((e) => e.startsWith('config '));
  const composites = out.filter((d) => d.profile.includes.length && byConfig(d));
  const covered = new Set(composites.flatMap((d) => d.profile.includes));
  return out.filter((d) => (d.profile.includes.length ? byConfig(d) : byConfig(d) || !covered.has(d.profile.name)));
}
