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
    /** Routes inside the pod network via a non-CNI device (host-gw style) are the CNI's too. */
    podNetworkRoutes: z.boolean().default(false),
    protocols: z.array(z.string()).default([]),
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
  /** Profiles this one is made of (Canal: Flannel networking plus Calico policy). */
  includes: z.array(z.string()).default([]),
});

export type Profile = z.infer<typeof ProfileSchema>;
export type ProfileInput = z.input<typeof ProfileSchema>;
export type LegacyRuleShape = z.infer<typeof LegacyRule>;
