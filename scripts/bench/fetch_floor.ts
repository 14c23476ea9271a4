/**
 * The floor under a secret source's request: a fresh Deno process that sends one GET to
 * `FLOOR_URL` with `fetch` (a token header when `FLOOR_TOKEN` is set, as a Vault read), reads the
 * JSON answer, and ends, with nothing of Hecate. The `vault` benchmark section runs it over HTTPS
 * and over plain HTTP next to the cron path, so what Deno's first `fetch` (and its first TLS
 * connection) costs a new process is measured apart from what Hecate adds.
 *
 * @module
 */

const url = Deno.env.get("FLOOR_URL");
if (!url) throw new Error("set FLOOR_URL");
const token = Deno.env.get("FLOOR_TOKEN");
const res = await fetch(url, { headers: token ? { "X-Vault-Token": token } : {} });
const body = await res.json();
if (!res.ok || typeof body !== "object") throw new Error(`HTTP ${res.status}`);
