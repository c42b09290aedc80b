// Reached through the bare specifier "greeting" of deno.json's import map.
export const greeting = "hello from the import map";
