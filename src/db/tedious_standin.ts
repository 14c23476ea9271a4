/**
 * Stand-ins for the Azure packages that tedious `require()`s when it loads (`@azure/identity`,
 * `@azure/core-auth`), used in their place by the bundle (scripts/bundle.ts puts this module,
 * bundled, beside the chunks) and from source (./tedious_source.ts).
 *
 * tedious calls these packages only to obtain a token for the authentication types that make it
 * fetch one itself (`azure-active-directory-password`, `-msi-vm`, `-msi-app-service`, `-default`,
 * `-service-principal-secret`, `token-credential`). Hecate never configures those: it logs in with
 * `default` (SQL login), `ntlm`, or `azure-active-directory-access-token` with a token it fetched
 * itself (src/db/mssql.ts). Loading the real packages cost about 0.1 s per SQL Server run
 * (docs/PERFORMANCE.md); if a future change ever reaches them, the call fails with this message
 * instead of doing something else.
 *
 * @module
 */

/** The packages replaced. */
export const STANDIN_PACKAGES: readonly string[] = ["@azure/identity", "@azure/core-auth"];

/**
 * A module object whose every export is a function (or class) that throws when called.
 *
 * @param pkg The package this object stands in for.
 * @returns The stand-in module.
 */
export function standin(pkg: string): Record<string, unknown> {
  return new Proxy({}, {
    get(_target, key) {
      // Not exports: what module interop and promise checks probe for.
      if (typeof key === "symbol" || key === "__esModule" || key === "then") return undefined;
      return function unavailable(): never {
        throw new Error(
          `${pkg} (${key}) is not part of this build of Hecate: tedious asked for an ` +
            "authentication type Hecate does not configure (it passes tokens to tedious itself)",
        );
      };
    },
  });
}
