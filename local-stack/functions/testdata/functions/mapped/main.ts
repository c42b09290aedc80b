// Custom entrypoint (config.toml `entrypoint`) that needs its import map (`import_map`).
import { greeting } from "greeting";

Deno.serve(() => new Response(greeting));
