// Answers with the whole environment the worker sees.
Deno.serve(() => Response.json(Deno.env.toObject()));
