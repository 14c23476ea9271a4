import assert from "node:assert/strict";
import { hasMultipleStatements } from "../src/db/sql_text.ts";

Deno.test("hasMultipleStatements() finds a second statement after a semicolon", () => {
  assert.equal(hasMultipleStatements("select 1; select 2"), true);
  assert.equal(hasMultipleStatements("select 1;select 2;"), true);
});

Deno.test("hasMultipleStatements() accepts one statement with trailing semicolons and comments", () => {
  assert.equal(hasMultipleStatements("select 1"), false);
  assert.equal(hasMultipleStatements("select 1;  ;\n-- done\n/* end */ "), false);
});

Deno.test("hasMultipleStatements() ignores semicolons in literals, identifiers and comments", () => {
  assert.equal(hasMultipleStatements("select 'a; b', \"c;d\", [e;f], `g;h` -- ; x\n"), false);
  assert.equal(hasMultipleStatements("select 'it''s; fine' /* ; select 2 */"), false);
  assert.equal(hasMultipleStatements("select 'it''s'; select 2"), true);
});
