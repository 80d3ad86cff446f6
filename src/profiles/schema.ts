// What a CNI owns on a node, as data. Adding a CNI is adding one of these.
import { z } from 'zod';

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

/** A chain or ipset prefix that every name of a namespace cni-sweep never touches starts with (KUBE-, CNI-) would take all of it. */
const SHARED_NAMESPACES = ['KUBE-', 'CNI-'];

const compiles = (r: string) => {
  try {
    new RegExp(r);
    return true;
  } catch {
    return false;
  }
};

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
});

/** A profile: its fields, and no shape that would take what is not the CNI's (for a file as for a built-in). */
export const ProfileSchema = ProfileFields.superRefine((p, ctx) => {
  p.interfaces.patterns.forEach((r, i) => {
    if (!compiles(r)) ctx.addIssue({ code: 'custom', path: ['interfaces', 'patterns', i], message: 'must be a valid regular expression' });
  });
  for (const key of ['chainPrefixes', 'ipsetPrefixes', 'commentPrefixes'] as const) {
    p.firewall[key].forEach((x, i) => {
      const shared = key === 'commentPrefixes' ? undefined : SHARED_NAMESPACES.find((n) => n.startsWith(x));
      if (x === '' || shared !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['firewall', key, i],
          message:
            x === ''
              ? 'must not be empty (it would match every name)'
              : `must not be a prefix of ${shared} (it would match every ${shared}* name)`,
        });
    });
  }
});

export type Profile = z.infer<typeof ProfileSchema>;
export type ProfileInput = z.input<typeof ProfileSchema>;
export type LegacyRuleShape = z.infer<typeof LegacyRule>;
export type AgentProcessShape = z.infer<typeof AgentProcess>;
export type BpfShape = Profile['bpf'];
