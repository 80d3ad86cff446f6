// `ip -j` output of links, addresses and routes (iproute2 JSON field names).
import { z } from 'zod';
import { ParseError } from './errors.js';

export const LinkSchema = z.looseObject({
  ifindex: z.number(),
  ifname: z.string(),
  flags: z.array(z.string()).optional(),
  link: z.string().optional(),
  link_index: z.number().optional(),
  mtu: z.number().optional(),
  master: z.string().optional(),
  group: z.string().optional(),
  operstate: z.string().optional(),
  link_netnsid: z.number().optional(),
  linkinfo: z.looseObject({ info_kind: z.string().optional(), info_data: z.unknown().optional() }).optional(),
});
export type Link = z.infer<typeof LinkSchema>;

export const AddrInfoSchema = z.looseObject({ family: z.string(), local: z.string(), prefixlen: z.number() });
export const AddrSchema = z.looseObject({ ifname: z.string(), addr_info: z.array(AddrInfoSchema).default([]) });
export type LinkAddrs = z.infer<typeof AddrSchema>;

export const RouteSchema = z.looseObject({
  type: z.string().optional(),
  dst: z.string(),
  gateway: z.string().optional(),
  dev: z.string().optional(),
  protocol: z.string().optional(),
  scope: z.string().optional(),
  table: z.string().optional(),
  metric: z.number().optional(),
});
export type Route = z.infer<typeof RouteSchema>;

/** Where the default routes go: each one's device and gateway, and each of a multipath one's next hops. */
export function defaultHops(routes: Route[]): Array<{ dev?: string; gateway?: string }> {
  return routes
    .filter((r) => r.dst === 'default')
    .flatMap((r) => [r, ...((r as { nexthops?: Array<{ dev?: string; gateway?: string }> }).nexthops ?? [])]);
}

// One array schema per element schema: zod builds a schema's checks the first time it parses, so a
// new z.array per call pays that again each time (16 ms against 6 ms for 260 links, measured).
const arrays = new WeakMap<z.ZodType, z.ZodType>();

/** The JSON array a tool printed (`what`: the command, for the error), each element checked against the schema; [] for no output. */
export function parseJsonArray<T>(schema: z.ZodType<T>, text: string, what: string): T[] {
  const t = text.trim();
  if (t === '') return [];
  let json: unknown;
  try {
    json = JSON.parse(t);
  } catch (e) {
    throw new ParseError(`unexpected ${what} output: ${(e as Error).message}`);
  }
  let array = arrays.get(schema) as z.ZodArray<z.ZodType<T>> | undefined;
  if (!array) arrays.set(schema, (array = z.array(schema)));
  const parsed = array.safeParse(json);
  if (!parsed.success) throw new ParseError(`unexpected ${what} output: ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}

// The listings of a node with hundreds of pods are checked here field by field, as the schemas
// above check them, and kept as JSON.parse made them: zod builds a copy of every object (ip -d -j
// link prints some 40 fields per veth), which cost more than the parse itself and a third of the
// garbage a plan collected. Output the checks refuse goes to the schemas, which then say why (the
// same message as before); what they accept is what the checks accept, so both ways give the same
// elements (their keys in ip's order instead of the schema's: nothing serializes them).
type Check = (v: unknown) => boolean;
const isString: Check = (v) => typeof v === 'string';
const isNumber: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const isStrings: Check = (v) => Array.isArray(v) && v.every(isString);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A looseObject's check: required fields (`?` after the name: optional, absent or undefined). */
function fields(spec: Record<string, Check>): Check {
  const list = Object.entries(spec).map(([k, check]) => ({ key: k.replace(/\?$/, ''), optional: k.endsWith('?'), check }));
  return (v) => {
    if (!isRecord(v)) return false;
    for (const { key, optional, check } of list) {
      const x = v[key];
      if (x === undefined ? !optional : !check(x)) return false;
    }
    return true;
  };
}

const isLink = fields({
  ifindex: isNumber,
  ifname: isString,
  'flags?': isStrings,
  'link?': isString,
  'link_index?': isNumber,
  'mtu?': isNumber,
  'master?': isString,
  'group?': isString,
  'operstate?': isString,
  'link_netnsid?': isNumber,
  'linkinfo?': fields({ 'info_kind?': isString }),
});
const isAddrInfo = fields({ family: isString, local: isString, prefixlen: isNumber });
const isAddr = fields({ ifname: isString, 'addr_info?': (v) => Array.isArray(v) && v.every(isAddrInfo) });
const isRoute = fields({
  'type?': isString,
  dst: isString,
  'gateway?': isString,
  'dev?': isString,
  'protocol?': isString,
  'scope?': isString,
  'table?': isString,
  'metric?': isNumber,
});

/** parseJsonArray for a schema whose elements `ok` checks the same way: the elements as parsed, `fill` adding the defaults. */
function parseChecked<T>(schema: z.ZodType<T>, ok: Check, text: string, what: string, fill?: (e: Record<string, unknown>) => void): T[] {
  const t = text.trim();
  if (t === '') return [];
  let json: unknown;
  try {
    json = JSON.parse(t);
  } catch {
    return parseJsonArray(schema, t, what); // which says why
  }
  if (!Array.isArray(json) || !json.every(ok)) return parseJsonArray(schema, t, what);
  if (fill) for (const e of json as Array<Record<string, unknown>>) fill(e);
  return json as T[];
}

export const parseLinks = (text: string): Link[] => parseChecked(LinkSchema, isLink, text, 'ip -j link');
export const parseAddrs = (text: string): LinkAddrs[] =>
  parseChecked(AddrSchema, isAddr, text, 'ip -j addr', (e) => {
    if (e.addr_info === undefined) e.addr_info = [];
  });
export const parseRoutes = (text: string): Route[] => parseChecked(RouteSchema, isRoute, text, 'ip -j route');
