// `tc -j qdisc show`, `tc -j filter show dev X ingress|egress` and the `xdp` object of
// `ip -j -d link show` (iproute2's JSON field names; checked against iproute2 6.1 on kernel 6.18).
import { z } from 'zod';
import { ParseError } from './errors.js';
import { parseJsonArray } from './iproute.js';

export const QdiscSchema = z.looseObject({
  kind: z.string(),
  handle: z.string(),
  dev: z.string(),
  parent: z.string().optional(),
  root: z.boolean().optional(),
});
export type Qdisc = z.infer<typeof QdiscSchema>;

/** A BPF program as iproute2 prints it from bpf_prog_info: `name` is the kernel's (at most 15 characters). */
const ProgSchema = z.looseObject({ id: z.number().optional(), name: z.string().optional() });

/**
 * One entry of a filter listing. tc prints, per preference (one classifier instance), a header
 * entry without `options`, then one entry with `options` per filter in it (its handle; for bpf
 * the program it runs).
 */
export const FilterSchema = z.looseObject({
  protocol: z.string().optional(),
  pref: z.number().int(),
  kind: z.string(),
  chain: z.number().int().optional(),
  options: z
    .looseObject({
      handle: z.string().optional(),
      bpf_name: z.string().optional(),
      prog: ProgSchema.optional(),
    })
    .optional(),
});
export type Filter = z.infer<typeof FilterSchema>;

/** The `xdp` object of a link: `mode` (XDP_ATTACHED_*), and with several modes at once, `attached`. */
export const XdpSchema = z.looseObject({
  mode: z.number().int(),
  prog: ProgSchema.optional(),
  attached: z.array(z.looseObject({ mode: z.number().int(), prog: ProgSchema.optional() })).optional(),
});
export type Xdp = z.infer<typeof XdpSchema>;

export const parseQdiscs = (text: string) => parseJsonArray(QdiscSchema, text, 'tc -j qdisc show');
export const parseFilters = (text: string) => parseJsonArray(FilterSchema, text, 'tc -j filter show');

/** The programs attached to a link by XDP, each with its mode; [] when none (or an `xdp` object it cannot read). */
export function xdpPrograms(link: Record<string, unknown>): Array<{ mode: number; name?: string }> {
  if (link.xdp === undefined) return [];
  const x = XdpSchema.safeParse(link.xdp);
  if (!x.success) throw new ParseError(`unexpected ip -j -d link xdp output: ${x.error.issues[0]!.message}`);
  const list = x.data.attached ?? (x.data.prog ? [{ mode: x.data.mode, prog: x.data.prog }] : []);
  return list.map((a) => ({ mode: a.mode, name: a.prog?.name }));
}
