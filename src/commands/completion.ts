// `completion bash|zsh|fish` and the man page (`cni-sweep man`, hidden; the build writes it to
// dist/cni-sweep.1): both read the commands and options from the program itself, the source
// --help is made from, so they cannot drift apart from it.
import type { Command, Option } from 'commander';
import { UsageError } from '../errors.js';
import { closest } from '../util/suggest.js';
import { VERSION, type Done, type Io } from './common.js';

const SHELLS = ['bash', 'zsh', 'fish'] as const;

export const visible = (program: Command) => program.commands.filter((c) => !(c as Command & { _hidden?: boolean })._hidden);
const flags = (c: Command) => c.options.flatMap((o) => [o.long, o.short].filter((f): f is string => Boolean(f)));
/** Shell-safe: command names and flags are plain words; descriptions lose quotes. */
const plain = (s: string) => s.replace(/['"\\`$]/g, '');

function bash(program: Command): string {
  const cmds = visible(program);
  return [
    '# cni-sweep completion for bash: source it, or put it in /etc/bash_completion.d/cni-sweep',
    '_cni_sweep() {',
    '  local cur=${COMP_WORDS[COMP_CWORD]}',
    '  if [ "$COMP_CWORD" -eq 1 ]; then',
    `    COMPREPLY=($(compgen -W '${cmds.map((c) => c.name()).join(' ')} help' -- "$cur"))`,
    '    return',
    '  fi',
    '  case ${COMP_WORDS[1]} in',
    ...cmds.map(
      (c) =>
        `    ${c.name()}) COMPREPLY=($(compgen -W '${[...(c.name() === 'completion' ? SHELLS : []), ...flags(c)].join(' ')} --help' -- "$cur")) ;;`,
    ),
    '  esac',
    '}',
    'complete -o default -F _cni_sweep cni-sweep',
    '',
  ].join('\n');
}

function fish(program: Command): string {
  const out = ['# cni-sweep completion for fish: put it in ~/.config/fish/completions/cni-sweep.fish', 'complete -c cni-sweep -f'];
  for (const c of visible(program)) {
    out.push(`complete -c cni-sweep -n __fish_use_subcommand -a ${c.name()} -d '${plain(c.description()).slice(0, 60)}'`);
    for (const o of c.options) {
      const spec = [o.long ? `-l ${o.long.replace(/^--/, '')}` : '', o.short ? `-s ${o.short.replace(/^-/, '')}` : '']
        .filter(Boolean)
        .join(' ');
      out.push(
        `complete -c cni-sweep -n '__fish_seen_subcommand_from ${c.name()}' ${spec}${o.required || o.optional ? ' -r' : ''} -d '${plain(o.description).slice(0, 60)}'`,
      );
    }
  }
  return out.join('\n') + '\n';
}

function zsh(program: Command): string {
  // zsh runs bash completions through bashcompinit: one generator for both.
  return `#compdef cni-sweep\n# cni-sweep completion for zsh: put it in a directory of $fpath as _cni-sweep\nautoload -U +X bashcompinit && bashcompinit\n${bash(program)}`;
}

const roff = (s: string) =>
  s
    .replace(/\\/g, '\\e')
    .replace(/^([.'])/gm, '\\&$1')
    .replace(/-/g, '\\-');

/** The man page, in roff: each command with its description, options and the help text it adds. */
export function manPage(program: Command): string {
  const out = [
    `.TH CNI-SWEEP 1 "" "cni-sweep ${VERSION}" "User Commands"`,
    '.SH NAME',
    `cni\\-sweep \\- ${roff(program.description())}`,
    '.SH SYNOPSIS',
    '.B cni\\-sweep',
    '.I command',
    '[\\fIoptions\\fR]',
  ];
  for (const c of visible(program)) {
    out.push(
      `.SH ${roff(c.name().toUpperCase())}`,
      `.B cni\\-sweep ${roff(c.name())}${c.registeredArguments.map((a) => ` \\fI${roff(a.name())}\\fR`).join('')}`,
      '.PP',
      roff(c.description()),
    );
    for (const o of c.options as Option[]) out.push('.TP', `.B ${roff(o.flags)}`, roff(o.description));
    // The text --help adds after the options (phases, exit codes, examples), as it prints it.
    const after = helpAfter(c);
    if (after.trim()) out.push('.PP', '.nf', roff(after.trim()), '.fi');
  }
  out.push('.SH SEE ALSO', 'cni\\-sweep \\-\\-help, and README.md of the package');
  return out.join('\n') + '\n';
}

/** What a command's --help prints after its options (its addHelpText 'after' listeners), captured. */
function helpAfter(c: Command): string {
  let text = '';
  const context = {
    error: false,
    command: c,
    write: (s: string) => {
      text += s;
    },
  };
  // commander's Command is an EventEmitter; its types do not say so.
  for (const l of (c as unknown as NodeJS.EventEmitter).listeners('afterHelp')) (l as (ctx: typeof context) => void)(context);
  return text;
}

export function completionCommand(program: Command, io: Io, done: Done): void {
  program
    .command('completion <shell>')
    .description('print the shell completion script for bash, zsh or fish')
    .addHelpText(
      'after',
      '\nExamples:\n  cni-sweep completion bash > /etc/bash_completion.d/cni-sweep\n  cni-sweep completion zsh > "${fpath[1]}/_cni-sweep"\n  cni-sweep completion fish > ~/.config/fish/completions/cni-sweep.fish\n',
    )
    .action((shell: string) => {
      const known = SHELLS.find((s) => s === shell.toLowerCase());
      if (!known) {
        const guess = closest(shell, SHELLS);
        throw new UsageError(`unknown shell "${shell}"${guess ? ` (did you mean ${guess}?)` : ''}`, `shells: ${SHELLS.join(', ')}`);
      }
      io.stdout.write({ bash, zsh, fish }[known](program));
      done(0);
    });
  program
    .command('man', { hidden: true })
    .description('print the man page (roff)')
    .action(() => {
      io.stdout.write(manPage(program));
      done(0);
    });
}
