// Starts Swagger UI on /docs over this server's OpenAPI document. A file rather than an inline script,
// so the Content-Security-Policy can refuse every inline script (see truescore/api/app.py).
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
