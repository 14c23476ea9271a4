/**
 * Doctor check: ownership and permissions of the home directory and everything in it. Unlock
 * refuses a home others can write and a vault file others can read; the other files matter too:
 * kept generations and backups open with the (old) master password, so a reader can guess it
 * offline; `audit.state` and its temp files hold a chain key; state files that others can write
 * let them reset lockout counters or the rollback gate.
 *
 * @module
 */

import { type Finding, type Severity, shellQuote } from "./finding.ts";

/** At most this many entries are looked at, so a huge or looping home cannot stall the doctor. */
const MAX_ENTRIES = 20_000;
/** Depth below the home (backups/trail-<time>/audit.segments/... is 3). */
const MAX_DEPTH = 4;
/** More bad paths than this are reported as one finding with one recursive fix. */
const MAX_LISTED = 8;

/** Files whose contents let a reader attack the master password or the audit chain. */
function holdsKeyMaterial(rel: string): boolean {
  return rel === "vault.hecate" || rel.startsWith("generations/") || rel.startsWith("backups/") ||
    rel.startsWith(".vault.hecate.tmp-") || rel === "audit.state" ||
    rel.startsWith(".audit.state.tmp");
}

interface Problem {
  severity: Severity;
  path: string;
  message: string;
  fix: string;
}

function mode(info: Deno.FileInfo): number | undefined {
  return info.mode === null ? undefined : info.mode & 0o777;
}

/** What is wrong with one entry, if anything. */
function problemOf(path: string, rel: string, info: Deno.FileInfo, uid: number | null): Problem[] {
  const out: Problem[] = [];
  const q = shellQuote(path);
  if (info.isSymlink) {
    out.push({
      severity: "error",
      path,
      message: `"${path}" is a symbolic link: Hecate's files must be regular files in the home`,
      fix: `replace it with the file it points to (or remove it): rm ${q}`,
    });
    return out;
  }
  if (uid !== null && info.uid !== null && info.uid !== uid) {
    out.push({
      severity: "error",
      path,
      message: `"${path}" is owned by another user (uid ${info.uid})`,
      fix: `sudo chown "$(id -un)" ${q}`,
    });
  }
  const m = mode(info);
  if (m === undefined) return out;
  const want = info.isDirectory ? "700" : "600";
  const shown = m.toString(8).padStart(3, "0");
  if ((m & 0o022) !== 0) {
    out.push({
      severity: "error",
      path,
      message: `"${path}" is writable by other users (mode ${shown})`,
      fix: `chmod ${want} ${q}`,
    });
  } else if ((m & 0o077) !== 0) {
    const secret = rel === "" || holdsKeyMaterial(rel);
    out.push({
      severity: secret && rel !== "" ? "error" : "warn",
      path,
      message: rel === ""
        ? `Home "${path}" can be read or listed by other users (mode ${shown})`
        : `"${path}" is readable by other users (mode ${shown})` +
          (secret ? ": it holds key material or a copy of the vault" : ""),
      fix: `chmod ${want} ${q}`,
    });
  }
  return out;
}

/**
 * Checks the home directory and the files and directories in it (not following symbolic links).
 *
 * @param home The home directory (it exists).
 * @param uid This user's id. @default {Deno.uid()}
 * @returns Findings: none when everything is 0700/0600-tight and owned by this user.
 */
export async function checkPermissions(
  home: string,
  uid: number | null = Deno.uid(),
): Promise<Finding[]> {
  const problems: Problem[] = [];
  let seen = 0;
  const visit = async (path: string, rel: string, depth: number): Promise<void> => {
    if (++seen > MAX_ENTRIES) return;
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return; // removed meanwhile (a writer's temp file)
      throw e;
    }
    problems.push(...problemOf(path, rel, info, uid));
    if (!info.isDirectory || depth >= MAX_DEPTH) return;
    const names: string[] = [];
    try {
      for await (const e of Deno.readDir(path)) names.push(e.name);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      throw e;
    }
    for (const name of names.sort()) {
      await visit(`${path}/${name}`, rel === "" ? name : `${rel}/${name}`, depth + 1);
    }
  };
  await visit(home, "", 0);
  const findings: Finding[] = problems.map((p) => ({
    check: "permissions",
    severity: p.severity,
    message: p.message,
    fix: p.fix,
    path: p.path,
  }));
  if (findings.length > MAX_LISTED) {
    const severity = findings.some((f) => f.severity === "error") ? "error" : "warn";
    return [{
      check: "permissions",
      severity,
      message: `${findings.length} paths in "${home}" have unsafe ownership or permissions, ` +
        `e.g. ${problems.slice(0, 3).map((p) => `"${p.path}"`).join(", ")}`,
      fix: `chmod -R go-rwx ${shellQuote(home)}`,
    }];
  }
  if (seen > MAX_ENTRIES) {
    findings.push({
      check: "permissions",
      severity: "info",
      message: `Only the first ${MAX_ENTRIES} entries of "${home}" were checked`,
    });
  }
  return findings;
}
