// Deno.serve(options, handler) style; echoes what the function sees of the request.
Deno.serve({ port: 9999, onListen: () => {} }, async (req) => {
  const url = new URL(req.url);
  return Response.json({
    style: "options",
    method: req.method,
    href: url.href,
    pathname: url.pathname,
    search: url.search,
    host: req.headers.get("host"),
    contentLength: req.headers.get("content-length"),
    custom: req.headers.get("x-custom"),
    body: req.body === null ? null : await req.text(),
  });
});
