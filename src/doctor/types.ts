// What a doctor check sees (a read-only view of the node, gathered once) and what it says.
import type { Backend, ProfileFacts } from '../inspect.js';
import type { MultusState } from './checks/multus.js';
import type { PlannedLeftovers } from './planned.js';
import type { CniConfig } from '../parse/conflist.js';
import type { IptDump } from '../parse/iptables.js';
import type { Link } from '../parse/iproute.js';
import type { NftTable } from '../parse/nft.js';
import type { SubnetEnv } from '../parse/subnetenv.js';
import type { FamilyRoute } from '../ownership.js';
import type { Profile } from '../profiles/schema.js';
import type { Prefix } from '../util/cidr.js';

/** error: pods fail or traffic is lost now; warning: stale state that bites later; info: worth knowing, still healthy. */
export type Severity = 'error' | 'warning' | 'info';

export interface Finding {
  /** Stable kind, for scripts: "cni-plugin-missing", "ipam-stale" ... */
  id: string;
  severity: Severity;
  title: string;
  /** What was seen: file and line, interface, route or rule. */
  evidence: string[];
  /** The symptom users see, and why this state causes it. */
  why: string;
  /** The exact command that fixes it (argv); null when no single command does. */
  fix: string[] | null;
  /** What to run once fix has done its work (argv): the uncordon after a drain. */
  then?: string[];
  /** CNIs whose whole removal fixes it too: then doctor's recommended command stands for its fix. */
  removedWith?: string[];
}

export interface Check {
  name: string;
  run(view: NodeView): Finding[];
}

export interface ConfigEntry {
  /** Node path, e.g. /etc/cni/net.d/10-flannel.conflist. */
  file: string;
  /** Null when the file is not a CNI config the runtime can load (see error). */
  config: CniConfig | null;
  /** The parsed JSON, for what CniConfig leaves out (IPAM ranges, flannel's delegate). */
  json: unknown;
  error?: string;
  /** Known CNIs whose config this is, by content. */
  owners: string[];
}

export interface IpamAllocation {
  ip: Prefix;
  /** Node path of the allocation file. */
  file: string;
  containerId: string;
  ifname?: string;
}

export interface IpamNetwork {
  network: string;
  dir: string;
  allocations: IpamAllocation[];
}

export interface InterfaceAddr {
  family: string;
  local: string;
  prefixlen: number;
}

export interface PodView {
  id: string;
  name?: string;
  namespace?: string;
  ips: string[];
  netns?: string;
  /** Interface names inside its network namespace. */
  interfaces: string[] | null;
}

export interface NodeView {
  root: string;
  node: string;
  /** Set when a kubeconfig was given: the fix commands that call kubectl use it. */
  kubeconfig?: string;
  /** --pod-cidr, as given (network form). */
  podCidrs: Prefix[];
  /** --profile files (absolute), for the fix commands. */
  profileFiles?: string[];
  /** The CNIs diagnosed (--cni, default every known one). */
  profiles: Profile[];
  allProfiles: Profile[];
  /** CNI configs in the order the runtime considers them (lexical, as libcni sorts). */
  configs: ConfigEntry[];
  /** The conf dir the runtime reads (the distribution's first): its first loadable config is the one pods use. */
  confDir: string;
  /** CNIs of the config the runtime loads (and the parts of a composite such as Canal). */
  inUse: Set<string>;
  /** What the phases would know about each known CNI, so counts match what a run removes. */
  facts: Map<string, ProfileFacts>;
  /** Each known CNI's state paths (dirs, IPAM, result caches) that exist: what its cni-state phase removes. */
  statePaths: Map<string, string[]>;
  /** Entries of /opt/cni/bin; null when the directory is missing. */
  cniBins: Set<string> | null;
  /** The dir cniBins lists (the distribution's; /opt/cni/bin by default). */
  cniBinDir?: string;
  subnetEnv: { path: string; env: SubnetEnv | null; error?: string };
  links: Link[];
  addrs: Map<string, InterfaceAddr[]>;
  routes: FamilyRoute[];
  iptables: Array<{ backend: Backend; dump: IptDump }>;
  nftTables: NftTable[];
  /** Names `ipset list -n` gives; null when ipset is not installed (or no known CNI uses ipsets). */
  ipsets: string[] | null;
  ipam: IpamNetwork[];
  runtime: {
    /** Sandbox IDs `crictl pods -q` lists; null when not known. */
    sandboxes: string[] | null;
    /** Why no sandbox can be running (runtime stopped, or crictl failed). */
    down?: string;
    /**
     * READY pod sandboxes on a pod network (host-network ones left out), with what their network
     * namespace holds (null when it cannot be looked into); null when crictl cannot tell.
     */
    pods: PodView[] | null;
  };
  kube: {
    /** Node spec.podCIDRs; null when not read. */
    nodePodCidrs: Prefix[] | null;
    networkPolicies: Array<{ namespace: string; name: string }> | null;
  };
  /** What could not be read, so a clean report is not mistaken for a full one. */
  notChecked: string[];
  /** What the Multus configs name (kubeconfigs, the daemon socket) and whether Multus runs: checks/multus.ts. */
  multus?: MultusState;
  /** Per diagnosed CNI neither in use nor live: the policy routing and BPF state a run would remove (planned.ts). */
  planned?: Map<string, PlannedLeftovers>;
}
