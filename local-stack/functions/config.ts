/**
 * Reads `supabase/config.toml` for the Edge Functions runtime: the `[edge_runtime] policy` (`per_worker`, the
 * default; `oneshot`; the stand-in also takes edge-runtime's `per_request`) and the
 * `[functions.<name>]` blocks (`enabled`, `verify_jwt`, `import_map`, `entrypoint`), and resolves a function
 * name to what a worker needs to run it.
 *
 * Invariants (as the Supabase CLI):
 * - Paths in config.toml are relative to the directory holding config.toml (`supabase/`).
 * - `enabled` and `verify_jwt` default to true; the entrypoint defaults to `<functionsDir>/<name>/index.ts`
 *   and the import map to `<name>/deno.json` (then `deno.jsonc`, then the legacy `import_map.json`).
 * - A function name starts with a letter and holds only letters, digits, `_` and `-` (the CLI's slug rule),
 *   so `_shared` and dot-folders are never functions. A name whose entrypoint file is missing is unknown.
 * - The file is re-read when its modification time changes, so edits apply to the next request.
 */
import { parse } from "smol-toml";
import { dirname, join, resolve } from "node:path";
import { POLICIES, type Policy } from "./types.ts";

export type { Policy } from "./types.ts";

/** Everything needed to start and guard one function. */
export interface FunctionSpec {
  name: string;
  enabled: boolean;
  verifyJwt: boolean;
  /** Absolute path of the entry module. */
  entrypoint: string;
  /** Absolute path of the deno.json / import map passed as `--config`, or null for none. */
  importMap: string | null;
}

interface FunctionBlock {
  enabled?: boolean;
  verify_jwt?: boolean;
  import_map?: string;
  entrypoint?: string;
}

interface ParsedConfig {
  policy: Policy;
  blocks: Record<string, FunctionBlock>;
}

const NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]*$/;
const IMPORT_MAP_CANDIDATES = ["deno.json", "deno.jsonc", "import_map.json"];

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

function parseConfig(text: string): ParsedConfig {
  const doc = parse(text) as {
    edge_runtime?: { policy?: string };
    functions?: Record<string, FunctionBlock>;
  };
  const raw = doc.edge_runtime?.policy;
  const policy = POLICIES.find((p) => p === raw) ?? "per_worker";
  return { policy, blocks: doc.functions ?? {} };
}

/** A cached view of config.toml plus the functions directory. */
export class FunctionsConfig {
  #parsed: ParsedConfig = { policy: "per_worker", blocks: {} };
  #mtime: number | null = null;
  readonly #configDir: string;

  constructor(readonly configToml: string, readonly functionsDir: string) {
    this.#configDir = dirname(resolve(configToml));
  }

  async #current(): Promise<ParsedConfig> {
    const mtime = (await Deno.stat(this.configToml)).mtime?.getTime() ?? 0;
    if (mtime !== this.#mtime) {
      this.#parsed = parseConfig(await Deno.readTextFile(this.configToml));
      this.#mtime = mtime;
    }
    return this.#parsed;
  }

  /** The worker reuse policy. */
  async policy(): Promise<Policy> {
    return (await this.#current()).policy;
  }

  /** Resolves a function by name; null when there is no such function. */
  async resolve(name: string): Promise<FunctionSpec | null> {
    if (!NAME_PATTERN.test(name)) return null;
    const { blocks } = await this.#current();
    const block = Object.hasOwn(blocks, name) ? blocks[name] : {};
    const functionDir = join(this.functionsDir, name);
    const entrypoint = block.entrypoint
      ? resolve(this.#configDir, block.entrypoint)
      : join(functionDir, "index.ts");
    if (!(await isFile(entrypoint))) return null;
    let importMap = block.import_map ? resolve(this.#configDir, block.import_map) : null;
    for (const candidate of IMPORT_MAP_CANDIDATES) {
      if (importMap !== null) break;
      if (await isFile(join(functionDir, candidate))) importMap = join(functionDir, candidate);
    }
    return {
      name,
      enabled: block.enabled ?? true,
      verifyJwt: block.verify_jwt ?? true,
      entrypoint,
      importMap,
    };
  }
}
