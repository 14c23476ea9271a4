import assert from "node:assert/strict";
import { ExitCode } from "../src/errors.ts";

const ROOT = new URL("../", import.meta.url);

async function documentedCodes(file: string): Promise<number[]> {
  const text = await Deno.readTextFile(new URL(file, ROOT));
  const start = text.search(/^\|\s*code\s*\|\s*meaning\s*\|/m);
  assert.ok(start >= 0, `${file} has an exit-code table`);
  const rows = text.slice(start).split("\n").slice(2);
  const codes: number[] = [];
  for (const row of rows) {
    const m = /^\|\s*(\d+)\s*\|/.exec(row);
    if (!m) break;
    codes.push(Number(m[1]));
  }
  return codes;
}

for (const file of ["README.md", "docs/CLI.md"]) {
  Deno.test(`the exit-code table in ${file} lists exactly the codes in src/errors.ts`, async () => {
    const expected = [...new Set(Object.values(ExitCode))].sort((a, b) => a - b);
    assert.deepEqual(await documentedCodes(file), expected);
  });
}

Deno.test("exit codes are distinct per failure class", () => {
  const values = Object.values(ExitCode);
  assert.equal(new Set(values).size, values.length);
});
