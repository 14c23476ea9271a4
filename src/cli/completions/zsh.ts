/**
 * The zsh completion script (`hecate completions zsh`): the data functions of ./sh_data.ts and a
 * `_hecate` that walks `words` the way the bash script walks COMP_WORDS, offering subcommands and
 * flags with `compadd`, files and directories with `_files`.
 *
 * @module
 */

import { shellDataFunctions } from "./sh_data.ts";
import type { CompletionEntry } from "./spec.ts";

// Not "path": in zsh that name is the array tied to PATH.
const WALKER = String.raw`_hecate() {
  local cur=\${words[CURRENT]} cmdpath="" w kind subs skip="" i n=0
  for ((i = 2; i < CURRENT; i++)); do
    w=\${words[i]}
    if [[ -n $skip ]]; then skip=""; continue; fi
    [[ $w == -- ]] && { _files; return; } # the words of another program (hecate run)
    if [[ $w == -* ]]; then
      [[ $w != *=* && -n $(_hecate_value "$cmdpath|$w") ]] && skip=1
      continue
    fi
    subs=" $(_hecate_subcommands "$cmdpath") "
    if ((n == 0)) && [[ $subs != "  " && $subs == *" $w "* ]]; then
      cmdpath="\${cmdpath:+$cmdpath }$w"
    else
      n=$((n + 1))
    fi
  done
  if [[ -n $skip ]]; then
    kind=$(_hecate_value "$cmdpath|\${words[CURRENT-1]}")
    case "$kind" in
    choices\ *) compadd -- \${=kind#choices } ;;
    file) _files ;;
    dir) _files -/ ;;
    esac
    return
  fi
  if [[ $cur == -* ]]; then
    compadd -- \${=$(_hecate_options "$cmdpath")} \${=$(_hecate_options "")}
    return
  fi
  subs=$(_hecate_subcommands "$cmdpath")
  if ((n == 0)) && [[ -n $subs ]]; then
    compadd -- \${=subs}
  elif ((n == 0)) && [[ -n $(_hecate_arg_choices "$cmdpath") ]]; then
    compadd -- \${=$(_hecate_arg_choices "$cmdpath")}
  else
    _files
  fi
}

if [[ \${funcstack[1]} == _hecate ]]; then
  _hecate "$@" # autoloaded from a file named _hecate on $fpath
elif (($+functions[compdef])); then
  compdef _hecate hecate # sourced after compinit
fi
`.replaceAll("\\$", "$");

/**
 * Renders the zsh script.
 *
 * @param entries The completion table.
 * @returns The script: save it as `_hecate` in a directory on `$fpath`, or source it after
 *   `compinit`.
 */
export function zshScript(entries: CompletionEntry[]): string {
  return [
    "#compdef hecate",
    "# zsh completion for hecate, generated from its command tree by `hecate completions zsh`.",
    "# Save as _hecate in a directory on $fpath (before compinit), or source it after compinit.",
    "",
    shellDataFunctions(entries),
    "",
    WALKER,
  ].join("\n");
}
