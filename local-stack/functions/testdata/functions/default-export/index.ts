// The `supabase functions new` template style: export default { fetch }.
export default {
  fetch(req: Request): Response {
    const url = new URL(req.url);
    return Response.json({
      style: "default",
      method: req.method,
      pathname: url.pathname,
      search: url.search,
    });
  },
};
