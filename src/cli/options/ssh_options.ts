/**
 * The SSH tunnel flags of `server add` and `server edit`: the bastion (`--ssh`), jump hosts in
 * path order (`--ssh-jump`), how to log in (password by default, `--ssh-key`, `--ssh-agent`), host
 * key pins and accept-new. SSH passwords and key passphrases come from hidden prompts or
 * `--ssh-secret-stdin` (one line per hop that needs one, in path order), never from argv.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { HecateError } from "../../errors.ts";
import {
  FINGERPRINT,
  type SecretValue,
  type SshAuth,
  type SshHop,
  type SshProfile,
} from "../../profile.ts";
import type { CliContext } from "../context.ts";
import { collect, parsePositiveInt } from "../parse.ts";
import { profileSecret } from "../secrets.ts";

/** The parsed SSH flags (commander's camel-case names). */
export interface SshFlags {
  /** `--ssh USER@HOST[:PORT]`, or false for `--no-ssh` (edit). */
  ssh?: string | false;
  sshJump?: string[];
  sshKey?: string;
  sshAgent?: boolean;
  sshHostKey?: string[];
  /** true for `--ssh-accept-new`, false for `--no-ssh-accept-new` (edit). */
  sshAcceptNew?: boolean;
  sshKnownHosts?: string;
  sshKeepalive?: number;
  sshSecretStdin?: boolean;
}

/**
 * Adds the SSH flags to `server add` or `server edit`.
 *
 * @param cmd The command.
 * @param edit Whether to add the edit-only negations (`--no-ssh`, `--no-ssh-accept-new`).
 * @returns The same command.
 */
export function addSshOptions<T extends Command<[string]>>(cmd: T, edit: boolean): T {
  cmd
    .option("--ssh <user@host[:port]>", "reach the database through an SSH tunnel via this host")
    .option(
      "--ssh-jump <user@host[:port]>",
      "an SSH jump host before --ssh (repeatable, in path order)",
      collect,
    )
    .option("--ssh-key <file>", "log in to the SSH hosts with this private key")
    .option("--ssh-agent", "log in to the SSH hosts with the keys of ssh-agent (SSH_AUTH_SOCK)")
    .option(
      "--ssh-host-key <[host:port=]SHA256:...>",
      "pin an SSH host key fingerprint (bare: the --ssh host; repeatable)",
      collect,
    )
    .option("--ssh-accept-new", "pin unknown SSH host keys on first use")
    .option("--ssh-known-hosts <file>", "known_hosts file (default: ~/.ssh/known_hosts)")
    .option("--ssh-keepalive <ms>", "SSH keepalive interval in milliseconds", parsePositiveInt);
  if (edit) {
    cmd.option("--no-ssh", "remove the SSH tunnel").option(
      "--no-ssh-accept-new",
      "stop pinning unknown SSH host keys",
    );
  }
  return cmd;
}

/**
 * Adds `--ssh-secret-stdin`, which help lists with the other secret flags rather than with the
 * tunnel flags of {@link addSshOptions}.
 *
 * @param cmd The command.
 * @returns The same command.
 */
export function addSshSecretOption<T extends Command<[string]>>(cmd: T): T {
  return cmd.option(
    "--ssh-secret-stdin",
    "read SSH passwords / key passphrases from standard input, one line per hop",
  ) as T;
}

/**
 * Parses `USER@HOST[:PORT]` (an IPv6 address in brackets).
 *
 * @param spec The flag value.
 * @param flag The flag name, for the error.
 * @returns User, host and port (undefined: 22).
 * @throws {HecateError} `usage` when malformed.
 */
export function parseSshTarget(
  spec: string,
  flag = "--ssh",
): { user: string; host: string; port?: number } {
  const m = /^([^@\s]+)@(\[[^\]]+\]|[^:@\s\[\]]+)(?::(\d{1,5}))?$/.exec(spec);
  const port = m?.[3] === undefined ? undefined : Number(m[3]);
  if (!m || (port !== undefined && (port < 1 || port > 65535))) {
    throw new HecateError("usage", `${flag} takes USER@HOST[:PORT], not "${spec.slice(0, 80)}"`);
  }
  const host = m[2]!.replace(/^\[(.*)\]$/, "$1");
  return { user: m[1]!, host, ...(port !== undefined ? { port } : {}) };
}

/**
 * Applies `--ssh-host-key` values to hops: a bare fingerprint pins the last hop, `HOST[:PORT]=`
 * the hop with that host (and port).
 */
function applyPins(hops: SshHop[], pins: readonly string[]): void {
  for (const pin of pins) {
    const eq = pin.lastIndexOf("=");
    const fp = eq < 0 ? pin : pin.slice(eq + 1);
    if (!FINGERPRINT.test(fp)) {
      throw new HecateError(
        "usage",
        `--ssh-host-key takes [HOST:PORT=]SHA256:<43 base64 characters>, not "${pin.slice(0, 80)}"`,
      );
    }
    let target: SshHop | undefined;
    if (eq < 0) {
      target = hops.at(-1);
    } else {
      const where = pin.slice(0, eq);
      const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(where);
      const host = m?.[1]?.replace(/^\[(.*)\]$/, "$1");
      const port = m?.[2] === undefined ? undefined : Number(m[2]);
      const hits = hops.filter((h) =>
        h.host === host && (port === undefined || (h.port ?? 22) === port)
      );
      if (hits.length !== 1) {
        throw new HecateError(
          "usage",
          `--ssh-host-key ${where}=...: ${
            hits.length ? "several hops match" : "no SSH hop has that host"
          }`,
        );
      }
      target = hits[0];
    }
    if (target) target.hostKey = fp;
  }
}

function authOf(flags: SshFlags): { auth: SshAuth; keyFile?: string } | undefined {
  if (flags.sshKey !== undefined && flags.sshAgent) {
    throw new HecateError("usage", "Give either --ssh-key or --ssh-agent, not both");
  }
  if (flags.sshKey !== undefined) return { auth: "key", keyFile: flags.sshKey };
  if (flags.sshAgent) return { auth: "agent" };
  return undefined;
}

function hopFrom(spec: string, flag: string, auth: { auth: SshAuth; keyFile?: string }): SshHop {
  const t = parseSshTarget(spec, flag);
  return { ...t, ...auth };
}

/** What the flags change: the new tunnel (null: remove it) and the secrets to store or drop. */
export interface SshChange {
  ssh: SshProfile | null;
  secrets: Record<string, SecretValue | null>;
}

/**
 * Gives one hop's secret (an SSH password or a key's pass phrase), asked with this label. The CLI
 * reads a hidden prompt or a stdin line; the web console, its form.
 */
export type HopSecretReader = (label: string) => Promise<string>;

/**
 * The CLI's reader: `--ssh-secret-stdin` lines, else hidden prompts.
 *
 * @param ctx The invocation context.
 * @param fromStdin Whether `--ssh-secret-stdin` was given.
 * @returns The reader.
 */
export function cliHopSecrets(ctx: CliContext, fromStdin: boolean): HopSecretReader {
  return (label) => profileSecret(ctx.io, ctx.stdin, fromStdin, label);
}

/** Asks for every hop secret the tunnel needs, in path order. */
async function hopSecrets(
  read: HopSecretReader,
  name: string,
  ssh: SshProfile,
): Promise<Record<string, SecretValue>> {
  const out: Record<string, SecretValue> = {};
  for (const [i, h] of ssh.hops.entries()) {
    const who = `${h.user}@${h.host}:${h.port ?? 22}`;
    if (h.auth === "password") {
      const value = await read(`SSH password for ${who} (${name}):`);
      out[`ssh.${i}.password`] = { value };
    } else if (h.auth === "key") {
      // Only encrypted keys have a passphrase to store; check it now, not at the first connect.
      const { keyIsEncrypted, checkKeyPassphrase } = await import("../../tunnel/keys.ts");
      if (await keyIsEncrypted(h.keyFile!)) {
        const value = await read(`Passphrase of ${h.keyFile} (${name}):`);
        await checkKeyPassphrase(h.keyFile!, value);
        out[`ssh.${i}.passphrase`] = { value };
      }
    }
  }
  return out;
}

function anySshFlag(f: SshFlags): boolean {
  return f.ssh !== undefined || f.sshJump !== undefined || f.sshKey !== undefined ||
    f.sshAgent !== undefined || f.sshHostKey !== undefined || f.sshAcceptNew !== undefined ||
    f.sshKnownHosts !== undefined || f.sshKeepalive !== undefined ||
    f.sshSecretStdin !== undefined;
}

function settingsFrom(flags: SshFlags, base: Partial<SshProfile> = {}): Partial<SshProfile> {
  const out: Partial<SshProfile> = { ...base };
  delete out.hops;
  if (flags.sshAcceptNew === true) out.acceptNew = true;
  if (flags.sshAcceptNew === false) delete out.acceptNew;
  if (flags.sshKnownHosts !== undefined) out.knownHostsFile = flags.sshKnownHosts;
  if (flags.sshKeepalive !== undefined) out.keepaliveMs = flags.sshKeepalive;
  return out;
}

/**
 * The tunnel for `server add`, with its secrets, or undefined without `--ssh`.
 *
 * @param read Gives each hop's secret (see {@link cliHopSecrets}).
 * @param name Profile name.
 * @param flags Parsed flags.
 * @returns The tunnel and its secrets.
 * @throws {HecateError} `usage` for malformed or inconsistent flags.
 */
export async function sshForAdd(
  read: HopSecretReader,
  name: string,
  flags: SshFlags,
): Promise<{ ssh: SshProfile; secrets: Record<string, SecretValue> } | undefined> {
  if (typeof flags.ssh !== "string") {
    if (anySshFlag(flags)) throw new HecateError("usage", "The --ssh-* options need --ssh");
    return undefined;
  }
  const auth = authOf(flags) ?? { auth: "password" as const };
  const hops = [
    ...(flags.sshJump ?? []).map((j) => hopFrom(j, "--ssh-jump", auth)),
    hopFrom(flags.ssh, "--ssh", auth),
  ];
  applyPins(hops, flags.sshHostKey ?? []);
  const ssh: SshProfile = { hops, ...settingsFrom(flags) };
  return { ssh, secrets: await hopSecrets(read, name, ssh) };
}

/**
 * What `server edit` changes in the tunnel, or undefined when no SSH flag was given.
 *
 * `--ssh` restates the path as `add` does (jumps only from `--ssh-jump`, password unless
 * `--ssh-key`/`--ssh-agent`); without it, `--ssh-jump`, `--ssh-key` and `--ssh-agent` change the
 * current tunnel's jumps or login. Either way every hop's secret is asked for again. Pins of hops
 * that stay (same host and port) are kept.
 *
 * @param read Gives each hop's secret (see {@link cliHopSecrets}).
 * @param name Profile name.
 * @param flags Parsed flags.
 * @param current The profile's current tunnel and secret names.
 * @returns The change.
 */
export async function sshForEdit(
  read: HopSecretReader,
  name: string,
  flags: SshFlags,
  current: { ssh?: SshProfile | undefined; secretNames: readonly string[] },
): Promise<SshChange | undefined> {
  if (!anySshFlag(flags)) return undefined;
  const dropOld: Record<string, null> = {};
  for (const k of current.secretNames) if (k.startsWith("ssh.")) dropOld[k] = null;
  if (flags.ssh === false) {
    const { ssh: _, ...rest } = flags;
    if (anySshFlag(rest)) {
      throw new HecateError("usage", "--no-ssh cannot be combined with other --ssh-* options");
    }
    return { ssh: null, secrets: dropOld };
  }
  const base = current.ssh;
  const rebuild = flags.ssh !== undefined || flags.sshJump !== undefined ||
    flags.sshKey !== undefined || flags.sshAgent !== undefined;
  if (!base && flags.ssh === undefined) {
    throw new HecateError("usage", `Profile "${name}" has no SSH tunnel: give --ssh to add one`);
  }
  let hops: SshHop[];
  if (rebuild) {
    const last = base?.hops.at(-1);
    const auth = authOf(flags) ??
      (flags.ssh !== undefined || !last
        ? { auth: "password" as const }
        : { auth: last.auth, ...(last.keyFile ? { keyFile: last.keyFile } : {}) });
    const target = flags.ssh !== undefined ? hopFrom(flags.ssh, "--ssh", auth) : {
      host: last!.host,
      ...(last!.port ? { port: last!.port } : {}),
      user: last!.user,
      ...auth,
    };
    const jumps = flags.sshJump !== undefined
      ? flags.sshJump.map((j) => hopFrom(j, "--ssh-jump", auth))
      : flags.ssh !== undefined
      ? []
      : base!.hops.slice(0, -1).map((h) => ({
        host: h.host,
        ...(h.port ? { port: h.port } : {}),
        user: h.user,
        ...auth,
      }));
    hops = [...jumps, target];
    for (const h of hops) {
      const same = base?.hops.find((o) => o.host === h.host && (o.port ?? 22) === (h.port ?? 22));
      if (same?.hostKey) h.hostKey = same.hostKey;
    }
  } else {
    hops = base!.hops.map((h) => ({ ...h }));
  }
  applyPins(hops, flags.sshHostKey ?? []);
  const ssh: SshProfile = { hops, ...settingsFrom(flags, base) };
  if (!rebuild && !flags.sshSecretStdin) return { ssh, secrets: {} };
  const fresh = await hopSecrets(read, name, ssh);
  return { ssh, secrets: { ...dropOld, ...fresh } };
}
