import assert from "node:assert/strict";
import { HECATE_PERMISSIONS } from "../scripts/permissions.ts";

Deno.test("the hecate task in deno.json runs with exactly the documented permission set", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const task: string = config.tasks.hecate;
  const flags = task.split(/\s+/).filter((w) => w.startsWith("--allow-") || w === "-A");
  assert.deepEqual(flags.sort(), [...HECATE_PERMISSIONS].sort());
  assert.ok(!task.includes(" -A") && !task.includes("--allow-all"));
});
