//! `/openapi.json`: an OpenAPI 3.1 description of every route and every
//! error, built once at start. The detection schema is generated from the
//! model's key table, so it cannot drift from what the API writes.

use serde_json::{Value, json};
use siemgate_model::KEYS;

/// The document, for the given public URL.
pub fn document(public_url: &str) -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "siemgate",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The Defender for Endpoint SIEM API, self-hosted, with its Azure-AD-compatible identity provider.",
        },
        "servers": [{ "url": public_url }],
        "paths": paths(),
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token from this server's token endpoint, for https://graph.windows.net or https://WDATPAlertExport.Seville.onmicrosoft.com.",
                }
            },
            "responses": responses(),
        },
    })
}

fn paths() -> Value {
    let alerts = json!({
        "get": {
            "summary": "Detections of the caller's tenant in a window, oldest first",
            "description": "Path and parameter names are case-insensitive and a trailing slash is allowed. With no window, the last two hours. Ordered by LastProcessedTimeUtc, then FullId. Needs the siem-read role.",
            "security": [{ "bearer": [] }],
            "parameters": [
                query("sinceTimeUtc", "Window start, inclusive: ISO 8601, up to 7 fractional digits, no zone means UTC; `yyyy-MM-dd HH:mm:ss` too.", false),
                query("untilTimeUtc", "Window end, exclusive; default now.", false),
                query("ago", "An ISO 8601 duration (PT10M, P1D, P1DT2H): the window [now - ago, now). Not with sinceTimeUtc or untilTimeUtc.", false),
                { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1 },
                  "description": "Only the newest N detections of the window, still oldest first." },
                query("machinegroups", "Repeatable: detections whose MachineGroup equals any value, ignoring case.", true),
                query("DeviceCreatedMachineTags", "One tag the device's tag list must hold.", false),
                query("CloudCreatedMachineTags", "Repeatable: any of these cloud tags.", true),
            ],
            "responses": {
                "200": {
                    "description": "A JSON array, `[]` when empty; gzip when asked for.",
                    "content": { "application/json; charset=utf-8": {
                        "schema": { "type": "array", "items": { "$ref": "#/components/schemas/Detection" } }
                    } },
                },
                "400": { "$ref": "#/components/responses/BadRequest" },
                "401": { "$ref": "#/components/responses/Unauthorized" },
                "403": { "$ref": "#/components/responses/Forbidden" },
                "429": { "$ref": "#/components/responses/TooManyRequests" },
                "500": { "$ref": "#/components/responses/ServerError" },
            },
        }
    });
    let mut alias = alerts.clone();
    alias["get"]["summary"] = json!("The same as /api/alerts");
    json!({
        "/api/alerts": alerts,
        "/api/alert": alias,
        "/api/detections": {
            "post": {
                "summary": "Store detections: a JSON array or NDJSON, one batch, whole or not at all",
                "description": "Missing identifiers and portal links are generated, LastProcessedTimeUtc is set by the server, a FullId the tenant already has counts as a duplicate. The answer comes once the batch is durable. Needs the ingest role.",
                "security": [{ "bearer": [] }],
                "requestBody": { "required": true, "content": {
                    "application/json": { "schema": { "type": "array", "items": { "$ref": "#/components/schemas/Detection" } } },
                    "application/x-ndjson": { "schema": { "type": "string" } },
                } },
                "responses": {
                    "200": { "description": "Stored", "content": { "application/json": {
                        "schema": { "$ref": "#/components/schemas/IngestReport" } } } },
                    "400": { "$ref": "#/components/responses/BadRequest" },
                    "401": { "$ref": "#/components/responses/Unauthorized" },
                    "403": { "$ref": "#/components/responses/Forbidden" },
                    "413": { "$ref": "#/components/responses/TooLarge" },
                    "429": { "$ref": "#/components/responses/TooManyRequests" },
                    "500": { "$ref": "#/components/responses/ServerError" },
                },
            }
        },
        "/{tenant}/oauth2/token": token("v1: `resource`; numbers written as strings"),
        "/{tenant}/oauth2/v2.0/token": token("v2: `scope`; numbers as numbers"),
        "/{tenant}/oauth2/authorize": authorize(),
        "/{tenant}/oauth2/v2.0/authorize": authorize(),
        "/{tenant}/.well-known/openid-configuration": document_route("OpenID configuration, v1"),
        "/{tenant}/v2.0/.well-known/openid-configuration": document_route("OpenID configuration, v2"),
        "/{tenant}/discovery/keys": document_route("Signing keys as a JWKS"),
        "/{tenant}/discovery/v2.0/keys": document_route("Signing keys as a JWKS"),
        "/common/discovery/keys": document_route("Signing keys as a JWKS"),
        "/common/discovery/instance": document_route("MSAL's instance discovery"),
        "/alert/{AlertId}": page("Portal: every detection of an alert (LinkToWDATP, LinkToMTP)",
            vec![json!({ "name": "AlertId", "in": "path", "required": true,
                         "schema": { "type": "string" } })]),
        "/incidents/byalert": page(
            "Portal: an alert's device and its other recent alerts (IncidentLinkToWDATP, IncidentLinkToMTP)",
            vec![json!({ "name": "alertId", "in": "query", "required": true,
                         "schema": { "type": "string" } })]),
        "/portal": page("Portal: who is signed in", vec![]),
        "/portal/signin": {
            "get": { "summary": "Portal sign-in page for tenant users",
                     "responses": { "200": html("The form") } },
            "post": { "summary": "Portal sign-in; sets the session cookie and returns to the page asked for",
                      "responses": { "303": { "description": "Signed in" },
                                     "400": html("The form again: a field is missing"),
                                     "401": html("The form again: wrong user name or password"),
                                     "403": html("The form again: a stale form or a disabled organization"),
                                     "429": html("Too many failed sign-ins") } },
        },
        "/portal/signout": { "post": { "summary": "Ends the portal session",
            "responses": { "303": { "description": "Signed out" } } } },
        "/healthz": text_route("`ok` while the process runs"),
        "/readyz": {
            "get": { "summary": "`ready` when the store answers", "responses": {
                "200": { "description": "ready", "content": { "text/plain": {} } },
                "503": { "description": "the store does not answer; the log says why",
                         "content": { "text/plain": {} } },
            } }
        },
        "/metrics": text_route("Prometheus metrics"),
        "/openapi.json": document_route("This document"),
    })
}

fn query(name: &str, description: &str, repeatable: bool) -> Value {
    let schema = if repeatable {
        json!({ "type": "array", "items": { "type": "string" } })
    } else {
        json!({ "type": "string" })
    };
    json!({ "name": name, "in": "query", "description": description, "schema": schema,
            "explode": true })
}

fn tenant_parameter() -> Value {
    json!({ "name": "tenant", "in": "path", "required": true, "schema": { "type": "string" },
            "description": "The tenant's GUID or one of its domain names" })
}

fn token(description: &str) -> Value {
    json!({ "post": {
        "summary": "Token endpoint: client_credentials, authorization_code (PKCE), refresh_token",
        "description": description,
        "parameters": [tenant_parameter()],
        "requestBody": { "required": true, "content": {
            "application/x-www-form-urlencoded": { "schema": { "type": "object" } } } },
        "responses": {
            "200": { "description": "Tokens", "content": { "application/json": {
                "schema": { "type": "object" } } } },
            "400": { "$ref": "#/components/responses/AadError" },
            "401": { "$ref": "#/components/responses/AadError" },
            "429": { "$ref": "#/components/responses/TooManyRequests" },
        },
    } })
}

fn authorize() -> Value {
    let page = json!({ "description": "The sign-in page", "content": { "text/html": {} } });
    json!({
        "get": { "summary": "The sign-in page of the authorization-code flow",
                 "parameters": [tenant_parameter()],
                 "responses": { "200": page, "400": page } },
        "post": { "summary": "The sign-in form; redirects to the app with `code` and `state`",
                  "parameters": [tenant_parameter()],
                  "responses": { "302": { "description": "Back to the app's redirect URI" },
                                 "200": page, "400": page, "429": page } },
    })
}

fn html(description: &str) -> Value {
    json!({ "description": description, "content": { "text/html": {} } })
}

/// A portal page: signed-in tenant users only, others are sent to sign in.
fn page(summary: &str, parameters: Vec<Value>) -> Value {
    json!({ "get": { "summary": summary, "parameters": parameters, "responses": {
        "200": html("The page"),
        "303": { "description": "Not signed in: to /portal/signin, and back after" },
        "404": html("No such alert in the signed-in user's tenant"),
    } } })
}

fn document_route(summary: &str) -> Value {
    json!({ "get": { "summary": summary, "responses": {
        "200": { "description": "A JSON document", "content": { "application/json": {} } } } } })
}

fn text_route(summary: &str) -> Value {
    json!({ "get": { "summary": summary, "responses": {
        "200": { "description": "Text", "content": { "text/plain": {} } } } } })
}

fn responses() -> Value {
    let api = |description: &str| {
        json!({ "description": description, "content": { "application/json": {
            "schema": { "$ref": "#/components/schemas/ApiError" } } } })
    };
    let mut unauthorized = api(
        "No token, or one that is forged, expired, not yet valid, for another audience or issuer, or of an unknown tenant",
    );
    unauthorized["headers"] = json!({ "WWW-Authenticate": { "schema": { "type": "string" },
        "description": "A Bearer challenge naming what was wrong (RFC 6750)" } });
    let mut too_many = api("A rate limit was exceeded");
    too_many["headers"] = json!({ "Retry-After": { "schema": { "type": "integer" },
        "description": "Seconds to wait" } });
    json!({
        "BadRequest": api("A parameter or record that does not parse or contradicts another; the message names it"),
        "Unauthorized": unauthorized,
        "Forbidden": api("The tenant is disabled or deleted, or the app lacks the role"),
        "TooLarge": api("The body is over the server's limit"),
        "TooManyRequests": too_many,
        "ServerError": api("A fault of the server; its log holds the cause"),
        "AadError": { "description": "Azure AD's error shape with an AADSTS code",
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/AadError" } } } },
    })
}

fn schemas() -> Value {
    json!({
        "Detection": detection_schema(),
        "ApiError": {
            "type": "object",
            "required": ["error"],
            "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": {
                "code": { "type": "string", "description": "Stable, for scripts: InvalidParameter, Unauthorized, InvalidToken, ExpiredToken, UnknownTenant, Forbidden, InvalidDetection, PayloadTooLarge, TooManyRequests, NotFound, MethodNotAllowed, InternalServerError" },
                "message": { "type": "string", "description": "What was wrong and what to do" },
            } } },
        },
        "IngestReport": {
            "type": "object",
            "properties": {
                "received": { "type": "integer" },
                "stored": { "type": "integer" },
                "duplicates": { "type": "integer" },
            },
        },
        "AadError": {
            "type": "object",
            "properties": {
                "error": { "type": "string" },
                "error_description": { "type": "string", "description": "Starts with AADSTSnnnn:" },
                "error_codes": { "type": "array", "items": { "type": "integer" } },
                "timestamp": { "type": "string" },
                "trace_id": { "type": "string" },
                "correlation_id": { "type": "string" },
            },
        },
    })
}

/// The 50 keys, in order, with the types the API writes them with.
fn detection_schema() -> Value {
    let mut properties = serde_json::Map::new();
    for key in KEYS {
        let schema = match key {
            "AlertPart" | "ReportID" => json!({ "type": "integer" }),
            "RemediationIsSuccess" | "WasExecutingWhileDetected" => {
                json!({ "type": ["boolean", "null"] })
            }
            _ => json!({ "type": "string" }),
        };
        properties.insert(key.to_string(), schema);
    }
    json!({
        "type": "object",
        "description": "One indicator of one alert; always all 50 keys, in this order.",
        "required": KEYS.as_slice(),
        "properties": properties,
    })
}
