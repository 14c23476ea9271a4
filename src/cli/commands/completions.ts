/**
 * `hecate completions bash|zsh|fish`: prints a completion script made from the command tree, so
 * every command of src/cli/command_table.ts completes without a change here.
 *
 * @module
 */

import { Argument, Command } from "@commander-js/extra-typings";
import type { CliContext } from "../context.ts";
import { SHELLS } from "../completions/spec.ts";

/**
 * Builds `completions`.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function completionsCommand(ctx: CliContext) {
  return new Command("completions")
    .description("print a shell completion script (bash, zsh or fish) for hecate")
    .addArgument(new Argument("<shell>", "the shell").choices(SHELLS))
    .addHelpText(
      "after",
      "\nLoad it with:\n" +
        "  bash: source <(hecate completions bash)     (add the line to ~/.bashrc)\n" +
        "  zsh:  hecate completions zsh > ~/.zfunc/_hecate   (fpath=(~/.zfunc $fpath) before compinit)\n" +
        "  fish: hecate completions fish > ~/.config/fish/completions/hecate.fish\n",
    )
    .action(async (shell) => {
      // The whole tree, not only this command: the script lists every command.
      const { completionScript } = await import("../completions/script.ts");
      await ctx.io.out(await completionScript(shell));
    });
}
