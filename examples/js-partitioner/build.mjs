// Builds partitioner.js into a component of world `partitioner-plugin` with componentize-js's
// API: node build.mjs OUT.wasm
import { componentize } from "@bytecodealliance/componentize-js";
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const out = process.argv[2];
if (!out) {
  console.error("usage: node build.mjs OUT.wasm");
  process.exit(2);
}
const { component } = await componentize({
  sourcePath: here("./partitioner.js"),
  witPath: here("../../wit"),
  worldName: "partitioner-plugin",
  // A partitioner needs no clock, randomness or HTTP: fewer WASI imports.
  disableFeatures: ["random", "clocks", "http", "fetch-event"],
});
await writeFile(out, component);
