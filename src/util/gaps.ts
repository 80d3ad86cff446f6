/** Records what was inspected and what could not be read (e.g. iptables without root), so the plan can say so. */
export class Gaps {
  readonly items: string[] = [];
  readonly inspected = new Set<string>();
  saw(what: string) {
    this.inspected.add(what);
  }
  add(what: string, err: unknown) {
    const msg = err instanceof Error ? err.message.split('\n')[0]! : String(err); // split gives at least one item
    const line = `${what}: ${msg}`;
    if (!this.items.includes(line)) this.items.push(line);
  }
}
