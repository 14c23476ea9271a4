/**
 * `hecate server add|list|show|edit|remove|test`: managing connection profiles.
 *
 * @module
 */

import { Command, Option } from "@commander-js/extra-typings";
import type { Engine } from "../../db/driver.ts";
import { HecateError } from "../../errors.ts";
import type { ProfileChanges, ProfileSummary, Vault } from "../../hecate.ts";
import { profilesViaAgent } from "../../agent/client.ts";
import { listedSummaries } from "../../api/profiles.ts";
import type { ConnectOptions } from "../../api/connections.ts";
import {
  ENGINES,
  type SecretValue,
  type SourceSettings,
  type SshProfile,
  type TlsProfile,
} from "../../profile.ts";
import type { CliContext } from "../context.ts";
import { collect, parsePort, parsePositiveInt } from "../parse.ts";
import { parseDuration } from "../../access/duration.ts";
import { profileSecret } from "../secrets.ts";
import { addAuthOptions, authParamsFrom } from "../options/auth_options.ts";
import {
  addVaultOptions,
  vaultCredentialsFrom,
  vaultParamsFrom,
} from "../options/vault_options.ts";
import {
  addSshOptions,
  addSshSecretOption,
  cliHopSecrets,
  type SshFlags,
  sshForAdd,
  sshForEdit,
} from "../options/ssh_options.ts";
import { fieldsOf, providerByType } from "../../../providers/mod.ts";
import {
  clearFromKeyring,
  hecateKeyringRef,
  keyringClearCommand,
  storeInKeyring,
} from "../../../providers/sources/keyring_store.ts";
import { MAX_KEEP, validKeep } from "../../lifecycle/history.ts";
import { type ComplexityRule, parseComplexity } from "../../lifecycle/complexity.ts";
import { completionCommand, describeMissing, incompleteOf } from "../../incomplete.ts";

/** `--rotate-every` in milliseconds, if given. */
function rotateEveryFrom(opts: { rotateEvery?: string }): number | undefined {
  return opts.rotateEvery === undefined
    ? undefined
    : parseDuration(opts.rotateEvery, "--rotate-every");
}

/** `--keep-versions`: a whole number 0 to 100 (0 keeps no previous version). */
function parseKeep(text: string): number {
  const n = /^\d{1,3}$/.test(text) ? Number(text) : NaN;
  if (!validKeep(n)) {
    throw new HecateError("usage", `--keep-versions must be a whole number from 0 to ${MAX_KEEP}`);
  }
  return n;
}

const TLS_MODES = ["verify", "insecure", "disable"] as const;

/**
 * Options shared by `add` and `edit`, in the help groups people read them by: where the server is,
 * how to log in, TLS, the SSH tunnel, and where secrets come from. Commander lists a group where
 * its first option was added, so the order here is the order of `--help`.
 *
 * @param cmd `add` (with `--engine` already added) or `edit`.
 * @param edit Whether to add the edit-only negations (`--no-port`, `--no-ssh`, ...) and `--rename`.
 */
function withProfileOptions<O extends Record<string, unknown>>(
  cmd: Command<[string], O>,
  edit: boolean,
) {
  const connection = cmd.optionsGroup("Connection:")
    .option("--host <host>", "server host name or address")
    .option("--port <port>", "server port", parsePort)
    .option("--database <name>", "database name (SQLite: the database file path)")
    .option("--user <user>", "login name")
    .option("--connect-timeout <ms>", "connect and login timeout in milliseconds", parsePositiveInt)
    .option("--tag <tag>", "a tag (repeatable)", collect);
  if (edit) {
    connection.option("--no-port", "remove the port (use the engine default)")
      .option("--rename <new>", "rename the profile");
  }
  const auth = connection.optionsGroup("Authentication:")
    .option(
      "--auth <method>",
      "authentication method: sql, none (SQLite), windows (SQL Server NTLM), token (SQL Server), " +
        "certificate (PostgreSQL, MySQL), aws-iam (RDS/Aurora PostgreSQL, MySQL)",
    );
  const tls = addAuthOptions(auth).optionsGroup("TLS:")
    .addOption(
      new Option("--tls <mode>", "TLS: verify (default), insecure, disable").choices(TLS_MODES),
    )
    .option("--ca-file <file>", "CA certificate file (PEM) to verify the server with")
    .option(
      "--allow-plain-auth",
      "PostgreSQL, MySQL: send the password (cleartext, MD5, or MySQL full auth with a key the " +
        "server sends) when the server asks, even though TLS does not verify it " +
        "(--tls insecure/disable); see docs/SECURITY.md",
    )
    .option("--no-allow-plain-auth", "refuse such password requests (the default)");
  const secrets = addSshOptions(tls.optionsGroup("SSH:"), edit).optionsGroup("Secrets:")
    .option(
      "--secret-stdin",
      "read the profile's secrets (e.g. the password) from standard input, one per line",
    )
    .option(
      "--secret-ref <ref>",
      "store a reference instead of the (first) secret, resolved at connect time: env:NAME, " +
        "file:PATH or another registered source (repeatable: failover in the order given; see " +
        "docs/SOURCES.md)",
      collect,
    )
    .option(
      "--from <ref>",
      "take the whole connection (host, port, dbname, username, password) from a secret; " +
        "options given here override it (repeatable: failover in the order given)",
      collect,
    )
    .option(
      "--source-timeout <duration>",
      "how long each secret source may take before the next is tried, e.g. 2s (default 5s)",
    )
    .option(
      "--cache-ttl <duration>",
      "keep the last resolved secrets sealed in the vault home for this long, for use when every " +
        "source fails, e.g. 1h (off by default)",
    );
  secrets.option(
    "--rotate-every <duration>",
    "rotate the password on the server this often with 'hecate rotate-due', e.g. 30d",
  ).option(
    "--complexity <rule>",
    "a rule the stored password must meet, e.g. length=16,classes=3 (classes of: upper, lower, " +
      "digits, other); generated passwords always meet it",
    parseComplexity,
  );
  if (edit) {
    secrets.option("--no-complexity", "remove the complexity rule")
      .option("--no-rotate-every", "remove the rotation schedule")
      .option("--no-from", "remove the whole-connection secrets")
      .option("--no-cache-ttl", "turn the offline cache off")
      .option(
        "--keep-versions <n>",
        "how many previous versions of the secrets to keep sealed in the profile (0-100, default 5)",
        parseKeep,
      );
  }
  // Options added after this (and -h) go back to commander's default group.
  return addVaultOptions(addSshSecretOption(secrets)).optionsGroup("Options:");
}

/**
 * Collects the secrets an auth method needs: the first may be a reference (`--secret-ref`), the
 * rest come from stdin lines (`--secret-stdin`) or hidden prompts, in the method's field order.
 * Optional secrets (e.g. a key pass phrase) follow the required ones: all of them when
 * `--secret-stdin` or `--secret-ref` is given, else those the method finds it needs for these
 * params (e.g. because the key file is encrypted).
 */
async function secretsFor(
  ctx: CliContext,
  name: string,
  auth: string,
  opts: { secretStdin?: boolean; secretRef?: string[]; from?: string[] | false },
  params: Record<string, string> = {},
): Promise<Record<string, SecretValue>> {
  if (opts.secretStdin && opts.secretRef) {
    throw new HecateError("usage", "Give either --secret-stdin or --secret-ref, not both");
  }
  const provider = providerByType(auth);
  if (!provider) {
    throw new HecateError("invalid_profile", `Profile "${name}": unknown auth method "${auth}"`);
  }
  const fields = fieldsOf(provider, params);
  const optional = fields.optionalSecretFields ?? [];
  // A method may know which optional secrets these params need (e.g. a passphrase because the key
  // file is encrypted): those are asked like required ones, the others not at all. Without that
  // knowledge, optional secrets are offered: a further stdin line, or a prompt that may be empty.
  const wanted = await provider.wantedOptionalSecrets?.(params);
  // A whole-connection secret (--from) supplies the password: it is not asked for.
  const fromSupplied = Array.isArray(opts.from) && opts.from.length > 0;
  const asked = [...fields.secretFields, ...optional.filter((f) => wanted?.includes(f))]
    .filter((f) => !(fromSupplied && f === "password" && !opts.secretStdin && !opts.secretRef));
  const offered = wanted === undefined ? optional : [];
  const out: Record<string, SecretValue> = {};
  // A reference stands for the first secret field, required or (when none is) optional; several
  // references are that field's sources in priority order.
  const refs = opts.secretRef ?? [];
  const refField = refs.length ? [...fields.secretFields, ...optional][0] : undefined;
  if (refField) out[refField] = refs.length === 1 ? { ref: refs[0]! } : { refs: [...refs] };
  for (const field of asked) {
    if (field === refField) continue;
    out[field] = {
      value: await profileSecret(
        ctx.io,
        ctx.stdin,
        opts.secretStdin ?? false,
        `${field} for ${name}:`,
      ),
    };
  }
  for (const field of offered) {
    if (field === refField) continue;
    const value = opts.secretStdin
      ? await ctx.stdin.maybeNext()
      : ctx.io.stdinIsTerminal
      ? await ctx.io.promptSecret(`${field} for ${name} (Enter for none):`)
      : undefined;
    if (value) out[field] = { value };
  }
  return out;
}

/**
 * `--store keyring`: puts the password in the OS keyring and returns the secrets with a
 * `keyring:` reference in its place.
 */
async function keepInKeyring(
  ctx: CliContext,
  vault: Vault,
  name: string,
  secrets: Record<string, SecretValue>,
  secretRef: string[] | undefined,
): Promise<Record<string, SecretValue>> {
  const pw = secrets.password;
  if (secretRef || !pw || !("value" in pw)) {
    throw new HecateError("usage", "--store keyring keeps a password given here", {
      hint: "leave out --secret-ref, and use an auth method with a password",
    });
  }
  await storeInKeyring(vault.id, name, pw.value, ctx.io.env);
  return { ...secrets, password: { ref: hecateKeyringRef(vault.id, name) } };
}

/** Reads a Vault credential (one stdin line) to seal in the profile. */
async function vaultSecret(ctx: CliContext, name: string, what: string): Promise<string> {
  return await profileSecret(ctx.io, ctx.stdin, true, `${what} for ${name}:`);
}

/** The `sources` settings the flags give (undefined members are left as they are). */
function sourcesFrom(
  opts: { from?: string[] | false; sourceTimeout?: string; cacheTtl?: string | false },
): { set: SourceSettings; clear: ("from" | "cacheTtlMs")[] } {
  const set: SourceSettings = {};
  const clear: ("from" | "cacheTtlMs")[] = [];
  if (Array.isArray(opts.from)) set.from = [...opts.from];
  else if (opts.from === false) clear.push("from");
  if (opts.sourceTimeout !== undefined) {
    set.timeoutMs = parseDuration(opts.sourceTimeout, "--source-timeout");
  }
  if (typeof opts.cacheTtl === "string") {
    set.cacheTtlMs = parseDuration(opts.cacheTtl, "--cache-ttl");
  } else if (opts.cacheTtl === false) clear.push("cacheTtlMs");
  return { set, clear };
}

function tlsFrom(
  opts: { tls?: string; caFile?: string; allowPlainAuth?: boolean },
  base?: TlsProfile,
): TlsProfile | undefined {
  if (opts.tls === undefined && opts.caFile === undefined && opts.allowPlainAuth === undefined) {
    return base;
  }
  const mode = (opts.tls ?? base?.mode ?? "verify") as TlsProfile["mode"];
  const caFile = opts.caFile ?? base?.caFile;
  const allowPlainAuth = opts.allowPlainAuth ?? base?.allowPlainAuth ?? false;
  return { mode, ...(caFile ? { caFile } : {}), ...(allowPlainAuth ? { allowPlainAuth } : {}) };
}

/**
 * `server list`'s table: one line per profile, the names padded to the longest (at least 4).
 *
 * @param list The profiles, in the order to print.
 * @returns The lines, each ending with a newline; empty for no profile.
 */
function profileRows(list: readonly Readonly<ProfileSummary>[]): string {
  let width = 4;
  for (let i = 0; i < list.length; i++) width = Math.max(width, list[i]!.name.length);
  let out = "";
  for (let i = 0; i < list.length; i++) {
    const p = list[i]!;
    out += `${p.name.padEnd(width)}  ${p.engine.padEnd(8)}  ${
      p.engine === "sqlite"
        ? p.database
        : `${p.user ?? ""}@${p.host ?? ""}:${p.port ?? ""}/${p.database ?? ""}`
    }${p.incomplete ? `  INCOMPLETE: missing ${describeMissing(p.incomplete)}` : ""}\n`;
  }
  return out;
}

async function printJsonOrLines(ctx: CliContext, json: boolean, value: unknown, lines: string) {
  await ctx.io.out(json ? JSON.stringify(value, null, 2) + "\n" : lines);
}

/**
 * Builds the `server` command group.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function serverCommand(ctx: CliContext) {
  const server = new Command("server").description("manage connection profiles");

  server.addCommand(
    withProfileOptions(
      new Command("add").argument("<name>", "profile name").optionsGroup("Connection:")
        .addOption(
          new Option("--engine <engine>", "database engine").choices(ENGINES).makeOptionMandatory(),
        ),
      false,
    )
      .optionsGroup("Secrets:")
      .addOption(
        new Option(
          "--store <store>",
          "where the password is kept: in the vault, or in the OS keyring (Secret Service, " +
            "Keychain, Credential Manager; the vault keeps only a keyring: reference, and server " +
            "remove clears the entry)",
        ).choices(["vault", "keyring"] as const),
      )
      .optionsGroup("Options:")
      .description("add a connection profile (its password from a hidden prompt or --secret-stdin)")
      .action(async (name, opts) => {
        const vault = await ctx.unlock();
        const engine = String(opts.engine) as Engine;
        const auth = opts.auth ?? (engine === "sqlite" ? "none" : "sql");
        const params = { ...authParamsFrom(opts), ...vaultParamsFrom(opts) };
        const sources = sourcesFrom(opts).set;
        let secrets = await secretsFor(ctx, name, auth, opts, params);
        const tunnel = await sshForAdd(
          cliHopSecrets(ctx, (opts as SshFlags).sshSecretStdin ?? false),
          name,
          opts as SshFlags,
        );
        Object.assign(secrets, await vaultCredentialsFrom(opts, (p) => vaultSecret(ctx, name, p)));
        const tls = tlsFrom(opts);
        // The keyring entry is written first and removed again if the profile cannot be added;
        // a taken name is left to add() (and never overwrites the other profile's entry).
        const inKeyring = opts.store === "keyring" && !vault.profiles.has(name);
        if (inKeyring) secrets = await keepInKeyring(ctx, vault, name, secrets, opts.secretRef);
        const added = vault.profiles.add({
          name,
          engine,
          host: opts.host,
          port: opts.port,
          database: opts.database,
          user: opts.user,
          auth,
          params,
          tls,
          connectTimeoutMs: opts.connectTimeout,
          tags: opts.tag,
          ssh: tunnel?.ssh,
          secrets: { ...secrets, ...tunnel?.secrets },
          complexity: (opts as { complexity?: ComplexityRule }).complexity,
          rotateEveryMs: rotateEveryFrom(opts as { rotateEvery?: string }),
          ...(Object.keys(sources).length ? { sources } : {}),
        });
        if (inKeyring) {
          await added.catch(async (e) => {
            await clearFromKeyring(vault.id, name, ctx.io.env);
            throw e;
          });
        } else await added;
        await ctx.io.out(`Added profile "${name}"\n`);
      }),
  );

  server.addCommand(
    new Command("list")
      .description("list profiles (no secrets)")
      .option("--json", "print JSON")
      .action(async (opts) => {
        // The unlock agent answers when there is one (src/agent/); else unlock here.
        const served = await ctx.fromAgent((home) => profilesViaAgent(home, { op: "list" }));
        // Only the header, table and index line are read: a listing opens no record.
        const vault = served === undefined ? await ctx.unlockForListing() : undefined;
        const json = opts.json ?? false;
        if (json) {
          const list = served as ProfileSummary[] | undefined ?? vault!.profiles.list();
          await printJsonOrLines(ctx, true, list, "");
          return;
        }
        // The table is made from the index's own summaries: list()'s copies would cost more
        // than the rows at 10,000 profiles.
        const lines = profileRows(
          served as ProfileSummary[] | undefined ?? listedSummaries(vault!.profiles),
        );
        // With the master password: when the policy's vault-key rotation is next due.
        const keysDue = vault?.actor.kind === "password"
          ? vault.policySettings().keysNextDue
          : undefined;
        const due = keysDue ? `Vault keys next due for rotation: ${keysDue}\n` : "";
        await printJsonOrLines(ctx, false, undefined, (lines || "No profiles\n") + due);
      }),
  );

  server.addCommand(
    new Command("show")
      .argument("<name>", "profile name")
      .description("show one profile, secrets masked")
      .option("--json", "print JSON")
      .action(async (name, opts) => {
        const served = await ctx.fromAgent((home) =>
          profilesViaAgent(home, { op: "show", profile: name })
        );
        const p = served as Record<string, unknown> | undefined ??
          await (await ctx.unlock()).profiles.show(name);
        const marker = incompleteOf(p.incomplete);
        const { incomplete: _, ...rest } = p;
        const lines = Object.entries(rest).map(([k, v]) =>
          `${k.padEnd(16)} ${typeof v === "object" ? JSON.stringify(v) : String(v)}\n`
        ).join("") +
          (marker
            ? `${"incomplete".padEnd(16)} missing ${describeMissing(marker.missing)}${
              marker.reason ? ` (${marker.reason})` : ""
            }\n${"complete with".padEnd(16)} ${completionCommand(name, marker.missing)}\n`
            : "");
        await printJsonOrLines(ctx, opts.json ?? false, p, lines);
      }),
  );

  server.addCommand(
    withProfileOptions(new Command("edit").argument("<name>", "profile name"), true)
      .description("change fields of a profile")
      .action(async (name, parsed) => {
        // --rename, --no-port, --no-from and --no-cache-ttl are added only for edit.
        const opts = parsed as Omit<typeof parsed, "port" | "from" | "cacheTtl"> & {
          keepVersions?: number;
          complexity?: ComplexityRule | false;
          rotateEvery?: string | false;
          port?: number | false;
          rename?: string;
          from?: string[] | false;
          cacheTtl?: string | false;
        };
        const vault = await ctx.unlock();
        const changes: ProfileChanges = {};
        if (opts.host !== undefined) changes.host = opts.host;
        if (opts.port === false) changes.port = null;
        else if (typeof opts.port === "number") changes.port = opts.port;
        if (opts.database !== undefined) changes.database = opts.database;
        if (opts.user !== undefined) changes.user = opts.user;
        if (opts.auth !== undefined) changes.auth = opts.auth;
        if (opts.connectTimeout !== undefined) changes.connectTimeoutMs = opts.connectTimeout;
        if (opts.tag !== undefined) changes.tags = opts.tag;
        if (opts.rename !== undefined) changes.rename = opts.rename;
        if (opts.keepVersions !== undefined) changes.keepVersions = opts.keepVersions;
        if (opts.rotateEvery === false) changes.rotateEveryMs = null;
        else if (opts.rotateEvery !== undefined) {
          changes.rotateEveryMs = parseDuration(opts.rotateEvery, "--rotate-every");
        }
        if (opts.complexity === false) changes.complexity = null;
        else if (opts.complexity !== undefined) changes.complexity = opts.complexity;
        const current = await vault.profiles.show(name) as { tls: TlsProfile };
        const tls = tlsFrom(opts, current.tls);
        if (tls !== current.tls && tls !== undefined) changes.tls = tls;
        const before = await vault.profiles.show(name) as { params?: Record<string, string> };
        const params = { ...authParamsFrom(opts), ...vaultParamsFrom(opts, before.params) };
        if (Object.keys(params).length) changes.params = params;
        const sources = sourcesFrom(opts);
        if (Object.keys(sources.set).length || sources.clear.length) {
          const current = (await vault.profiles.show(name)).sources as SourceSettings | undefined;
          const next: SourceSettings = { ...current, ...sources.set };
          for (const k of sources.clear) delete next[k];
          changes.sources = Object.keys(next).length ? next : null;
        }
        if (opts.secretStdin || opts.secretRef) {
          const shown = await vault.profiles.show(name) as {
            auth: string;
            params?: Record<string, string>;
          };
          const auth = opts.auth ?? String(shown.auth);
          changes.secrets = await secretsFor(ctx, name, auth, opts, { ...shown.params, ...params });
        }
        const currentSsh = await vault.profiles.show(name) as { ssh?: SshProfile; secrets: object };
        const tunnel = await sshForEdit(
          cliHopSecrets(ctx, (opts as SshFlags).sshSecretStdin ?? false),
          name,
          opts as SshFlags,
          {
            ssh: currentSsh.ssh,
            secretNames: Object.keys(currentSsh.secrets),
          },
        );
        if (tunnel) {
          changes.ssh = tunnel.ssh;
          changes.secrets = { ...changes.secrets, ...tunnel.secrets };
        }
        const vaultCreds = await vaultCredentialsFrom(opts, (p) => vaultSecret(ctx, name, p));
        if (Object.keys(vaultCreds).length) changes.secrets = { ...changes.secrets, ...vaultCreds };
        if (Object.keys(changes).length === 0) {
          throw new HecateError("usage", "Nothing to change", {
            hint: "see 'hecate server edit --help'",
          });
        }
        await vault.profiles.edit(name, changes);
        await ctx.io.out(`Updated profile "${opts.rename ?? name}"\n`);
      }),
  );

  server.addCommand(
    new Command("remove")
      .argument("<name>", "profile name")
      .description("remove a profile (the previous vault generation is kept)")
      .action(async (name) => {
        const vault = await ctx.unlock();
        const shown = vault.profiles.has(name) ? await vault.profiles.show(name) : undefined;
        // show() gives a reference as its text (a stored value as asterisks).
        const pw = (shown?.secrets as Record<string, unknown> | undefined)?.password;
        await vault.profiles.remove(name);
        // Only the entry Hecate made for this profile (--store keyring) is cleared; a keyring:
        // reference the user wrote points at their own item and is left alone.
        if (pw === hecateKeyringRef(vault.id, name)) {
          if (!(await clearFromKeyring(vault.id, name, ctx.io.env))) {
            await ctx.warn(
              `the OS keyring entry of "${name}" could not be removed; remove it with ` +
                keyringClearCommand(vault.id, name),
            );
          }
        }
        await ctx.io.out(`Removed profile "${name}"\n`);
      }),
  );

  server.addCommand(
    new Command("history")
      .argument("<name>", "profile name")
      .description(
        "list the versions of a profile's secrets: version, time, actor, reason (no value)",
      )
      .option("--json", "print JSON")
      .action(async (name, opts) => {
        const list = await (await ctx.unlock()).profiles.history(name);
        const lines = list.map((v) =>
          `${String(v.version).padStart(4)}${v.current ? "*" : " "}  ${v.time}  ${
            v.actor.padEnd(16)
          }  ${v.reason}\n`
        ).join("");
        await printJsonOrLines(ctx, opts.json ?? false, list, lines);
      }),
  );

  server.addCommand(
    new Command("rollback")
      .argument("<name>", "profile name")
      .requiredOption("--version <n>", "the kept version to make current", parsePositiveInt)
      .option(
        "--on-server",
        "also set the restored password on the database server (as rotate-password does)",
      )
      .option("--admin <profile>", "with --on-server: change it with this administrator profile")
      .description(
        "make a kept previous version of a profile's secrets current (stored secrets only)",
      )
      .action(async (name, opts) => {
        const vault = await ctx.unlock();
        const to = await vault.profiles.rollback(name, opts.version, {
          onServer: opts.onServer ?? false,
          admin: opts.admin,
        });
        await ctx.io.out(
          `Profile "${name}": version ${opts.version} restored as version ${to}${
            opts.onServer ? ", on the server too" : ""
          }\n`,
        );
        if (!opts.onServer) {
          await ctx.io.err(
            `hecate: note: only the vault changed; if the database server's password was ` +
              `rotated since, set it back there with --on-server\n`,
          );
        }
      }),
  );

  server.addCommand(
    new Command("rotate-password")
      .argument("<name>", "profile name")
      .option("--length <n>", "length of the new password (16-128, default 32)", parsePositiveInt)
      .option(
        "--admin <profile>",
        "change the login with this administrator profile's login (same engine) instead of its own",
      )
      .description(
        "generate a new password, change it on the server with the profile's login, prove a " +
          "fresh login, and store it as the new version (PostgreSQL, MySQL/MariaDB, SQL Server)",
      )
      .action(async (name, opts) => {
        const vault = await ctx.unlock();
        const v = await vault.profiles.rotatePassword(name, {
          length: opts.length,
          admin: opts.admin,
        });
        await ctx.io.out(`Profile "${name}": password rotated on the server (version ${v})\n`);
      }),
  );

  server.addCommand(
    new Command("test")
      .argument("<name>", "profile name")
      .description(
        "check each secret source, connect, run a round trip, and print the latencies",
      )
      .action(async (name) => {
        const vault = await ctx.unlock();
        await testProfile(ctx, vault, name);
      }),
  );

  return server;
}

async function testProfile(ctx: CliContext, vault: Vault, name: string): Promise<void> {
  // Each secret source first, so a failing one is seen even when failover hides it.
  for (const h of await vault.sourceHealth(name)) {
    await ctx.io.out(
      `  source ${h.field} ${h.ref} (${h.title}): ${h.ok ? "ok" : "FAIL"}, ${
        h.latencyMs.toFixed(1)
      } ms${h.detail ? `, ${h.detail}` : ""}\n`,
    );
  }
  const t0 = performance.now();
  // Tunnelled profiles report each hop as it completes, so a failure shows where it stopped.
  const lines: Promise<void>[] = [];
  const conn = await vault.connect(name, {
    onStep: (s) => lines.push(ctx.io.out(`${stepLine(s)}\n`)),
  }).finally(() => Promise.all(lines));
  const connectMs = performance.now() - t0;
  try {
    const rtt = await conn.ping();
    await ctx.io.out(
      `ok: ${name}: connected in ${connectMs.toFixed(1)} ms, round trip ${rtt.toFixed(1)} ms\n`,
    );
  } finally {
    await conn.close();
  }
}

/** One line of `server test` for a tunnel step. */
function stepLine(s: Parameters<NonNullable<ConnectOptions["onStep"]>>[0]): string {
  const ms = `${s.ms.toFixed(1)} ms`;
  if (!("hop" in s)) {
    if (s.step === "tls") return `  tls ${s.detail} ${s.label}: handshake ok, ${ms}`;
    return `  database login via ${s.label}: ok, ${ms}`;
  }
  const hop = `  ssh hop ${s.hop + 1} ${s.label}`;
  if (s.step === "host key") return `${hop}: host key ok, ${s.detail}`;
  if (s.step === "forward") return `${hop}: forward ${s.detail}: ok, ${ms}`;
  return `${hop}: ${s.step} ok, ${ms}`;
}
