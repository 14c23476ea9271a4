/**
 * The OS keyring through `@napi-rs/keyring` (a Node-API binding of the Rust `keyring` crate):
 * the Secret Service on Linux and the BSDs, the Keychain on macOS, the Credential Manager on
 * Windows, called in-process with no helper program.
 *
 * Loaded with `import()` on the first keyring use only (the cron path's static graph stays free of
 * npm packages), and optional: where it cannot load (the bundle, which has no node_modules; a
 * `deno compile` binary built for another platform, whose node_modules lack that platform's
 * addon; a process without `--allow-ffi`) {@link loadNativeKeyring} gives undefined and the
 * callers use the command-line programs instead (providers/sources/keyring.ts).
 *
 * On Linux the binding is pinned to the Secret Service: its default falls back to the kernel
 * keyring (keyutils) when no Secret Service answers, which would turn "no session bus" into
 * "not found" on a read and a session-lived entry on a write.
 *
 * @module
 */

/** The binding's entry class, the part Hecate uses. */
interface AsyncEntryApi {
  getSecret(signal?: AbortSignal | null): Promise<Array<number> | null>;
  getPassword(signal?: AbortSignal | null): Promise<string | null>;
  setPassword(password: string, signal?: AbortSignal | null): Promise<void>;
  deleteCredential(signal?: AbortSignal | null): Promise<boolean>;
}

type EntryCtor = new (
  service: string,
  account: string,
  options?: { linux?: { store?: "secret-service" | "keyutils" } },
) => AsyncEntryApi;

/** The keyring operations Hecate needs, on one platform's store. */
export interface NativeKeyring {
  /** The secret of SERVICE/ACCOUNT, or null when there is no such entry. */
  get(service: string, account: string, signal?: AbortSignal): Promise<string | null>;
  /** Creates or replaces the entry SERVICE/ACCOUNT. */
  set(service: string, account: string, secret: string): Promise<void>;
  /** Deletes the entry; false when there was none. */
  remove(service: string, account: string): Promise<boolean>;
}

/**
 * A failure the binding reported, reduced to a fixed class: the platform's own text is not shown
 * (as the helper programs' stderr is not), since it is not Hecate's to vouch for.
 */
export class NativeKeyringError extends Error {
  /** A fixed, non-secret description, e.g. `platform failure`. */
  readonly kind: string;
  constructor(kind: string) {
    super(`OS keyring binding: ${kind}`);
    this.kind = kind;
  }
}

/** keyring-core's error texts start with these (its `Display`), mapped to fixed classes. */
const KINDS: readonly [string, string][] = [
  ["Platform failure", "platform failure"],
  ["Couldn't access platform storage", "no access to the platform store"],
  ["Entry is matched by multiple credentials", "several entries match"],
  ["Credential store returned a bad encoding", "the entry is not valid text"],
  ["Attribute", "an attribute is too long or invalid"],
  ["Invalid", "an attribute is too long or invalid"],
];

function classify(e: unknown): NativeKeyringError {
  const text = e instanceof Error ? e.message : "";
  for (const [prefix, kind] of KINDS) {
    if (text.startsWith(prefix)) return new NativeKeyringError(kind);
  }
  return new NativeKeyringError("failed");
}

let loading: Promise<NativeKeyring | undefined> | undefined;

/**
 * Loads the binding once per process.
 *
 * @returns The keyring, or undefined where the binding cannot load here.
 */
export function loadNativeKeyring(): Promise<NativeKeyring | undefined> {
  return loading ??= (async () => {
    let Entry: EntryCtor;
    try {
      // The binding's loader would require() whatever file this names instead of its own addon:
      // native code of the environment's choosing inside the process that holds the root key.
      // The programs run in a child instead.
      if (Deno.env.get("NAPI_RS_NATIVE_LIBRARY_PATH") !== undefined) return undefined;
      const mod = await import("@napi-rs/keyring");
      Entry = mod.AsyncEntry as unknown as EntryCtor;
      if (typeof Entry !== "function") return undefined;
    } catch {
      // No addon for this platform, no node_modules (the bundle), or no --allow-ffi.
      return undefined;
    }
    const linux = Deno.build.os !== "darwin" && Deno.build.os !== "windows";
    const entry = (service: string, account: string) =>
      new Entry(service, account, linux ? { linux: { store: "secret-service" } } : undefined);
    return {
      async get(service, account, signal) {
        try {
          // Windows keeps a password as UTF-16, which getPassword decodes; elsewhere the stored
          // bytes are taken as they are, as secret-tool and `security -w` give them.
          if (Deno.build.os === "windows") return await entry(service, account).getPassword(signal);
          const bytes = await entry(service, account).getSecret(signal);
          return bytes === null ? null : new TextDecoder().decode(Uint8Array.from(bytes));
        } catch (e) {
          if (signal?.aborted) throw e;
          throw classify(e);
        }
      },
      async set(service, account, secret) {
        try {
          await entry(service, account).setPassword(secret);
        } catch (e) {
          throw classify(e);
        }
      },
      async remove(service, account) {
        try {
          return await entry(service, account).deleteCredential();
        } catch (e) {
          throw classify(e);
        }
      },
    } satisfies NativeKeyring;
  })();
}

/**
 * The binding for a caller whose environment reader is `env`: the binding reads the process
 * environment itself (DBUS_SESSION_BUS_ADDRESS on Linux), so where the reader says otherwise (a
 * library caller's injected environment) the helper programs, which get the reader's variables,
 * are used instead.
 *
 * @param env The caller's environment reader.
 * @returns The binding, or undefined to use the programs.
 */
export async function nativeKeyringFor(
  env: (name: string) => string | undefined,
): Promise<NativeKeyring | undefined> {
  if (Deno.build.os !== "darwin" && Deno.build.os !== "windows") {
    let own: string | undefined;
    try {
      own = Deno.env.get("DBUS_SESSION_BUS_ADDRESS");
    } catch {
      return undefined; // no --allow-env for it: the binding could not read it either
    }
    if (own !== env("DBUS_SESSION_BUS_ADDRESS")) return undefined;
  }
  return await loadNativeKeyring();
}
