/**
 * Doctor check: temporary files a killed writer left in the home. A writer creates and renames
 * its temp file within one locked section, so one older than {@link STALE_AFTER_MS} has no live
 * writer. `.audit.state.tmp*` holds an older chain key (it could rewrite the entries after it);
 * `.vault.hecate.tmp-*` is a full copy of a vault, `backups/.tmp-*` an unfinished bundle;
 * `.<state>.json.tmp-*` are torn state files; `agent/s<pid>` and `agent/session.json.<pid>.tmp` are
 * the socket and session file of an unlock agent killed while taking another's place.
 *
 * @module
 */

import { AGENT_DIR, agentPaths } from "../agent/paths.ts";
import { STATE_TEMP } from "../audit/state.ts";
import { BACKUP_DIR } from "../backup/backup.ts";
import { type Finding, shellQuote } from "./finding.ts";

/** A temp file at least this old belongs to no live writer. */
export const STALE_AFTER_MS = 60_000;

const VAULT_TEMP = ".vault.hecate.tmp-";
const STATE_FILE_TEMP = /^\.[a-z]+\.state\.json\.tmp-/;
const BUNDLE_TEMP = ".tmp-";
/** src/agent/handover.ts: the socket bound before the handover, the session file before its rename. */
const AGENT_TEMP = /^(s\d+|session\.json\.\d+\.tmp)$/;

/**
 * Lists leftover temporary files.
 *
 * @param home The home directory (it exists).
 * @param now Current time in ms. @default {Date.now()}
 * @returns One finding per stale temp file.
 */
export async function checkTempFiles(home: string, now = Date.now()): Promise<Finding[]> {
  const findings: Finding[] = [];
  const names: string[] = [];
  for await (const e of Deno.readDir(home)) {
    if (
      e.name.startsWith(VAULT_TEMP) || e.name.startsWith(STATE_TEMP) ||
      STATE_FILE_TEMP.test(e.name)
    ) names.push(e.name);
  }
  // A bundle is written as backups/.tmp-<uuid> and renamed into place (src/backup/backup.ts).
  try {
    for await (const e of Deno.readDir(`${home}/${BACKUP_DIR}`)) {
      if (e.name.startsWith(BUNDLE_TEMP)) names.push(`${BACKUP_DIR}/${e.name}`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const agentDir = agentPaths(home).dir;
  try {
    for await (const e of Deno.readDir(agentDir)) {
      if (AGENT_TEMP.test(e.name)) names.push(`${agentDir.slice(home.length + 1)}/${e.name}`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  for (const name of names.sort()) {
    const path = `${home}/${name}`;
    let mtime: number;
    try {
      mtime = (await Deno.lstat(path)).mtime?.getTime() ?? 0;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue; // a live writer just renamed it
      throw e;
    }
    if (now - mtime < STALE_AFTER_MS) continue;
    findings.push({ check: "temp-files", path, ...whatItIs(name, path) });
  }
  return findings;
}

/** What a leftover temp file is, and how to remove it, by the writer its name belongs to. */
function whatItIs(
  name: string,
  path: string,
): Pick<Finding, "severity" | "message" | "fix"> {
  const rm = `rm ${shellQuote(path)}`;
  if (name.startsWith(STATE_TEMP)) {
    return {
      severity: "warn",
      message: `Leftover audit state temp file "${path}": it holds an older chain key`,
      // Every audited command removes such files under the audit lock before it appends.
      fix: "hecate audit verify (any audited command removes it under the audit lock)",
    };
  }
  if (name.startsWith(VAULT_TEMP)) {
    return {
      severity: "warn",
      message: `Leftover vault temp file "${path}" from a writer that did not finish`,
      fix: `${rm} (the next vault write also removes it)`,
    };
  }
  if (name.startsWith(`${AGENT_DIR}/`)) {
    return {
      severity: "info",
      message: `Leftover unlock agent file "${path}" from an agent killed while taking over`,
      fix: rm,
    };
  }
  if (name.startsWith(`${BACKUP_DIR}/`)) {
    return {
      severity: "warn",
      message: `Leftover backup temp file "${path}": an unfinished bundle`,
      fix: rm,
    };
  }
  return {
    severity: "info",
    message: `Leftover state temp file "${path}" from a writer that did not finish`,
    fix: rm,
  };
}
