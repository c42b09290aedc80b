/**
 * The pipeline's function names are one list: the directories under supabase/functions/, the `[functions.*]` blocks
 * of supabase/config.toml and FUNCTION_NAMES (what dispatch calls and the handlers log) name the same functions,
 * all with the csv-import- prefix, and the database builds its URLs with that prefix.
 */
import assert from "node:assert/strict";
import { parse } from "smol-toml";
import { FUNCTION_NAMES, FUNCTION_PREFIX } from "../supabase/functions/_shared/pipeline/function_names.ts";
import { connect, E2E } from "./support/stack.ts";

const names = Object.values(FUNCTION_NAMES).sort();

Deno.test("function names: every name carries the prefix and names its role", () => {
  for (const [role, name] of Object.entries(FUNCTION_NAMES)) assert.equal(name, FUNCTION_PREFIX + role);
});

Deno.test("function names: the directories under supabase/functions/ are exactly FUNCTION_NAMES", () => {
  const dirs = [...Deno.readDirSync("supabase/functions")]
    .filter((e) => e.isDirectory && !e.name.startsWith("_")).map((e) => e.name).sort();
  assert.deepEqual(dirs, names);
});

Deno.test("function names: config.toml declares exactly FUNCTION_NAMES, each pointing into its own directory", () => {
  const doc = parse(Deno.readTextFileSync("supabase/config.toml")) as {
    functions: Record<string, { entrypoint: string; import_map: string }>;
  };
  assert.deepEqual(Object.keys(doc.functions).sort(), names);
  for (const [name, block] of Object.entries(doc.functions)) {
    assert.equal(block.entrypoint, `./functions/${name}/index.ts`);
    assert.equal(block.import_map, `./functions/${name}/deno.json`);
  }
});

Deno.test({
  name: "function names: the database calls the prefixed functions",
  ...E2E,
  fn: async () => {
    const sql = connect();
    try {
      const [{ url }] = await sql<{ url: string | null }[]>`
        select (csv_import.function_endpoint('register')).url`;
      assert.ok(url?.endsWith(`/functions/v1/${FUNCTION_NAMES.register}`), `got ${url}`);
    } finally {
      await sql.end();
    }
  },
});
