/**
 * Backups on disk: creating bundles of the vault and the audit trail in `HOME/backups/`, listing
 * them, verifying one with the master password, restoring one (after keeping the current vault),
 * and automatic bundles before destructive operations with a retention limit.
 *
 * @module
 */

import { highestWritten } from "../access/vault_generation.ts";
import { saveVault } from "../api/vault_write.ts";
import { type Actor, type AuditSink, startChain, withAuditLock } from "../audit/log.ts";
import { withChainKey } from "../audit/meta.ts";
import { trailFiles } from "../audit/segments.ts";
import { STATE_FILE } from "../audit/state.ts";
import { trailVaultFacts } from "../audit/written_generation.ts";
import { HecateError } from "../errors.ts";
import { MIN_KDF_ITERATIONS } from "../kdf.ts";
import { parseSplit, splitVaultFile } from "../vault/format.ts";
import { VAULT_FILE, VaultStore } from "../vault/store.ts";
import { UnlockedVault } from "../vault/vault.ts";
import { type BundleFile, type BundleManifest, BundleOpener, sealBundle } from "./bundle.ts";

/** Directory of bundles inside the home directory. */
export const BACKUP_DIR = "backups";
/** File name ending of bundles. */
export const BUNDLE_SUFFIX = ".hecate-backup";
/** Automatic bundles kept when the vault does not say otherwise. */
export const DEFAULT_KEEP = 10;
/** The vault meta key holding the number of automatic bundles to keep. */
export const KEEP_META_KEY = "backupKeep";

/**
 * Reports the steps of a long operation (shown on a terminal).
 *
 * @example
 * ```ts ignore
 * await vault.backups.create({ progress: (step, done, total) => console.error(step, done, total) });
 * ```
 */
export type Progress = (step: string, done: number, total: number) => void;

/**
 * A bundle found by {@link listBackups}.
 *
 * @example
 * ```ts ignore
 * for (const b of await listBackups()) console.log(b.created, b.reason, b.size);
 * ```
 */
export interface BackupEntry {
  /** File name. */
  name: string;
  /** Full path. */
  path: string;
  /** Size in bytes. */
  size: number;
  /** When it was made (from its name; the file's time if the name has none). */
  created: string;
  /** Why it was made (from its name): `manual`, `profile-remove`, `restore`, `import`, ... */
  reason: string;
  /** Whether it was made automatically (and so counts against the retention limit). */
  automatic: boolean;
}

const NAME_RE = /^(auto-)?(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z)-([a-z0-9-]+)\.hecate-backup$/;

function stamp(now: Date): string {
  return now.toISOString().replace(/[:.]/g, "-");
}

/**
 * The audit trail's segments: the closed ones in `audit.segments/` and the active `audit.jsonl`,
 * read under the audit lock so that no rotation moves a file meanwhile. Never `audit.state`: it
 * holds the current chain key, with which its holder could forge every later entry.
 */
async function auditFiles(home: string): Promise<BundleFile[]> {
  return await withAuditLock(home, async () => {
    const out: BundleFile[] = [];
    for (const seg of await trailFiles(home)) {
      let bytes: Uint8Array<ArrayBuffer>;
      try {
        bytes = await Deno.readFile(seg.path);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) continue;
        throw e;
      }
      // A line being appended right now is left for the next backup.
      out.push({ name: seg.name, bytes: bytes.slice(0, bytes.lastIndexOf(0x0a) + 1) });
    }
    return out;
  });
}

/** Writes a file durably and atomically with mode 0600; refuses to replace an existing one. */
export async function writeNew(path: string, bytes: Uint8Array): Promise<void> {
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) || "/" : ".";
  const temp = `${dir}/.tmp-${crypto.randomUUID()}`;
  const f = await Deno.open(temp, { createNew: true, write: true, mode: 0o600 });
  try {
    let n = 0;
    while (n < bytes.length) n += await f.write(bytes.subarray(n));
    await f.sync();
  } finally {
    f.close();
  }
  try {
    await Deno.lstat(path);
    await Deno.remove(temp);
    throw new HecateError("already_exists", `"${path}" already exists`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  await Deno.rename(temp, path);
}

/** Options for {@link createBackup}. */
export interface CreateBackupOptions {
  /** Why: `manual`, or the operation an automatic bundle precedes. @default {"manual"} */
  reason?: string;
  /** Where to write it. @default {HOME/backups/<time>-<reason>.hecate-backup} */
  output?: string | undefined;
  /** Whether this is an automatic bundle (named `auto-...`, pruned by retention). */
  automatic?: boolean;
  /** Progress reports. */
  progress?: Progress | undefined;
  /** Set when the caller holds the vault lock already. */
  locked?: boolean;
}

/**
 * What {@link createBackup} made.
 *
 * @example
 * ```ts ignore
 * const { path, size } = await vault.backups.create();
 * ```
 */
export interface CreatedBackup {
  /** Where the bundle was written. */
  path: string;
  /** Its size. */
  size: number;
  /** Its manifest. */
  manifest: BundleManifest;
}

/**
 * Makes a bundle of the vault file as it is on disk and the audit trail.
 *
 * @param home The home directory.
 * @param state The unlocked vault (its root key seals the bundle).
 * @param options Reason, output, progress.
 * @returns The bundle's path, size and manifest.
 * @throws {HecateError} `vault_integrity` if the file on disk does not open with this vault's
 * key, `already_exists` if the output file exists.
 */
export async function createBackup(
  home: string,
  state: UnlockedVault,
  options: CreateBackupOptions = {},
): Promise<CreatedBackup> {
  const store = new VaultStore(home);
  const reason = options.reason ?? "manual";
  const progress = options.progress ?? (() => {});
  const work = async () => {
    progress("reading the vault and the audit trail", 0, 3);
    const vaultBytes = await store.read();
    // The bundle is sealed with the key of the file it carries, checked here.
    const current = await state.reload(vaultBytes);
    const files = [{ name: VAULT_FILE, bytes: vaultBytes }, ...await auditFiles(home)];
    progress("encrypting", 1, 3);
    const now = new Date();
    const { bytes, manifest } = await sealBundle(current, files, {
      reason,
      generation: current.generation,
      now,
    });
    progress("writing", 2, 3);
    let path = options.output;
    if (!path) {
      const dir = `${home}/${BACKUP_DIR}`;
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      path = `${dir}/${options.automatic ? "auto-" : ""}${stamp(now)}-${reason}${BUNDLE_SUFFIX}`;
    }
    await writeNew(path, bytes);
    progress("done", 3, 3);
    return { path, size: bytes.length, manifest };
  };
  const made = options.locked ? await work() : await store.withLock(work);
  if (options.automatic) await pruneAutomatic(home, retentionOf(state));
  return made;
}

/**
 * The number of automatic bundles a vault keeps (its meta `backupKeep`, else 10).
 *
 * @param state The unlocked vault.
 * @returns The limit.
 */
export function retentionOf(state: UnlockedVault): number {
  const v = state.meta[KEEP_META_KEY];
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 1 ? v : DEFAULT_KEEP;
}

/** Deletes the oldest automatic bundles beyond `keep`. */
async function pruneAutomatic(home: string, keep: number): Promise<void> {
  const auto = (await listBackups(home)).filter((b) => b.automatic);
  for (const b of auto.slice(0, Math.max(0, auto.length - keep))) {
    await Deno.remove(b.path).catch(() => {});
  }
}

/**
 * Lists the bundles in `HOME/backups/`, oldest first. Needs no password (names and sizes only).
 *
 * @param home The home directory.
 * @returns The bundles.
 */
export async function listBackups(home: string): Promise<BackupEntry[]> {
  const dir = `${home}/${BACKUP_DIR}`;
  const out: BackupEntry[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile || !e.name.endsWith(BUNDLE_SUFFIX)) continue;
      const path = `${dir}/${e.name}`;
      const info = await Deno.stat(path);
      const m = NAME_RE.exec(e.name);
      const created = m
        ? m[2]!.replace(/^(.{10}T)(\d\d)-(\d\d)-(\d\d)-(\d{3})Z$/, "$1$2:$3:$4.$5Z")
        : (info.mtime ?? new Date(0)).toISOString();
      out.push({
        name: e.name,
        path,
        size: info.size,
        created,
        reason: m ? m[3]! : "unknown",
        automatic: Boolean(m?.[1]),
      });
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort((a, b) => a.created.localeCompare(b.created) || a.name.localeCompare(b.name));
}

/** A verified bundle. */
export interface VerifiedBackup {
  /** Its manifest. */
  manifest: BundleManifest;
  /** Its files. */
  files: BundleFile[];
  /** The vault inside, unlocked. */
  vault: UnlockedVault;
}

/**
 * Reads a bundle file.
 *
 * @param path The file.
 * @returns Its bytes.
 * @throws {HecateError} `usage` when it cannot be read.
 */
export async function readBundleFile(path: string): Promise<Uint8Array<ArrayBuffer>> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "not found" : "cannot be read";
    throw new HecateError("usage", `Backup bundle "${path}" ${why}`, { cause: e });
  }
}

/**
 * Checks a bundle: it authenticates, and the vault inside opens with the password.
 *
 * @param bytes The bundle.
 * @param password The master password (as it was when the bundle was made).
 * @param opener Reused to check several bundles with one password. @default {a new one}
 * @returns The manifest, files and the unlocked vault inside.
 * @throws {HecateError} `auth_failed`, `vault_integrity`, `unsupported_version`.
 */
export async function verifyBackup(
  bytes: Uint8Array<ArrayBuffer>,
  password: string,
  opener: BundleOpener = new BundleOpener(password),
): Promise<VerifiedBackup> {
  const { manifest, files } = await opener.open(bytes);
  const vaultFile = files.find((f) => f.name === VAULT_FILE);
  if (!vaultFile) {
    throw new HecateError("vault_integrity", "Backup bundle is damaged: it holds no vault file");
  }
  const vault = await UnlockedVault.unlock(vaultFile.bytes, password);
  if (vault.id !== manifest.vaultId || vault.generation !== manifest.generation) {
    throw new HecateError("vault_integrity", "Backup bundle is damaged: manifest and vault differ");
  }
  return { manifest, files, vault };
}

/** The vault being replaced, unlocked by its owner (current password and second factor). */
export interface CurrentVault {
  /** Its state at unlock (re-read under the vault lock with its root key). */
  state: UnlockedVault;
  /** The current master password: the restored vault opens with it. */
  password: string;
}

/** Options for {@link restoreBackup}. */
export interface RestoreBackupOptions {
  /** The current vault, when the home has one (it must have been unlocked by its owner). */
  current: CurrentVault | undefined;
  /** Where the `vault.write` record goes. */
  audit: AuditSink;
  /** Who restores. */
  actor: Actor;
  /** Progress reports. */
  progress?: Progress | undefined;
}

/**
 * What {@link restoreBackup} did.
 *
 * @example
 * ```ts ignore
 * const { generation, keptPrevious } = await restoreBackup({ file, password });
 * ```
 */
export interface RestoreResult {
  /** The restored vault's generation (always above every generation written before). */
  generation: number;
  /** Where the previous vault was kept: a bundle, or a directory of raw copies. */
  keptPrevious: string | undefined;
  /**
   * True when the home had no audit trail (no `audit.state`), so a new chain was started with the
   * restore; the bundle's own trail is then kept, read-only, in {@link archivedTrail}.
   */
  newChain: boolean;
  /** Where the bundle's trail was archived when a new chain was started. */
  archivedTrail: string | undefined;
}

/**
 * Restores a verified bundle under the vault lock: keeps the current vault first (a bundle, or raw
 * copies in `backups/previous-<time>/` when there is a file that was not unlocked), then writes
 * the bundle's vault as the next generation, above every generation written here before.
 *
 * Over a current vault, the restored one keeps the current vault's second factor (TOTP secret and
 * remaining recovery codes) and audit chain key, and is rotated under the current password: the
 * bundle brings back profiles, API keys and settings, never an older password, root key, second
 * factor or trail. Bundle audit files are never written into the trail: the restore appends to
 * the current trail; only when the home has no trail at all does it start a new chain, and the
 * bundle's trail is archived in `backups/trail-<time>/`.
 *
 * @param home The home directory (checked).
 * @param verified The verified bundle.
 * @param options The current vault, audit sink, actor, progress.
 * @returns What was done.
 */
export async function restoreBackup(
  home: string,
  verified: VerifiedBackup,
  options: RestoreBackupOptions,
): Promise<RestoreResult> {
  const progress = options.progress ?? (() => {});
  const store = new VaultStore(home);
  return await store.withLock(async () => {
    progress("keeping the current vault", 1, 3);
    const fresh = options.current
      ? await options.current.state.reload(await store.read())
      : undefined;
    const keptPrevious = await keepCurrent(home, store, fresh);
    progress("replacing the vault", 2, 3);
    const restored = verified.vault;
    let newChain = false;
    let archivedTrail: string | undefined;
    if (fresh) {
      restored.meta = withHomeState(restored.meta, fresh.meta);
      const iterations = Math.max(fresh.passwordIterations, MIN_KDF_ITERATIONS);
      await restored.rotate(options.current!.password, iterations);
    } else if (!(await exists(`${home}/${STATE_FILE}`))) {
      archivedTrail = await archiveTrail(home, verified.files);
      restored.meta = withChainKey(restored.meta, await startChain(home));
      newChain = true;
    }
    // Generations only go up: the restored vault is written above every generation this home
    // has written (the kept files, the gate file, and the trail's records, which survive a
    // deleted gate file), so the rollback checks accept it.
    const trail = await trailVaultFacts(home, restored.id, 1, Number.MAX_SAFE_INTEGER);
    const above = Math.max(
      await highestGeneration(store),
      await highestWritten(home, restored.id),
      trail.highestGeneration,
      fresh?.generation ?? 0,
    );
    restored.markSaved(above);
    const generation = await saveVault(store, restored, options.audit, options.actor);
    progress("done", 3, 3);
    return { generation, keptPrevious, newChain, archivedTrail };
  });
}

/** Meta keys that belong to the home, not to a vault file: they never go back with a bundle. */
const HOME_META = ["audit", "totp"] as const;

/** The bundle's meta with the current vault's second factor and chain key (or their absence). */
function withHomeState(
  restored: Record<string, unknown>,
  current: Record<string, unknown>,
): Record<string, unknown> {
  const out = { ...restored };
  for (const k of HOME_META) {
    if (current[k] === undefined) delete out[k];
    else out[k] = current[k];
  }
  return out;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Writes the bundle's trail files (never a chain state) to `backups/trail-<time>/`. */
async function archiveTrail(home: string, files: BundleFile[]): Promise<string | undefined> {
  const trail = files.filter((f) => f.name !== VAULT_FILE && f.name !== STATE_FILE);
  if (trail.length === 0) return undefined;
  const dir = `${home}/${BACKUP_DIR}/trail-${stamp(new Date())}`;
  for (const f of trail) {
    const path = `${dir}/${f.name}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true, mode: 0o700 });
    await writeNew(path, f.bytes);
  }
  return dir;
}

/**
 * The highest generation number in use: the current file's (or one above the kept ones when it
 * cannot be read) and the kept generations'.
 */
async function highestGeneration(store: VaultStore): Promise<number> {
  const kept = (await store.generations())[0]?.generation ?? 0;
  if (!(await store.exists())) return kept;
  try {
    return Math.max(kept, parseSplit(splitVaultFile(await store.read())).body.generation);
  } catch {
    return kept + 1; // damaged: its number is unknown, so keep it under a fresh one
  }
}

/** Keeps the vault being replaced; returns where, or undefined when there was none. */
async function keepCurrent(
  home: string,
  store: VaultStore,
  current: UnlockedVault | undefined,
): Promise<string | undefined> {
  if (current) {
    const made = await createBackup(home, current, {
      reason: "restore",
      automatic: true,
      locked: true,
    });
    return made.path;
  }
  if (!(await store.exists())) return undefined;
  // A file that was not unlocked (damaged, or one that appeared meanwhile): keep its bytes.
  const dir = `${home}/${BACKUP_DIR}/previous-${stamp(new Date())}`;
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  await Deno.copyFile(store.path, `${dir}/${VAULT_FILE}`);
  await Deno.chmod(`${dir}/${VAULT_FILE}`, 0o600);
  return dir;
}
