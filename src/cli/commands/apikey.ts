/**
 * `hecate apikey create|list|revoke`: scoped API keys for unattended use.
 *
 * @module
 */

import { Command } from "@commander-js/extra-typings";
import { parseDuration } from "../../access/duration.ts";
import { HecateError } from "../../errors.ts";
import type { CliContext } from "../context.ts";
import type { ApiKeyPolicy } from "../../vault/apikey.ts";
import { collect } from "../parse.ts";

/**
 * Turns `--expires` into a time: `never`, or a duration from now (`12h`, `30d`).
 *
 * @param text The option value.
 * @param now The current time.
 * @returns The expiry, or null for never.
 */
export function expiryFrom(text: string, now: Date): Date | null {
  if (text === "never") return null;
  return new Date(now.getTime() + parseDuration(text, "expiry"));
}

/** The key's gateway checks for the list, e.g. `  checks: from=10.0.0.0/8 rate=100/1m`. */
function checksOf(p: ApiKeyPolicy): string {
  const parts = [
    ...(p.allowFrom ?? []).map((c) => `from=${c}`),
    ...(p.userAgent !== undefined ? [`user-agent=${JSON.stringify(p.userAgent)}`] : []),
    ...(p.rate !== undefined ? [`rate=${p.rate}`] : []),
    ...(p.level !== undefined ? [`level=${p.level}`] : []),
    ...(p.credentials === false ? ["no-credentials"] : []),
  ];
  return parts.length ? `  checks: ${parts.join(" ")}` : "";
}

/**
 * Builds the `apikey` command group.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function apikeyCommand(ctx: CliContext) {
  const apikey = new Command("apikey").description(
    "API keys for unattended use, each opening only the profiles in its scope",
  );

  apikey.addCommand(
    new Command("create")
      .argument("<name>", "a name for the key (unique)")
      .description("create a key and print it once on standard output")
      .option("--server <profile>", "a profile the key may use (repeatable)", collect)
      .option("--secret <name>", "a stored secret the key may read (repeatable)", collect)
      .option("--expires <when>", "12h, 30d, ... or never", "90d")
      .option("--allow-from <cidr>", "gateway: client addresses allowed (repeatable)", collect)
      .option("--user-agent <pattern>", "gateway: User-Agent the client must send (* any run)")
      .option("--rate <n/period>", "gateway: at most N requests per PERIOD (e.g. 100/1m)")
      .option(
        "--level <level>",
        "read (read-only database sessions: gateway, query, library) or write",
        "read",
      )
      .option("--allow-credentials", "the key may hand out raw credentials (run, env)")
      .action(async (name, opts) => {
        if (!opts.server?.length && !opts.secret?.length) {
          throw new HecateError("usage", "Name at least one profile (--server) or --secret");
        }
        const expires = expiryFrom(opts.expires, new Date());
        const { validatePolicy } = await import("../../gateway/policy.ts");
        const policy = validatePolicy({
          ...(opts.allowFrom ? { allowFrom: opts.allowFrom } : {}),
          ...(opts.userAgent !== undefined ? { userAgent: opts.userAgent } : {}),
          ...(opts.rate !== undefined ? { rate: opts.rate } : {}),
          credentials: opts.allowCredentials ?? false,
          level: opts.level as "read",
        });
        const { vault } = await ctx.unlockWithPassword();
        const key = await vault.apiKeys.create({
          name,
          profiles: opts.server ?? [],
          secrets: opts.secret ?? [],
          expires,
          policy,
        });
        await ctx.io.out(`${key}\n`);
        await ctx.io.err(
          `Created API key "${name}" for ${
            [...(opts.server ?? []), ...(opts.secret ?? []).map((s) => `secret ${s}`)].join(", ")
          }, expires ${
            expires?.toISOString() ?? "never"
          }. It is shown only this once: store it now (e.g. in a 0600 file for --api-key-file).\n`,
        );
      }),
  );

  apikey.addCommand(
    new Command("list")
      .description("list keys: name, scope, created, expires, last used (never the key)")
      .option("--server <profile>", "only the keys whose scope includes this profile")
      .option("--json", "print JSON")
      .action(async (opts) => {
        const { vault } = await ctx.unlockWithPassword();
        const keys = await vault.apiKeys.list({ profile: opts.server });
        if (opts.json) {
          await ctx.io.out(JSON.stringify(keys, null, 2) + "\n");
          return;
        }
        if (keys.length === 0) {
          await ctx.io.out(opts.server ? `No API keys for "${opts.server}"\n` : "No API keys\n");
          return;
        }
        const w = Math.max(4, ...keys.map((k) => k.name.length));
        await ctx.io.out(
          `${"NAME".padEnd(w)}  ${"CREATED".padEnd(24)}  ${"EXPIRES".padEnd(24)}  ${
            "LAST USED".padEnd(24)
          }  PROFILES  SECRETS\n`,
        );
        for (const k of keys) {
          const expired = k.expires !== null && Date.parse(k.expires) <= Date.now();
          await ctx.io.out(
            `${k.name.padEnd(w)}  ${k.created.padEnd(24)}  ${(k.expires ?? "never").padEnd(24)}  ${
              (k.lastUsed ?? "never").padEnd(24)
            }  ${k.profiles.join(",") || "-"}  ${k.secrets.join(",") || "-"}${
              expired ? "  (expired)" : ""
            }${checksOf(k.policy)}\n`,
          );
        }
      }),
  );

  apikey.addCommand(
    new Command("revoke")
      .argument("<name>", "the key's name")
      .description("delete the key and re-key the profiles it covered")
      .action(async (name) => {
        const { vault } = await ctx.unlockWithPassword();
        await vault.apiKeys.revoke(name);
        await ctx.io.out(`Revoked API key "${name}"; the profiles it covered were re-keyed\n`);
      }),
  );
  return apikey;
}
