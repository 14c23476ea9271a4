/**
 * Set-up shared by the benchmark sections: a vault holding profiles for the servers a section
 * started, and the reference client's command line.
 *
 * @module
 */

import { initVault, openVault, type ProfileInput, type Vault } from "../../src/hecate.ts";

/** What a started test server offers (tests/support/postgres.ts, mariadb.ts). */
export interface ServerLogin {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}

/**
 * A password-login profile for a started server, without TLS (loopback only).
 *
 * @param name Profile name.
 * @param engine Engine.
 * @param server The server's address and login.
 * @returns The profile input.
 */
export function serverProfile(
  name: string,
  engine: ProfileInput["engine"],
  server: ServerLogin,
): ProfileInput {
  return {
    name,
    engine,
    host: server.host,
    port: server.port,
    database: server.database,
    user: server.user,
    tls: { mode: "disable" },
    secrets: { password: { value: server.password } },
  };
}

/**
 * Creates a vault in `home` and adds the profiles.
 *
 * @param home A new home directory.
 * @param password The master password.
 * @param profiles Profiles to add.
 * @param kdfIterations PBKDF2 cost. @default {calibrated, as `hecate init`}
 * @returns The open vault.
 */
export async function vaultWith(
  home: string,
  password: string,
  profiles: ProfileInput[],
  kdfIterations?: number,
): Promise<Vault> {
  await initVault({ home, password, kdfIterations });
  const vault = await openVault({ home, password });
  for (const p of profiles) await vault.profiles.add(p);
  return vault;
}

/**
 * `psql` against a started PostgreSQL (its password goes in `PGPASSWORD`, never argv).
 *
 * @param pg The server.
 * @param args Further psql arguments.
 * @returns The command line.
 */
export function psqlCommand(pg: ServerLogin, ...args: string[]): string[] {
  return [
    "psql",
    "-X",
    "-h",
    pg.host,
    "-p",
    String(pg.port),
    "-U",
    pg.user,
    "-d",
    pg.database,
    ...args,
  ];
}
