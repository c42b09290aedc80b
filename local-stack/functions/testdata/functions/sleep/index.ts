// Sleeps ?ms= milliseconds without using CPU, then answers with its execution id and pid.
Deno.serve(async (req) => {
  const ms = Number(new URL(req.url).searchParams.get("ms") ?? "500");
  await new Promise((resolve) => setTimeout(resolve, ms));
  return Response.json({ executionId: Deno.env.get("SB_EXECUTION_ID"), pid: Deno.pid });
});
