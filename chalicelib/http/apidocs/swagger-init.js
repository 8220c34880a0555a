// Swagger UI on the document this server generates; nothing is fetched from elsewhere
// (validatorUrl: null turns off the online validator badge).
window.ui = SwaggerUIBundle({
  url: "../swagger.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  docExpansion: "list",
  defaultModelsExpandDepth: 0,
});
