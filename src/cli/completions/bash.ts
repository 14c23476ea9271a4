/**
 * The bash completion script (`hecate completions bash`): the data functions of ./sh_data.ts
 * and `_hecate`, which walks COMP_WORDS to the command being typed (skipping flags and the values
 * of flags that take one) and offers its subcommands, its flags, a flag's choices, files or
 * directories.
 *
 * @module
 */

import { shellDataFunctions } from "./sh_data.ts";
import type { CompletionEntry } from "./spec.ts";

const WALKER = String.raw`# complete the word at COMP_CWORD
_hecate() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" cmdpath="" w i n=0 skip="" kind subs
  COMPREPLY=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if [[ -n $skip ]]; then skip=""; continue; fi
    [[ $w == -- ]] && return 0 # the words of another program (hecate run)
    if [[ $w == -* ]]; then
      [[ $w != *=* && -n $(_hecate_value "$cmdpath|$w") ]] && skip=1
      continue
    fi
    subs=" $(_hecate_subcommands "$cmdpath") "
    if ((n == 0)) && [[ $subs != "  " && $subs == *" $w "* ]]; then
      cmdpath="\${cmdpath:+$cmdpath }$w"
    else
      n=$((n + 1)) # a positional argument
    fi
  done
  if [[ -n $skip ]]; then
    kind=$(_hecate_value "$cmdpath|\${COMP_WORDS[COMP_CWORD - 1]}")
    case "$kind" in
    choices\ *) mapfile -t COMPREPLY < <(compgen -W "\${kind#choices }" -- "$cur") ;;
    file) mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
    dir) mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
    esac
    return 0
  fi
  if [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(_hecate_options "$cmdpath") $(_hecate_options "")" -- "$cur")
    return 0
  fi
  subs=$(_hecate_subcommands "$cmdpath")
  if ((n == 0)) && [[ -n $subs ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$subs" -- "$cur")
  elif ((n == 0)) && [[ -n $(_hecate_arg_choices "$cmdpath") ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(_hecate_arg_choices "$cmdpath")" -- "$cur")
  fi
  return 0
}

complete -o bashdefault -o default -F _hecate hecate
`.replaceAll("\\$", "$");

/**
 * Renders the bash script.
 *
 * @param entries The completion table.
 * @returns The script; `source <(hecate completions bash)` loads it.
 */
export function bashScript(entries: CompletionEntry[]): string {
  return [
    "# bash completion for hecate, generated from its command tree by `hecate completions bash`.",
    "# Load it with: source <(hecate completions bash)",
    "",
    shellDataFunctions(entries),
    "",
    WALKER,
  ].join("\n");
}
