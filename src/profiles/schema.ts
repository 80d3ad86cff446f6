// What a CNI owns on a node, as data. Adding a CNI is adding one of these.
import { z } from 'zod';

const NodePath = z
  .string()
  .regex(/^\/[^\0]*$/, 'must be an absolute path')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".."');

/** A rule shape an old release wrote without any comment or own chain. {network} and {subnet} are filled in from the node. */
const LegacyRule = z.object({
  table: z.string(),
  chain: z.string(),
  family: z.union([z.literal(4), z.literal(6)]),
  spec: z.string(),
});

/**
 * A process of the CNI's node agent. It matches on argv[0]'s base name or on the kernel's comm; with
 * `cmdline`, the whole command line (arguments joined by spaces) must also match that regex, for
 * names other software uses too (a site's own BIRD is not Calico's).
 */
const AgentProcess = z.strictObject({
  name: z.string().min(1),
  cmdline: z
    .string()
    .refine((r) => {
      try {
        new RegExp(r);
        return true;
      } catch {
        return false;
      }
    }, 'must be a valid regular expression')
    .optional(),
});

/** An overlay device of the CNI, by a regular expression over its name. */
const Overlay = z.strictObject({
  pattern: z.string().refine((r) => {
    try {
      new RegExp(r);
      return true;
    } catch {
      return false;
    }
  }, 'must be a valid regular expression'),
  kind: z.string().min(1),
  overhead: z.number().int().positive(),
});

export const ProfileSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]*$/),
  description: z.string(),
  config: z.strictObject({
    /** Plugin types that make a CNI config file this CNI's, whatever the file is called. */
    pluginTypes: z.array(z.string()).min(1),
    /** When set, the matching plugin's IPAM type must be one of these (Calico: calico-ipam; Canal: host-local). */
    ipamTypes: z.array(z.string()).optional(),
    /** Other files in the CNI conf dir that belong to it (e.g. a kubeconfig). */
    extraFiles: z.array(z.string()).default([]),
  }),
  /** Network names to assume when the CNI's config is already gone (Flannel: cbr0). */
  defaultNetworks: z.array(z.string()).default([]),
  state: z.strictObject({
    /** Files and directories owned outright. */
    paths: z.array(NodePath),
    /** Per-network paths; {network} is each network name from the CNI's configs. */
    networkPaths: z.array(NodePath).default([]),
    /** Flannel's subnet.env: the node's pod network and subnet, read before anything is removed. */
    subnetEnv: NodePath.optional(),
  }),
  interfaces: z.strictObject({
    names: z.array(z.string()),
    patterns: z.array(z.string()).default([]),
    /** Remove the host ends of veths attached to the CNI's bridges. */
    bridgePorts: z.boolean().default(true),
    /**
     * Devices a kernel module owns, which `ip link delete` cannot remove (tunl0 belongs to ipip):
     * their addresses are flushed and they are set down; unloading the module is the opt-in modules phase.
     */
    kernelOwned: z.array(z.string()).default([]),
  }),
  routes: z.strictObject({
    /**
     * host-gw routes are the CNI's: a route to another node's lease (as long as the node's own subnet,
     * inside the pod network, not the node's own subnet) via a gateway on a non-CNI device's connected
     * network, with one of hostGwProtocols, in the main table.
     */
    podNetworkRoutes: z.boolean().default(false),
    /** Protocols of host-gw routes as `ip -j route` shows them; "boot" is what netlink's RouteAdd gives (iproute2 prints no protocol for it). */
    hostGwProtocols: z.array(z.string()).default(['boot']),
    /**
     * Lease length when the node's subnet is unknown (subnet.env gone): Flannel's defaults, SubnetLen 24
     * and IPv6SubnetLen 64, which it shortens to network + 2 for networks narrower than /22 and /62.
     */
    defaultLeaseLen: z.strictObject({ v4: z.number().int().min(1).max(32), v6: z.number().int().min(1).max(128) }).optional(),
    /** The CNI's own routing protocols (Calico: bird from BIRD, 80 from felix). */
    protocols: z.array(z.string()).default([]),
    /**
     * Of those, the ones another daemon may write too (a site's own BIRD is `proto bird` as well): a unicast
     * route with one of them via the uplink is the CNI's only when it is as long as one of the CNI's own
     * blackholes on this node, or lies inside --pod-cidr.
     */
    sharedProtocols: z.array(z.string()).default([]),
    /** Prefix lengths a route with the CNI's protocols may have (Calico's IPAM block sizes); none: any. */
    prefixLens: z
      .strictObject({ v4: z.tuple([z.number().int(), z.number().int()]), v6: z.tuple([z.number().int(), z.number().int()]) })
      .optional(),
  }),
  firewall: z.strictObject({
    chainPrefixes: z.array(z.string()),
    /** Exact rule comments the CNI writes. */
    comments: z.array(z.string()).default([]),
    commentPrefixes: z.array(z.string()).default([]),
    legacyRules: z.array(LegacyRule).default([]),
    /** ipset names the CNI creates, by prefix; destroyed after the rules that use them are gone. */
    ipsetPrefixes: z.array(z.string()).default([]),
  }),
  nftables: z.array(z.strictObject({ family: z.enum(['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev']), name: z.string() })).default([]),
  modules: z.array(z.string()).default([]),
  /**
   * The CNI's node agent: while one of these runs in cni-sweep's network namespace (agents use the
   * host network), the CNI is live and never removed. `stop` says how to stop it for good.
   */
  agents: z
    .strictObject({ processes: z.array(AgentProcess).default([]), stop: z.string().default('') })
    .default({ processes: [], stop: '' }),
  /** Profiles this one is made of (Canal: Flannel networking plus Calico policy). */
  includes: z.array(z.string()).default([]),
  /**
   * Devices the CNI encapsulates pod traffic through, and the bytes each adds to a packet: the
   * doctor's MTU check. host-gw and BGP routing have none (pods then use the uplink as it is). A
   * kernel-owned device (interfaces.kernelOwned: tunl0) counts only while up and addressed.
   */
  overlays: z.array(Overlay).default([]),
  /** Where the overlay devices' MTU comes from: the doctor's advice for a wrong one. */
  mtuSource: z.string().default(''),
  /**
   * Whether the CNI enforces NetworkPolicy ('unknown': the doctor does not judge); a composite
   * enforces when one of its parts does. `advice`: what to do when it does not.
   */
  networkPolicy: z
    .strictObject({ enforces: z.enum(['yes', 'no', 'unknown']).default('unknown'), advice: z.string().default('') })
    .default({ enforces: 'unknown', advice: '' }),
});

export type Profile = z.infer<typeof ProfileSchema>;
export type ProfileInput = z.input<typeof ProfileSchema>;
export type LegacyRuleShape = z.infer<typeof LegacyRule>;
export type AgentProcessShape = z.infer<typeof AgentProcess>;
