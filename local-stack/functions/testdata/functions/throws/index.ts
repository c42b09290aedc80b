// The handler throws: the caller must get 500 WORKER_ERROR.
Deno.serve(() => {
  throw new Error("boom from the fixture");
});
