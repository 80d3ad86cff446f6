// What a CNI owns on a node, as data. Adding a CNI is adding one of these.
import { z } from 'zod';
import { prefixProblem } from './protected.js';

const NodePath = z
  .string()
  .regex(/^\/[^\0]*$/, 'must be an absolute path')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".."');

/** A JavaScript regular expression, checked when the profile is read. */
const Regex = z.string().refine((r) => {
  try {
    new RegExp(r);
    return true;
  } catch {
    return false;
  }
}, 'must be a valid regular expression');

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

/**
 * A BPF program's name as the kernel keeps it (bpf_prog_info.name): at most 15 characters (BPF_OBJ_NAME_LEN - 1),
 * letters, digits, '_' and '.' (what the kernel accepts in bpf_obj_name_cpy).
 */
const BpfProgramName = z.string().regex(/^[A-Za-z0-9_.]{1,15}$/, 'must be a kernel BPF program name (1-15 of A-Z a-z 0-9 _ .)');

/**
 * A pin below the bpffs mount ("tc/globals/cilium_*", "cilium"): relative, '/'-separated, each
 * component a name or a glob with * and ? that stays inside that one component.
 */
const BpfPin = z
  .string()
  .regex(/^[^/\0]+(\/[^/\0]+)*$/, 'must be a path relative to the bpffs mount, without a leading or trailing "/"')
  .refine(
    (p) => !p.split('/').some((c) => c === '.' || c === '..' || /^\*+$/.test(c)),
    'must not contain ".", ".." or a bare "*" component',
  );

/** What the kernel takes as a device name: 1-15 bytes, none of them "/", ":" or white space. */
const IFNAME = /^[^/:\s]{1,15}$/;

const compiles = (r: string) => {
  try {
    new RegExp(r);
    return true;
  } catch {
    return false;
  }
};

/**
 * CNI reference plugins a site or another tool (podman's `bridge`) uses too: a profile that claims
 * configs by one of these types must qualify it with the network or bridge names the CNI writes.
 */
export const GENERIC_PLUGIN_TYPES = [
  'bridge',
  'macvlan',
  'ipvlan',
  'ptp',
  'host-device',
  'vlan',
  'dummy',
  'tap',
  'loopback',
  'portmap',
  'bandwidth',
  'firewall',
  'tuning',
  'sbr',
  'vrf',
];

/** Names a config carries that make a generic plugin type the CNI's; every list given must match. */
const PluginQualifier = z
  .strictObject({
    /** The config's network name (`name`) is one of these. */
    networks: z.array(z.string().min(1)).min(1).optional(),
    /** The plugin's `bridge` (the bridge plugin's default: cni0) is one of these. */
    bridges: z.array(z.string().min(1)).min(1).optional(),
  })
  .refine((q) => q.networks || q.bridges, 'must name networks or bridges');

/**
 * An ip rule the CNI adds: it is the CNI's when every field given matches (`ip -j rule show`'s
 * priority, and the table it looks up by number). Removed by its exact selector.
 */
const IpRule = z
  .strictObject({
    priority: z.number().int().min(0).max(4294967295).optional(),
    table: z.number().int().min(1).max(4294967295).optional(),
    /**
     * The CNI's rule selects by a firewall mark and nothing else (Antrea's Egress: `fwmark
     * <id>/0xff lookup N`): a rule to the same table with another selector (a site's `from
     * 192.168.7.0/24 lookup 102`) is not the CNI's.
     */
    fwmark: z.boolean().optional(),
  })
  .refine((r) => r.priority !== undefined || r.table !== undefined, 'must give priority or table');

/** The reserved tables (unspec, default, main, local) are never a CNI's. */
const RESERVED_TABLES = [0, 253, 254, 255];

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

const ProfileFields = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]*$/),
  description: z.string(),
  config: z.strictObject({
    /** Plugin types that make a CNI config file this CNI's, whatever the file is called. */
    pluginTypes: z.array(z.string()).min(1),
    /** When set, the matching plugin's IPAM type must be one of these (Calico: calico-ipam; Canal: host-local). */
    ipamTypes: z.array(z.string()).optional(),
    /** Other files in the CNI conf dir that belong to it (e.g. a kubeconfig). */
    extraFiles: z.array(z.string()).default([]),
    /** Directories in the CNI conf dir that belong to it (Multus's multus.d/), removed whole. */
    confSubdirs: z
      .array(
        z
          .string()
          .regex(/^[^/\0]+$/, 'must be a directory name, without "/"')
          .refine((d) => d !== '.' && d !== '..', 'must not be "." or ".."'),
      )
      .default([]),
    /**
     * Suffixes this CNI appends to other configs in the conf dir to set them aside (Cilium's
     * cni.exclusive: `.cilium_bak`). Removing this CNI puts them back under their names, unless the
     * config inside is a removed CNI's (then it goes, backed up) or the name is taken (both stay).
     */
    renamedSuffixes: z.array(z.string().regex(/^\.[A-Za-z0-9_.-]+$/, 'must be a file name suffix starting with "."')).default([]),
    /**
     * Per plugin type, the names that make a config with that type the CNI's (kube-router's is the
     * generic `bridge` plugin: only with its bridge kube-bridge and its network name). A type in
     * GENERIC_PLUGIN_TYPES must have one.
     */
    pluginQualifiers: z.record(z.string(), PluginQualifier).default({}),
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
    /**
     * File systems the CNI mounts inside its state paths (Cilium's cgroup2 at /run/cilium/cgroupv2):
     * unmounted, when really a mount point, before the path holding them is removed.
     */
    mounts: z.array(NodePath).default([]),
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
    /**
     * Open vSwitch datapaths (Weave's `datapath`): when a link of this name is an OVS datapath,
     * `ip link delete` answers "Operation not supported"; it goes with `ovs-dpctl del-dp`, which
     * detaches its ports and takes its internal and tunnel ports along.
     */
    ovsDatapaths: z.array(z.string().regex(IFNAME, 'must be an interface name (1-15 characters, no "/", ":" or blanks)')).default([]),
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
    /** ip rules the CNI adds (IPv4 and IPv6), deleted by their exact selector. */
    rules: z.array(IpRule).default([]),
    /** Routing tables wholly the CNI's (by number): their routes are flushed (listed in the backup first). */
    tables: z
      .array(
        z
          .number()
          .int()
          .min(1)
          .max(4294967295)
          .refine((t) => !RESERVED_TABLES.includes(t), 'must not be a reserved table (0, 253 default, 254 main, 255 local)'),
      )
      .default([]),
    /**
     * Lines the CNI appends to iproute2's rt_tables (`77 kube-router`): removed from the file (kept
     * in the backup), only when both number and name match; the rest of the file stays byte for byte.
     */
    rtTables: z
      .array(z.strictObject({ table: z.number().int().min(1).max(4294967295), name: z.string().regex(/^[A-Za-z0-9_.-]+$/) }))
      .default([]),
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
    .strictObject({
      processes: z.array(AgentProcess).default([]),
      /** Pidfiles the agent writes: one naming a pid that runs in cni-sweep's network namespace means live. */
      pidfiles: z.array(NodePath).default([]),
      stop: z.string().default(''),
    })
    .default({ processes: [], pidfiles: [], stop: '' }),
  /**
   * BPF state the CNI leaves on host devices and in the bpffs: tc filters and XDP programs whose
   * program name is one of programNames or matches one of programPatterns, and tc filters whose own
   * name (the name the loader gave the filter, `tc filter show` prints it) matches one of
   * filterNamePatterns (iproute2-loaded datapaths carry "<object>.o:[<section>]" and may have no
   * program name)
   * (a clsact qdisc goes only
   * when every filter on it is the CNI's), and pins below the bpffs mount.
   */
  bpf: z
    .strictObject({
      programNames: z.array(BpfProgramName).default([]),
      programPatterns: z.array(Regex).default([]),
      filterNamePatterns: z.array(Regex).default([]),
      pins: z.array(BpfPin).default([]),
    })
    .default({ programNames: [], programPatterns: [], filterNamePatterns: [], pins: [] }),
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
  /**
   * Why the doctor reports each kind of the CNI's state left on a node where it is not in use: one
   * sentence of the symptom it causes (the evidence and the fix are the doctor's). Empty: the
   * doctor's generic sentence for that kind.
   */
  leftoverWhy: z
    .strictObject({
      interfaces: z.string().default(''),
      routes: z.string().default(''),
      /** Its ip rules and routing tables (routes.rules, routes.tables, routes.rtTables). */
      policyRouting: z.string().default(''),
      firewall: z.string().default(''),
      bpf: z.string().default(''),
    })
    .default({ interfaces: '', routes: '', policyRouting: '', firewall: '', bpf: '' }),
});

/** A profile: its fields, and no shape that would take what is not the CNI's (for a file as for a built-in). */
export const ProfileSchema = ProfileFields.superRefine((p, ctx) => {
  p.interfaces.patterns.forEach((r, i) => {
    if (!compiles(r)) ctx.addIssue({ code: 'custom', path: ['interfaces', 'patterns', i], message: 'must be a valid regular expression' });
  });
  p.firewall.commentPrefixes.forEach((x, i) => {
    if (x === '')
      ctx.addIssue({ code: 'custom', path: ['firewall', 'commentPrefixes', i], message: 'must not be empty (it would match every name)' });
  });
  // A generic type alone would claim podman's or the site's own bridge config.
  for (const [i, t] of p.config.pluginTypes.entries())
    if (GENERIC_PLUGIN_TYPES.includes(t) && !p.config.pluginQualifiers[t])
      ctx.addIssue({
        code: 'custom',
        path: ['config', 'pluginTypes', i],
        message: `"${t}" is a generic plugin type (podman and sites use it too): add config.pluginQualifiers.${t} with the networks or bridges the CNI writes`,
      });
  for (const t of Object.keys(p.config.pluginQualifiers))
    if (!p.config.pluginTypes.includes(t))
      ctx.addIssue({
        code: 'custom',
        path: ['config', 'pluginQualifiers', t],
        message: 'qualifies a type that is not in config.pluginTypes',
      });
  // KUBE-* is kube-proxy's and kubelet's, CNI-* the plugins': only exact sub-prefixes inside them.
  for (const field of ['chainPrefixes', 'ipsetPrefixes'] as const)
    for (const [i, x] of p.firewall[field].entries()) {
      const problem = prefixProblem(x.replace(/^inet6:/, ''));
      if (problem) ctx.addIssue({ code: 'custom', path: ['firewall', field, i], message: problem });
    }
});

export type Profile = z.infer<typeof ProfileSchema>;
export type ProfileInput = z.input<typeof ProfileSchema>;
export type LegacyRuleShape = z.infer<typeof LegacyRule>;
export type AgentProcessShape = z.infer<typeof AgentProcess>;
export type BpfShape = Profile['bpf'];
