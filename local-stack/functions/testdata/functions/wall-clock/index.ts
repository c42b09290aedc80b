// Records beforeunload reasons in ?file= and never answers in time.
let file = "";
addEventListener("beforeunload", (event) => {
  const reason = (event as CustomEvent<{ reason: string }>).detail?.reason;
  if (file !== "") Deno.writeTextFileSync(file, JSON.stringify({ reason, cancelable: event.cancelable }));
});

Deno.serve(async (req) => {
  file = new URL(req.url).searchParams.get("file")!;
  await new Promise((resolve) => setTimeout(resolve, 60_000));
  return new Response("too late");
});
