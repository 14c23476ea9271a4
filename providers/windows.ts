/**
 * `windows` authentication: NTLM with a domain, user name and password, for SQL Server (tedious's
 * `ntlm` type). The password is a profile secret; the domain is a profile param.
 *
 * @module
 */

import type { AuthProvider } from "./mod.ts";

/** NTLM login for SQL Server: params `domain`; field `user`; secret `password`. */
export const windowsLogin: AuthProvider = {
  type: "windows",
  engines: ["mssql"],
  secretFields: ["password"],
  requiredFields: ["host", "user"],
  requiredParams: ["domain"],
  credentials: (p, s) => ({
    ...(p.user !== undefined ? { user: p.user } : {}),
    ...(s.password !== undefined ? { password: s.password } : {}),
    extra: { ntlmDomain: p.params?.domain ?? "" },
  }),
};
