/**
 * Usage: deno run --allow-read --allow-write --allow-run --allow-env web/build.ts [--out DIR]
 *
 * Builds the upload page and the operator screen into web/dist/ (git-ignored; scripts/install.sh runs this):
 * web/src/main.ts (app.js, index.html) and web/src/operator.ts (operator.js, operator.html) bundled by
 * esbuild (pinned in tools/package.json, installed by scripts/install.sh) with @supabase/supabase-js and
 * tus-js-client bundled in from tools/node_modules (the versions deno.json pins; checked below), minified, for
 * browsers from 2022 on (top-level await); index.html and style.css copied beside it. The result is plain static files: any static
 * host serves them, with a config.json beside index.html (docs/web-app.md); the local stack serves them at /app/
 * with a config.json of its own (local-stack/web_app.ts).
 *
 * Invariants:
 * - Nothing is fetched: esbuild and the libraries come from tools/node_modules; a missing one names install.sh.
 * - The bundled libraries are exactly the versions the root deno.json pins (the page's code is type-checked
 *   against those), so the checked code and the shipped code cannot drift apart.
 * - The output folder is written whole: emptied first, so no file of an older build survives.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const webDir = fileURLToPath(new URL(".", import.meta.url));
const repoRoot = join(webDir, "..");
const toolsModules = join(repoRoot, "tools", "node_modules");
const { values } = parseArgs({
  args: Deno.args,
  options: { out: { type: "string" } },
});
const outDir = values.out ?? join(webDir, "dist");

/** The bundled npm packages and where deno.json pins each one. */
const BUNDLED = ["@supabase/supabase-js", "tus-js-client"];

async function pinnedVersions(): Promise<void> {
  const imports: Record<string, string> =
    JSON.parse(await Deno.readTextFile(join(repoRoot, "deno.json"))).imports;
  for (const name of BUNDLED) {
    const pinned = imports[name]?.match(/@([^@/]+)$/)?.[1];
    let installed: string;
    try {
      installed = JSON.parse(
        await Deno.readTextFile(join(toolsModules, name, "package.json")),
      ).version;
    } catch {
      throw new Error(
        `${name} is not in tools/node_modules: run bash scripts/install.sh`,
      );
    }
    if (pinned !== installed) {
      throw new Error(
        `tools/node_modules has ${name}@${installed}, deno.json pins "${pinned}": pin the same version in tools/package.json and run bash scripts/install.sh`,
      );
    }
  }
}

await pinnedVersions();
const esbuild = join(toolsModules, ".bin", "esbuild");
await Deno.remove(outDir, { recursive: true }).catch(() => {});
await Deno.mkdir(outDir, { recursive: true });
const out = await new Deno.Command(esbuild, {
  args: [
    // app.js: the upload page (index.html); operator.js: the operator screen (operator.html).
    `app=${join(webDir, "src", "main.ts")}`,
    `operator=${join(webDir, "src", "operator.ts")}`,
    "--bundle",
    "--minify",
    "--sourcemap",
    "--format=esm",
    "--target=es2022",
    "--platform=browser",
    "--log-level=warning",
    `--outdir=${outDir}`,
  ],
  // The libraries resolve from tools/node_modules (web/ has no node_modules of its own).
  env: { NODE_PATH: toolsModules },
  stdout: "inherit",
  stderr: "inherit",
}).output().catch((error) => {
  throw new Error(
    `esbuild did not run (${error.message}): run bash scripts/install.sh`,
  );
});
if (!out.success) {
  throw new Error(
    "esbuild failed to bundle web/src/main.ts and web/src/operator.ts (its errors are above)",
  );
}
for (const file of ["index.html", "operator.html", "style.css"]) {
  await Deno.copyFile(join(webDir, file), join(outDir, file));
}
console.log(`web/build.ts: built the upload page into ${outDir}`);
