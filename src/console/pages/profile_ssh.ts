/**
 * The profile form's SSH tunnel part: the fields of `server add --ssh...` (target, jump hosts,
 * key file or ssh-agent, host key pins, accept-new, known_hosts, keepalive) and one write-only
 * input for the hops' passwords or key pass phrase. The form is turned into the CLI's flags and
 * handed to the CLI's own code (src/cli/options/ssh_options.ts), so the same input gives the same
 * tunnel and the same messages.
 *
 * @module
 */

import { HecateError } from "../../errors.ts";
import type { SecretValue, SshHop, SshProfile } from "../../profile.ts";
import {
  type HopSecretReader,
  type SshFlags,
  sshForAdd,
  sshForEdit,
} from "../../cli/options/ssh_options.ts";
import { type Html, html } from "../html.ts";

/** One line per entry, blanks dropped. */
function lines(text: string | undefined): string[] {
  return (text ?? "").split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
}

function hostPort(h: SshHop): string {
  const host = h.host.includes(":") ? `[${h.host}]` : h.host;
  return h.port ? `${host}:${h.port}` : host;
}

/**
 * The form values that show a tunnel (empty strings when there is none).
 *
 * @param ssh The profile's tunnel.
 * @returns Values by input name.
 */
export function sshValues(ssh: SshProfile | undefined): Record<string, string> {
  const last = ssh?.hops.at(-1);
  if (!ssh || !last) return {};
  return {
    ssh_target: `${last.user}@${hostPort(last)}`,
    ssh_jumps: ssh.hops.slice(0, -1).map((h) => `${h.user}@${hostPort(h)}`).join("\n"),
    ssh_key: last.auth === "key" ? last.keyFile ?? "" : "",
    ssh_agent: last.auth === "agent" ? "on" : "",
    ssh_host_keys: ssh.hops.filter((h) => h.hostKey).map((h) => `${hostPort(h)}=${h.hostKey}`)
      .join("\n"),
    ssh_accept_new: ssh.acceptNew ? "on" : "",
    ssh_known_hosts: ssh.knownHostsFile ?? "",
    ssh_keepalive: ssh.keepaliveMs ? String(ssh.keepaliveMs) : "",
  };
}

/**
 * The SSH inputs, prefilled from `values` (the hop secret never is).
 *
 * @param values Form values (see {@link sshValues}).
 * @returns The fieldset.
 */
export function sshFields(values: Record<string, string>): Html {
  const v = (k: string) => values[k] ?? "";
  const checked = (k: string) => v(k) ? "checked" : "";
  return html`<details class="more ssh" ${v("ssh_target") ? "open" : ""}>
<summary>SSH tunnel (optional, like --ssh)</summary>
<input type="hidden" name="ssh_form" value="1"><div class="grid">
<label>SSH host (USER@HOST[:PORT]; empty: no tunnel) <input name="ssh_target" value="${
    v("ssh_target")
  }"></label>
<label>Jump hosts before it (one per line, in path order) <textarea name="ssh_jumps" rows="2">${
    v("ssh_jumps")
  }</textarea></label>
<label>Key file (empty: password login) <input name="ssh_key" value="${v("ssh_key")}"></label>
<label class="check"><input type="checkbox" name="ssh_agent" ${
    checked("ssh_agent")
  }> Log in with ssh-agent</label>
<label>SSH password or key pass phrase (write-only; every hop that needs one)
<input type="password" name="ssh_secret" autocomplete="new-password"></label>
<label>Host key pins ([HOST:PORT=]SHA256:..., one per line) <textarea name="ssh_host_keys" rows="2">${
    v("ssh_host_keys")
  }</textarea></label>
<label class="check"><input type="checkbox" name="ssh_accept_new" ${
    checked("ssh_accept_new")
  }> Pin unknown host keys on first use</label>
<label>known_hosts file (default ~/.ssh/known_hosts) <input name="ssh_known_hosts" value="${
    v("ssh_known_hosts")
  }"></label>
<label>Keepalive (ms) <input name="ssh_keepalive" inputmode="numeric" value="${
    v("ssh_keepalive")
  }"></label>
</div></details>`;
}

function keepalive(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) {
    throw new HecateError("usage", `--ssh-keepalive "${text}": must be a positive whole number`);
  }
  return n;
}

/** The hop secrets come from the form's one input; a hop that needs one without it is refused. */
function formSecrets(form: Record<string, string>): HopSecretReader {
  return (label) => {
    const value = form.ssh_secret ?? "";
    if (!value) {
      return Promise.reject(
        new HecateError("no_credential", `No SSH secret given: ${label.replace(/:$/, "")}`),
      );
    }
    return Promise.resolve(value);
  };
}

/**
 * The tunnel of an add form, or undefined when the form has none.
 *
 * @param form The posted form.
 * @param name The profile's name.
 * @returns The tunnel and its secrets.
 * @throws {HecateError} The CLI's `usage` errors; `no_credential` when a hop secret is missing.
 */
export async function sshAdd(
  form: Record<string, string>,
  name: string,
): Promise<{ ssh: SshProfile; secrets: Record<string, SecretValue> } | undefined> {
  const flags: SshFlags = {};
  const target = form.ssh_target?.trim();
  if (target) flags.ssh = target;
  if (lines(form.ssh_jumps).length) flags.sshJump = lines(form.ssh_jumps);
  if (form.ssh_key?.trim()) flags.sshKey = form.ssh_key.trim();
  if (form.ssh_agent) flags.sshAgent = true;
  if (lines(form.ssh_host_keys).length) flags.sshHostKey = lines(form.ssh_host_keys);
  if (form.ssh_accept_new) flags.sshAcceptNew = true;
  if (form.ssh_known_hosts?.trim()) flags.sshKnownHosts = form.ssh_known_hosts.trim();
  if (form.ssh_keepalive?.trim()) flags.sshKeepalive = keepalive(form.ssh_keepalive.trim());
  if (form.ssh_secret) flags.sshSecretStdin = true;
  return await sshForAdd(formSecrets(form), name, flags);
}

/**
 * What an edit form changes in the tunnel, or undefined for nothing. Fields equal to what the
 * page showed are not changes; a changed host, jump list or login restates the path as
 * `server edit --ssh ... --ssh-jump ...` does (pins of hops that stay are kept, every hop's
 * secret is asked again); an emptied SSH host removes the tunnel (`--no-ssh`); a typed secret
 * alone replaces the hops' secrets.
 *
 * @param form The posted form (with `ssh_form`; without it the tunnel is left alone).
 * @param name The profile's name.
 * @param current The tunnel now and the profile's secret names.
 * @returns The tunnel (null: removed) and the secrets to set or drop.
 */
export async function sshEdit(
  form: Record<string, string>,
  name: string,
  current: { ssh?: SshProfile | undefined; secretNames: readonly string[] },
): Promise<{ ssh: SshProfile | null; secrets: Record<string, SecretValue | null> } | undefined> {
  if (form.ssh_form !== "1") return undefined;
  const was = sshValues(current.ssh);
  const now = (k: string) => (form[k] ?? "").trim();
  const same = (k: string) => now(k) === (was[k] ?? "");
  const flags: SshFlags = {};
  if (!now("ssh_target") && was.ssh_target) {
    flags.ssh = false;
  } else {
    if (!same("ssh_target") || !same("ssh_jumps") || !same("ssh_key") || !same("ssh_agent")) {
      if (now("ssh_target")) flags.ssh = now("ssh_target");
      flags.sshJump = lines(form.ssh_jumps);
      if (now("ssh_key")) flags.sshKey = now("ssh_key");
      if (now("ssh_agent")) flags.sshAgent = true;
    }
    const oldPins = new Set(lines(was.ssh_host_keys));
    const pins = lines(form.ssh_host_keys).filter((p) => !oldPins.has(p));
    if (pins.length) flags.sshHostKey = pins;
    if (!same("ssh_accept_new")) flags.sshAcceptNew = Boolean(now("ssh_accept_new"));
    if (!same("ssh_known_hosts") && now("ssh_known_hosts")) {
      flags.sshKnownHosts = now("ssh_known_hosts");
    }
    if (!same("ssh_keepalive") && now("ssh_keepalive")) {
      flags.sshKeepalive = keepalive(now("ssh_keepalive"));
    }
    if (form.ssh_secret) flags.sshSecretStdin = true;
  }
  // Emptying the known_hosts file or keepalive goes back to the default (no CLI flag does that).
  const clear = flags.ssh === false ? [] : [
    ...(!same("ssh_known_hosts") && !now("ssh_known_hosts") ? ["knownHostsFile" as const] : []),
    ...(!same("ssh_keepalive") && !now("ssh_keepalive") ? ["keepaliveMs" as const] : []),
  ];
  const change = Object.keys(flags).length
    ? await sshForEdit(formSecrets(form), name, flags, current)
    : undefined;
  if (!clear.length || !current.ssh) return change;
  const ssh = { ...(change?.ssh ?? current.ssh) };
  for (const k of clear) delete ssh[k];
  return { ssh, secrets: change?.secrets ?? {} };
}
