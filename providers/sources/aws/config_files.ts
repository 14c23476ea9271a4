/**
 * The shared AWS config and credentials files, read as the AWS CLI and SDKs read them:
 * `~/.aws/config` (`AWS_CONFIG_FILE`) with `[default]` and `[profile NAME]` sections, and
 * `~/.aws/credentials` (`AWS_SHARED_CREDENTIALS_FILE`) with `[NAME]` sections. For one profile,
 * a key in the credentials file wins over the same key in the config file.
 *
 * @module
 */

/** The settings of one profile (keys lower-cased, values trimmed). */
export type ProfileSettings = Readonly<Record<string, string>>;

/** Both files, parsed into profiles by name. */
export interface SharedFiles {
  readonly config: ReadonlyMap<string, ProfileSettings>;
  readonly credentials: ReadonlyMap<string, ProfileSettings>;
}

/**
 * Parses an INI text into sections. Comment lines start with `#` or `;`; indented lines after a
 * key with an empty value are a sub-section (e.g. `s3 =`) and are skipped.
 *
 * @param text The file's text.
 * @returns Section name to settings.
 */
export function parseIni(text: string): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  let current: Record<string, string> | undefined;
  let inSub = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      const name = header[1]!.trim();
      current = out.get(name) ?? {};
      out.set(name, current);
      inSub = false;
      continue;
    }
    if (/^\s/.test(raw) && inSub) continue;
    const eq = line.indexOf("=");
    if (!current || eq < 1) continue;
    const key = line.slice(0, eq).trim().toLowerCase();
    const value = line.slice(eq + 1).trim();
    inSub = value === "";
    if (!inSub) current[key] = value;
  }
  return out;
}

function home(env: (name: string) => string | undefined): string {
  return env("HOME") ?? env("USERPROFILE") ?? "";
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
}

/**
 * Reads both shared files (a missing file is an empty one).
 *
 * @param env The environment.
 * @returns The parsed files.
 */
export async function readSharedFiles(
  env: (name: string) => string | undefined,
): Promise<SharedFiles> {
  const configPath = env("AWS_CONFIG_FILE") ?? `${home(env)}/.aws/config`;
  const credsPath = env("AWS_SHARED_CREDENTIALS_FILE") ?? `${home(env)}/.aws/credentials`;
  const [configText, credsText] = await Promise.all([
    readOptional(configPath),
    readOptional(credsPath),
  ]);
  const config = new Map<string, ProfileSettings>();
  for (const [section, values] of parseIni(configText ?? "")) {
    // `[default]` and `[profile NAME]`; `[sso-session x]`, `[services x]` are not profiles.
    if (section === "default") config.set("default", values);
    else if (/^profile\s+/.test(section)) config.set(section.replace(/^profile\s+/, ""), values);
  }
  return { config, credentials: parseIni(credsText ?? "") };
}

/**
 * One profile's settings, the credentials file's keys over the config file's.
 *
 * @param files The shared files.
 * @param name The profile name.
 * @returns The settings, or undefined when neither file has the profile.
 */
export function profileSettings(files: SharedFiles, name: string): ProfileSettings | undefined {
  const fromConfig = files.config.get(name);
  const fromCreds = files.credentials.get(name);
  if (!fromConfig && !fromCreds) return undefined;
  return { ...fromConfig, ...fromCreds };
}

/**
 * The profile in use: `AWS_PROFILE`, else `default`.
 *
 * @param env The environment.
 * @returns The name and whether the user named it.
 */
export function profileName(env: (name: string) => string | undefined): {
  name: string;
  explicit: boolean;
} {
  const named = env("AWS_PROFILE");
  return named ? { name: named, explicit: true } : { name: "default", explicit: false };
}
