// Quoting is for display only: steps are argv arrays and never pass through a shell when run.

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function shellQuote(arg: string): string {
  if (arg !== '' && SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function renderArgv(argv: string[]): string {
  return argv.map(shellQuote).join(' ');
}

/** A heredoc delimiter that does not occur as a line in the body. */
export function heredocDelimiter(body: string): string {
  const lines = new Set(body.split('\n'));
  let tag = 'CNI_SWEEP_EOF';
  for (let i = 1; lines.has(tag); i++) tag = `CNI_SWEEP_EOF_${i}`;
  return tag;
}
