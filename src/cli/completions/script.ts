/**
 * The completion script for one shell, made from the whole command tree.
 *
 * @module
 */

import { describeProgram } from "../tree.ts";
import { bashScript } from "./bash.ts";
import { fishScript } from "./fish.ts";
import { completionEntries, type Shell } from "./spec.ts";
import { zshScript } from "./zsh.ts";

/**
 * Renders the completion script for a shell.
 *
 * @param shell `bash`, `zsh` or `fish`.
 * @returns The script.
 */
export async function completionScript(shell: Shell): Promise<string> {
  const entries = completionEntries(await describeProgram());
  return shell === "bash"
    ? bashScript(entries)
    : shell === "zsh"
    ? zshScript(entries)
    : fishScript(entries);
}
