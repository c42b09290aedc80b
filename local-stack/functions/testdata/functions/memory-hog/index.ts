// Allocates memory until stopped: 8 MB typed arrays (?kind=buffer, outside the V8 heap) or heap objects.
Deno.serve(async (req) => {
  const kind = new URL(req.url).searchParams.get("kind") ?? "buffer";
  const keep: unknown[] = [];
  for (let i = 0; i < 1_000_000; i++) {
    if (kind === "buffer") keep.push(new Uint8Array(8 << 20).fill(1));
    else keep.push(Array.from({ length: 100_000 }, (_, j) => ({ i, j })));
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return new Response(String(keep.length));
});
