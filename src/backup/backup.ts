/**
 * Backups on disk: creating bundles of the vault and the audit trail in `HOME/backups/`, listing
 * them, verifying one with the master password, restoring one (after keeping the current vault),
 * and automatic bundles before destructive operations with a retention limit.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { parseBody, splitVaultFile } from "../vault/format.ts";
import { ensureHome } from "../vault/home.ts";
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
 * await vault.backup({ progress: (step, done, total) => console.error(step, done, total) });
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

/** The audit trail files of a home (`audit*`, lock files excepted). */
async function auditFiles(home: string): Promise<BundleFile[]> {
  const out: BundleFile[] = [];
  for await (const e of Deno.readDir(home)) {
    if (!e.isFile || !e.name.startsWith("audit") || e.name.endsWith(".lock")) continue;
    let bytes = await Deno.readFile(`${home}/${e.name}`);
    if (e.name.endsWith(".jsonl")) {
      // A line being appended right now is left for the next backup.
      const last = bytes.lastIndexOf(0x0a);
      bytes = bytes.slice(0, last + 1);
    }
    out.push({ name: e.name, bytes });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** Writes a file durably and atomically with mode 0600; refuses to replace an existing one. */
async function writeNew(path: string, bytes: Uint8Array): Promise<void> {
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
 * const { path, size } = await vault.backup();
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

/** Options for {@link restoreBackup}. */
export interface RestoreBackupOptions {
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
  /** The restored vault's generation. */
  generation: number;
  /** Where the previous vault was kept: a bundle, or a directory of raw copies. */
  keptPrevious: string | undefined;
  /** Audit files restored because they were missing. */
  restoredAuditFiles: string[];
}

/**
 * Restores a bundle: verifies it first (and refuses it if that fails), keeps the current vault
 * (a bundle if it still opens with the password, else raw copies in `backups/previous-<time>/`),
 * then replaces the vault file atomically under the vault lock. The audit trail is append-only:
 * the current one is kept, and audit files from the bundle are written only where none exist.
 *
 * @param home The home directory.
 * @param bytes The bundle.
 * @param password The master password the bundle opens with.
 * @param options Progress.
 * @returns What was done.
 */
export async function restoreBackup(
  home: string,
  bytes: Uint8Array<ArrayBuffer>,
  password: string,
  options: RestoreBackupOptions = {},
): Promise<RestoreResult> {
  const progress = options.progress ?? (() => {});
  progress("verifying the bundle", 0, 3);
  const verified = await verifyBackup(bytes, password);
  await ensureHome(home);
  const store = new VaultStore(home);
  return await store.withLock(async () => {
    progress("keeping the current vault", 1, 3);
    const keptPrevious = await keepCurrent(home, store, password);
    progress("replacing the vault", 2, 3);
    // Generations only go up: the restored vault is written as the next generation (its records
    // unchanged), so the file it replaces is kept under its own number and no kept generation
    // is overwritten.
    const restored = verified.vault;
    restored.markSaved(await highestGeneration(store));
    const { bytes: restoredBytes, generation } = await restored.serialize();
    await store.replace(restoredBytes, generation);
    const restoredAuditFiles: string[] = [];
    for (const f of verified.files) {
      if (f.name === VAULT_FILE) continue;
      try {
        await writeNew(`${home}/${f.name}`, f.bytes);
        restoredAuditFiles.push(f.name);
      } catch (e) {
        if (!(e instanceof HecateError && e.code === "already_exists")) throw e;
      }
    }
    progress("done", 3, 3);
    return { generation, keptPrevious, restoredAuditFiles };
  });
}

/**
 * The highest generation number in use: the current file's (or one above the kept ones when it
 * cannot be read) and the kept generations'.
 */
async function highestGeneration(store: VaultStore): Promise<number> {
  const kept = (await store.generations())[0]?.generation ?? 0;
  if (!(await store.exists())) return kept;
  try {
    return Math.max(kept, parseBody(splitVaultFile(await store.read()).bodyBytes).generation);
  } catch {
    return kept + 1; // damaged: its number is unknown, so keep it under a fresh one
  }
}

/** Keeps the vault being replaced; returns where, or undefined when there was none. */
async function keepCurrent(
  home: string,
  store: VaultStore,
  password: string,
): Promise<string | undefined> {
  if (!(await store.exists())) return undefined;
  let current: UnlockedVault | undefined;
  try {
    current = await UnlockedVault.unlock(await store.read(), password);
  } catch {
    current = undefined; // damaged, or another password: keep the raw bytes instead
  }
  if (current) {
    const made = await createBackup(home, current, {
      reason: "restore",
      automatic: true,
      locked: true,
    });
    return made.path;
  }
  const dir = `${home}/${BACKUP_DIR}/previous-${stamp(new Date())}`;
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  await Deno.copyFile(store.path, `${dir}/${VAULT_FILE}`);
  await Deno.chmod(`${dir}/${VAULT_FILE}`, 0o600);
  return dir;
}
