/**
 * Prints how many milliseconds loading one engine's driver takes in a fresh process (the
 * `startup` bench section runs it per engine): `deno run ... load_driver.ts mysql`.
 *
 * @module
 */

import type { Engine } from "../../src/db/driver.ts";
import { driverFor } from "../../src/db/registry.ts";

const t0 = performance.now();
await driverFor(Deno.args[0] as Engine);
console.log((performance.now() - t0).toFixed(1));
