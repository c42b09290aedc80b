// Answers at once and finishes a background task (writes ?file= after ?ms=) through EdgeRuntime.waitUntil.
declare const EdgeRuntime: { waitUntil(promise: Promise<unknown>): void };

Deno.serve((req) => {
  const url = new URL(req.url);
  const file = url.searchParams.get("file")!;
  const ms = Number(url.searchParams.get("ms") ?? "700");
  EdgeRuntime.waitUntil((async () => {
    await new Promise((resolve) => setTimeout(resolve, ms));
    await Deno.writeTextFile(file, String(Date.now()));
  })());
  return new Response(String(Date.now()));
});
