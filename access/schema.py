from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents ApiKeyAuthentication in the OpenAPI schema: a bearer token, or the X-API-Key header."""

    target_class = "access.authentication.ApiKeyAuthentication"
    name = ["bearerKey", "apiKeyHeader"]

    def get_security_definition(self, auto_schema: object) -> list[dict]:
        return [
            {"type": "http", "scheme": "bearer", "description": "An API key, when the server has any."},
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        ]
