/**
 * Host key verification rules, checked against OpenSSH's own tools: fingerprints as
 * `ssh-keygen -l` prints them, entries hashed by `ssh-keygen -H`, lookups as `ssh-keygen -F`
 * answers them.
 */

import nodeAssert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { makeKeyPair } from "./support/sshd.ts";
import { fingerprintOf, keyTypeOf } from "../src/tunnel/fingerprint.ts";
import { hostMatches, parseKnownHosts } from "../src/tunnel/known_hosts.ts";
import { checkHostKey, preferredHostKeyAlgorithms } from "../src/tunnel/host_keys.ts";

const dir = await Deno.makeTempDir({ prefix: "hecate-kh-test-" });
const ed = await makeKeyPair(`${dir}/ed`, { type: "ed25519" });
const rsa = await makeKeyPair(`${dir}/rsa`, { type: "rsa" });
const ec = await makeKeyPair(`${dir}/ec`, { type: "ecdsa" });

function blobOf(publicLine: string): Uint8Array {
  return new Uint8Array(Buffer.from(publicLine.split(" ")[1]!, "base64"));
}

function keygen(args: string[]): string {
  const out = new Deno.Command("/usr/bin/ssh-keygen", { args }).outputSync();
  return new TextDecoder().decode(out.stdout);
}

Deno.test("fingerprintOf() equals ssh-keygen -l for ed25519, RSA and ECDSA keys", () => {
  for (const k of [ed, rsa, ec]) {
    nodeAssert.equal(fingerprintOf(blobOf(k.publicLine)), k.fingerprint);
  }
  nodeAssert.equal(keyTypeOf(blobOf(rsa.publicLine)), "ssh-rsa");
  nodeAssert.equal(keyTypeOf(new Uint8Array([0, 0, 0])), "unknown");
});

Deno.test("host patterns: exact, [host]:port, wildcards, negation, case", () => {
  nodeAssert.ok(hostMatches("db.example.com", "db.example.com", 22));
  nodeAssert.ok(hostMatches("DB.Example.com", "db.example.com", 22));
  nodeAssert.ok(!hostMatches("db.example.com", "db.example.com", 2222));
  nodeAssert.ok(hostMatches("[db.example.com]:2222", "db.example.com", 2222));
  nodeAssert.ok(!hostMatches("[db.example.com]:2222", "db.example.com", 22));
  nodeAssert.ok(hostMatches("a,b,*.example.com", "x.example.com", 22));
  nodeAssert.ok(!hostMatches("*.example.com", "example.com", 22));
  nodeAssert.ok(hostMatches("10.0.0.?", "10.0.0.7", 22));
  nodeAssert.ok(!hostMatches("!bad.example.com,*.example.com", "bad.example.com", 22));
  nodeAssert.ok(hostMatches("!bad.example.com,*.example.com", "good.example.com", 22));
  // Regex metacharacters in a pattern are literal.
  nodeAssert.ok(!hostMatches("db.example.com", "dbxexample.com", 22));
});

Deno.test("entries hashed by ssh-keygen -H match, as ssh-keygen -F finds them", async () => {
  const file = `${dir}/known_hosts_h`;
  const [t, k] = ed.publicLine.split(" ");
  await Deno.writeTextFile(
    file,
    `db.example.com ${t} ${k}\n[10.1.2.3]:2222 ${t} ${k}\nother.example.com ${t} ${k}\n`,
  );
  keygen(["-H", "-f", file]);
  const entries = parseKnownHosts(await Deno.readTextFile(file), file);
  nodeAssert.equal(entries.length, 3);
  for (const e of entries) nodeAssert.match(e.hosts, /^\|1\|/);
  const hits = (host: string, port: number) =>
    entries.filter((e) => hostMatches(e.hosts, host, port)).length;
  nodeAssert.equal(hits("db.example.com", 22), 1);
  nodeAssert.equal(hits("10.1.2.3", 2222), 1);
  nodeAssert.equal(hits("10.1.2.3", 22), 0);
  nodeAssert.equal(hits("nope.example.com", 22), 0);
  // ssh-keygen -F agrees on both lookups.
  nodeAssert.ok(keygen(["-F", "db.example.com", "-f", file]).includes(t!));
  nodeAssert.ok(keygen(["-F", "[10.1.2.3]:2222", "-f", file]).includes(t!));
});

Deno.test("checkHostKey(): known, changed, other type only, revoked, pinned, accept-new", () => {
  const [t, k] = ed.publicLine.split(" ");
  const [rt, rk] = rsa.publicLine.split(" ");
  const hop = { host: "db.example.com", port: 22, acceptNew: false };
  const entries = parseKnownHosts(
    `# comment\n@cert-authority *.example.com ${t} ${k}\ndb.example.com ${t} ${k}\nbroken line\n`,
    "kh",
  );
  nodeAssert.equal(entries.length, 1);
  nodeAssert.deepEqual(checkHostKey(blobOf(ed.publicLine), hop, entries), {
    ok: true,
    source: "known_hosts",
    fingerprint: ed.fingerprint,
    type: "ssh-ed25519",
    where: "kh:3",
  });

  const changed = parseKnownHosts(`db.example.com ${t} ${k}\n`, "kh");
  const ed2 = blobOf(ec.publicLine);
  const v1 = checkHostKey(ed2, hop, changed);
  nodeAssert.equal(v1.ok, false);
  // An ECDSA key where only ed25519 is known: unknown (not changed), with the known types.
  nodeAssert.deepEqual(v1, {
    ok: false,
    kind: "unknown",
    fingerprint: ec.fingerprint,
    type: "ecdsa-sha2-nistp256",
    otherTypes: ["ssh-ed25519"],
  });
  // ...and accept-new must not add a second identity for a known host.
  nodeAssert.equal(checkHostKey(ed2, { ...hop, acceptNew: true }, changed).ok, false);

  const sameType = parseKnownHosts(`db.example.com ${rt} ${rk}\n`, "kh");
  const otherRsa = blobOf(rsa.publicLine).slice();
  otherRsa[otherRsa.length - 1]! ^= 1;
  const v2 = checkHostKey(otherRsa, hop, sameType);
  nodeAssert.ok(!v2.ok && v2.kind === "changed" && v2.expected === rsa.fingerprint);

  const revoked = parseKnownHosts(`@revoked * ${t} ${k}\ndb.example.com ${t} ${k}\n`, "kh");
  const v3 = checkHostKey(blobOf(ed.publicLine), hop, revoked);
  nodeAssert.ok(!v3.ok && v3.kind === "revoked" && v3.where === "kh:1");
  // A pin does not override a revocation.
  nodeAssert.equal(
    checkHostKey(blobOf(ed.publicLine), { ...hop, pin: ed.fingerprint }, revoked).ok,
    false,
  );

  nodeAssert.equal(
    checkHostKey(blobOf(ed.publicLine), { ...hop, pin: ed.fingerprint }, []).ok,
    true,
  );
  const v4 = checkHostKey(blobOf(ed.publicLine), { ...hop, pin: rsa.fingerprint }, entries);
  nodeAssert.ok(!v4.ok && v4.kind === "changed" && v4.where === "profile");

  nodeAssert.ok(!checkHostKey(blobOf(ed.publicLine), hop, []).ok);
  const v5 = checkHostKey(blobOf(ed.publicLine), { ...hop, acceptNew: true }, []);
  nodeAssert.ok(v5.ok && v5.source === "accepted-new");
});

Deno.test("preferredHostKeyAlgorithms() offers the known key types first", () => {
  const [t, k] = ed.publicLine.split(" ");
  const [rt, rk] = rsa.publicLine.split(" ");
  const entries = parseKnownHosts(
    `[h]:2222 ${rt} ${rk}\n[h]:2222 ${t} ${k}\nh ${t} ${k}\n`,
    "kh",
  );
  nodeAssert.deepEqual(preferredHostKeyAlgorithms(entries, "h", 2222), [
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
    "ssh-ed25519",
  ]);
  nodeAssert.deepEqual(preferredHostKeyAlgorithms(entries, "other", 22), []);
});

Deno.test({
  name: "cleanup",
  fn: async () => {
    await Deno.remove(dir, { recursive: true });
  },
});
