// Behind verify_jwt (default): answers with the Authorization header it received.
Deno.serve((req) => Response.json({ authorization: req.headers.get("authorization") }));
