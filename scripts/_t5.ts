import { startPostgres } from "../tests/support/postgres.ts";
import { startVaultDouble } from "../tests/support/vault_double.ts";
import { serverProfile, vaultWith } from "./bench/setup.ts";
import { HECATE_PERMISSIONS } from "./permissions.ts";
await using pg = await startPostgres();
await using v = await startVaultDouble();
v.mountKv("secret", 2);
v.putKv("secret", "bench", { password: pg.password });
v.policy("bench", { "secret/data/bench": ["read"] });
const home = await Deno.makeTempDir() + "/h";
const stored = serverProfile("stored", "postgres", pg);
const vault = await vaultWith(home, "bench-password correct horse", [stored, {
  ...stored,
  name: "kv",
  params: { "vault.addr": v.addr },
  secrets: { password: { ref: "vault:secret/bench#password" } },
}, { ...stored, name: "envref", secrets: { password: { ref: "env:PW" } } }], 600000);
const apiKey = await vault.apiKeys.create({
  name: "b",
  profiles: ["stored", "kv", "envref"],
  expires: null,
});
const env = {
  HECATE_API_KEY: apiKey,
  VAULT_TOKEN: v.token({ policies: ["bench"] }),
  DENO_CERT: v.caFile,
  PW: pg.password,
  PATH: Deno.env.get("PATH")!,
  HOME: Deno.env.get("HOME")!,
  NO_COLOR: "1",
};
for (let i = 0; i < 4; i++) {
  for (const name of ["stored", "kv", "envref"]) {
    const t0 = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        ...HECATE_PERMISSIONS,
        new URL("../main.ts", import.meta.url).pathname,
        "--home",
        home,
        "query",
        name,
        "select 1",
      ],
      env,
      clearEnv: true,
    }).output();
    console.log(
      name,
      (performance.now() - t0).toFixed(0),
      out.code,
      new TextDecoder().decode(out.stderr).slice(0, 200),
    );
  }
}
