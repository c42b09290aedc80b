// Answers with HTML: the runtime must relabel it text/plain for GET, as the hosted platform does.
Deno.serve(() => new Response("<h1>hi</h1>", { headers: { "content-type": "text/html; charset=utf-8" } }));
