// Disabled in config.toml: must answer 404 without running.
Deno.serve(() => new Response("should not run"));
