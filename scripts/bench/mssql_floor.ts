/**
 * The floor under Hecate's SQL Server path: a bare tedious client that connects, runs one
 * statement and ends, with nothing of Hecate (no command tree, vault, audit). The `mssql`
 * benchmark section bundles it like Hecate (the same stand-in for tedious's Azure packages) and
 * runs it next to `hecate query`.
 *
 * Environment: MSSQL_HOST, MSSQL_PORT, MSSQL_USER, MSSQL_PASSWORD, MSSQL_SQL (default
 * `select 1`), MSSQL_CA (a CA file: TLS with verification; otherwise no TLS), MSSQL_OUT (a file:
 * the rows are written there as CSV, as `hecate query --format csv --output` does), MSSQL_FSYNC
 * (`1`: the file is synced to disk before it is closed, as Hecate's output file is). Prints to
 * stderr, as JSON, milliseconds since the process started: `loaded` (tedious imported),
 * `firstByte` (the PRELOGIN packet written), `login` (logged in), `firstRow`, `done`.
 *
 * @module
 */

import net from "node:net";
import { Connection, Request } from "tedious";

const loaded = performance.now();
const env = (name: string) => Deno.env.get(name);
let firstByte = 0;
const connector = () =>
  new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect({ host: env("MSSQL_HOST"), port: Number(env("MSSQL_PORT")) });
    const write = socket.write.bind(socket) as (...a: unknown[]) => boolean;
    (socket as { write: typeof write }).write = (...a) => {
      firstByte ||= performance.now();
      return write(...a);
    };
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
const ca = env("MSSQL_CA");
const conn = new Connection({
  server: env("MSSQL_HOST") ?? "127.0.0.1",
  authentication: {
    type: "default",
    options: { userName: env("MSSQL_USER") ?? "", password: env("MSSQL_PASSWORD") ?? "" },
  },
  options: {
    port: Number(env("MSSQL_PORT")),
    encrypt: !!ca,
    trustServerCertificate: false,
    ...(ca ? { cryptoCredentialsDetails: { ca: await Deno.readTextFile(ca) } } : {}),
    useUTC: true,
    rowCollectionOnDone: false,
    rowCollectionOnRequestCompletion: false,
    requestTimeout: 0,
    connector,
  },
});
await new Promise<void>((resolve, reject) => conn.connect((e) => e ? reject(e) : resolve()));
const login = performance.now();

const outPath = env("MSSQL_OUT");
const out = outPath ? Deno.openSync(outPath, { write: true, create: true, truncate: true }) : null;
const encoder = new TextEncoder();
let text = "";
const flush = () => {
  const bytes = encoder.encode(text);
  for (let off = 0; off < bytes.length;) off += out!.writeSync(bytes.subarray(off));
  text = "";
};
const field = (v: unknown) => {
  if (v === null || v === undefined) return "";
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
};
let firstRow = 0;
let rows = 0;
await new Promise<void>((resolve, reject) => {
  const request = new Request(env("MSSQL_SQL") ?? "select 1", (e) => e ? reject(e) : resolve());
  request.on("columnMetadata", (cols) => {
    if (!out) return;
    const list = Array.isArray(cols) ? cols : Object.values(cols);
    text += list.map((c) => field(c.colName)).join(",") + "\n";
  });
  request.on("row", (cols) => {
    firstRow ||= performance.now();
    rows++;
    if (!out) return;
    const list = Array.isArray(cols) ? cols : Object.values(cols);
    text += list.map((c: { value: unknown }) => field(c.value)).join(",") + "\n";
    if (text.length > 1 << 20) flush();
  });
  conn.execSqlBatch(request);
});
if (out) {
  flush();
  if (env("MSSQL_FSYNC") === "1") out.syncSync();
  out.close();
}
conn.close();
const done = performance.now();
if (rows === 0) throw new Error("no rows");
console.error(JSON.stringify({ loaded, firstByte, login, firstRow, done, rows }));
