// Quoting is for display only: steps are argv arrays and never pass through a shell when run.
// The plan is a script a user may run, so whatever a name from the node holds (newline, CR, `$(`,
// backquote, quote, bytes that are not UTF-8), quoting keeps it one inert word.

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;
/** Characters single quotes cannot show faithfully: controls, DEL, and bytes that are not UTF-8 (see util/names). */
const NEEDS_ANSI_C = /[\x00-\x1f\x7f\udc80-\udcff]/;

const hex = (n: number) => `\\x${n.toString(16).padStart(2, '0')}`;

export function shellQuote(arg: string): string {
  if (arg !== '' && SAFE.test(arg)) return arg;
  if (!NEEDS_ANSI_C.test(arg)) return `'${arg.replace(/'/g, `'\\''`)}'`;
  // bash's $'...': \xNN is that byte, so a name that is not UTF-8 comes back byte for byte.
  let out = '';
  for (const ch of arg) {
    const c = ch.charCodeAt(0);
    if (ch === '\\' || ch === "'") out += `\\${ch}`;
    else if (ch.length === 1 && c >= 0xdc80 && c <= 0xdcff) out += hex(c - 0xdc00);
    else if (c < 0x20 || c === 0x7f) out += hex(c);
    else out += ch;
  }
  return `$'${out}'`;
}

export function renderArgv(argv: string[]): string {
  return argv.map(shellQuote).join(' ');
}

/**
 * A comment line of the plan: nothing after `#` may end the line (a newline or CR in a name would
 * start a command), so controls and bytes that are not UTF-8 are shown as \xNN.
 */
export function commentLine(line: string): string {
  return line.replace(/[\x00-\x1f\x7f-\x9f\udc80-\udcff]/g, (ch) => {
    const c = ch.charCodeAt(0);
    return hex(c >= 0xdc80 ? c - 0xdc00 : c);
  });
}

/** A heredoc delimiter that does not occur as a line in the body. */
export function heredocDelimiter(body: string): string {
  const lines = new Set(body.split('\n'));
  let tag = 'CNI_SWEEP_EOF';
  for (let i = 1; lines.has(tag); i++) tag = `CNI_SWEEP_EOF_${i}`;
  return tag;
}
