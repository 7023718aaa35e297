//! The API described for machines: the OpenAPI 3.1 document served at
//! `GET /api/openapi.json`.
//!
//! This module owns the document's assembly and nothing else. The operations come from
//! the `#[utoipa::path]` annotation beside each handler (each route file exports them
//! through its `openapi()`), and each operation's security requirement and standard
//! error answers (400, 401, 403, 413, 429, in this API's or OpenAI's error shape) are
//! derived here from the route's [`Access`] declaration in `server::api()`, the same
//! table the `authorize` layer enforces, so the two cannot drift. It never reads state
//! or configuration: the document is a function of the code.
//!
//! The gateway serves the document as generated into `docs/openapi.json`, not built at
//! run time: the code that builds it (about 0.45 MB, more than four times the document)
//! is then only in the tests, and the binary stays small. A unit test generates the
//! document and fails, naming the command that writes it again, when the committed file
//! differs.

use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{Method, header};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, ObjectBuilder, OpenApi, OpenApiBuilder, Ref, RefOr,
    ResponseBuilder, Schema, SecurityRequirement, Type,
};

use crate::server::api::Api;
use crate::server::auth::Access;

/// The name of the bearer security scheme in the document.
pub const BEARER: &str = "bearer";
/// The name of the `X-API-Key` security scheme in the document.
pub const API_KEY: &str = "api_key";
/// The schema of this API's errors, `{"error":{"code","message"}}`.
pub const ERROR_SCHEMA: &str = "Error";
/// The schema of OpenAI's errors, which the `/v1/*` routes answer in.
pub const OPENAI_ERROR_SCHEMA: &str = "OpenAIError";

pub fn api() -> Api {
    Api::new().route("/api/openapi.json", Access::Public, get(serve))
}

/// `GET /api/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    summary = "This API's OpenAPI 3.1 document",
    responses((status = 200, description = "The document", content_type = "application/json", body = Object))
)]
async fn serve() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        GENERATED,
    )
        .into_response()
}

/// [`document`]'s output for [`crate::server::api`], as `generated_document` writes it.
const GENERATED: &str = include_str!("../../docs/openapi.json");

/// The document for the gateway's routes, as served: compact JSON (pretty would double
/// its size in the binary) with a final newline.
pub fn generated_document() -> String {
    let doc = document(&crate::server::api());
    // Serializing plain maps and strings cannot fail.
    let mut text = serde_json::to_string(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// The annotated operations of every route file, merged.
fn operations() -> OpenApi {
    use crate::server::{
        agent_routes, approval_routes, audit_routes, auth_routes, channel_routes, chat_routes,
        dashboard_routes, device_routes, devices_routes, mcp_routes, openai, pairing_routes,
        provider_routes, routes, security_routes, usage_routes, ws,
    };
    let mut doc = OpenApiBuilder::new().build();
    for part in [
        routes::openapi(),
        ws::openapi(),
        auth_routes::openapi(),
        device_routes::openapi(),
        approval_routes::openapi(),
        chat_routes::openapi(),
        agent_routes::openapi(),
        usage_routes::openapi(),
        provider_routes::openapi(),
        pairing_routes::openapi(),
        devices_routes::openapi(),
        openai::openapi(),
        channel_routes::openapi(),
        mcp_routes::openapi(),
        security_routes::openapi(),
        audit_routes::openapi(),
        dashboard_routes::openapi(),
        self_description(),
    ] {
        doc.merge(part);
    }
    doc
}

fn self_description() -> OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(serve))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

/// The whole document for `api`'s routes: the annotated operations, each given the
/// security and the error answers its route's access declaration implies.
pub fn document(api: &Api) -> OpenApi {
    let mut doc = operations();
    doc.info = InfoBuilder::new()
        .title("aisopod")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "The HTTP API of an aisopod gateway. Authenticate with `Authorization: Bearer` \
             (a session token from /auth/login, an API token, or a paired device's token) \
             or with `X-API-Key: <API token>`. Errors are `{\"error\":{\"code\",\"message\"}}`; \
             the OpenAI-compatible routes (/v1/*) answer in OpenAI's error shape and the \
             device flow's token endpoints in RFC 6749's.",
        ))
        .build();
    let mut components = doc.components.take().unwrap_or_default();
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A session access token (from /auth/login), an API token, or a paired \
                     device's token",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        API_KEY,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-API-Key",
            "An API token",
        ))),
    );
    components
        .schemas
        .insert(ERROR_SCHEMA.into(), RefOr::T(error_schema()));
    components
        .schemas
        .insert(OPENAI_ERROR_SCHEMA.into(), RefOr::T(openai_error_schema()));
    doc.components = Some(components);

    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, operation) in operations_mut(item) {
            if let Some(access) = api.access().lookup(&method, path) {
                describe(operation, access, path);
            }
        }
    }
    doc
}

/// Every operation of a path item with its method.
pub fn operations_mut(item: &mut PathItem) -> Vec<(Method, &mut Operation)> {
    [
        (Method::GET, item.get.as_mut()),
        (Method::PUT, item.put.as_mut()),
        (Method::POST, item.post.as_mut()),
        (Method::DELETE, item.delete.as_mut()),
        (Method::PATCH, item.patch.as_mut()),
        (Method::HEAD, item.head.as_mut()),
        (Method::OPTIONS, item.options.as_mut()),
        (Method::TRACE, item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|o| (method, o)))
    .collect()
}

/// The security requirement that `access` means, as the document states it: none for
/// public routes; a bearer token or an API key otherwise, naming the scope if one is
/// needed (`admin` holds every scope).
pub fn security_of(access: Access) -> Vec<SecurityRequirement> {
    let scopes: Vec<&str> = match access {
        Access::Public | Access::Credentials => return Vec::new(),
        Access::Authenticated => Vec::new(),
        Access::Scope(scope) => vec![scope.as_str()],
    };
    vec![
        SecurityRequirement::new(BEARER, scopes.clone()),
        SecurityRequirement::new(API_KEY, scopes),
    ]
}

fn describe(operation: &mut Operation, access: Access, path: &str) {
    operation.security = Some(security_of(access));
    let note = match access {
        Access::Public => "No credential needed.".to_string(),
        Access::Credentials => {
            "No credential needed; attempts are rate limited per client address.".to_string()
        }
        Access::Authenticated => "Any valid credential.".to_string(),
        Access::Scope(scope) => format!(
            "Needs a credential with the `{}` scope (or `admin`).",
            scope.as_str()
        ),
    };
    operation.description = Some(match operation.description.take() {
        Some(text) if !text.is_empty() => format!("{text}\n\n{note}"),
        _ => note,
    });

    let shape = if path.starts_with("/v1/") {
        OPENAI_ERROR_SCHEMA
    } else {
        ERROR_SCHEMA
    };
    let has_body = operation.request_body.is_some();
    let mut answers: Vec<(&str, &str)> = Vec::new();
    if has_body {
        answers.push(("400", "The request is malformed or invalid"));
        answers.push(("413", "The request body is larger than the server accepts"));
    }
    answers.push(match access {
        Access::Public | Access::Credentials => (
            "401",
            "A credential was presented and is not valid (no credential is needed)",
        ),
        _ => ("401", "No credential, or one that is not valid"),
    });
    if let Access::Scope(_) = access {
        answers.push(("403", "The credential lacks the scope this route needs"));
    }
    if access != Access::Public {
        answers.push(("429", "Too many requests; `Retry-After` says when to retry"));
    }
    answers.push(("default", "Any other error"));
    let responses = &mut operation.responses.responses;
    for (status, description) in answers {
        responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(error_response(description, shape)));
    }
}

fn error_response(description: &str, schema: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build(),
        )
        .build()
}

fn string_property() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn error_schema() -> Schema {
    let detail = ObjectBuilder::new()
        .property("code", string_property().description(Some("A stable code")))
        .property(
            "message",
            string_property().description(Some("A message fit for the user")),
        )
        .required("code")
        .required("message");
    Schema::Object(
        ObjectBuilder::new()
            .property("error", detail)
            .required("error")
            .build(),
    )
}

fn openai_error_schema() -> Schema {
    let nullable_string = || {
        ObjectBuilder::new().schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
    };
    let detail = ObjectBuilder::new()
        .property("message", string_property())
        .property("type", string_property())
        .property("param", nullable_string())
        .property("code", nullable_string())
        .required("message")
        .required("type");
    Schema::Object(
        ObjectBuilder::new()
            .property("error", detail)
            .required("error")
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::scopes::Scope;

    #[test]
    fn a_scoped_operation_names_its_scope_and_its_refusals() {
        let doc = document(&crate::server::api());
        let item = doc.paths.paths.get("/api/v1/usage").cloned();
        let operation = item.and_then(|i| i.get).unwrap();
        assert_eq!(
            serde_json::to_value(&operation.security).unwrap(),
            serde_json::to_value(Some(security_of(Access::Scope(Scope::ChatRead)))).unwrap()
        );
        for status in ["401", "403", "429", "default"] {
            assert!(
                operation.responses.responses.contains_key(status),
                "no {status} answer"
            );
        }
    }

    /// Set to write `docs/openapi.json` again instead of failing when it differs.
    const WRITE_AGAIN: &str = "AISOPOD_WRITE_OPENAPI";

    #[test]
    fn the_served_document_is_the_one_the_handlers_declare() {
        let generated = generated_document();
        if generated == GENERATED {
            return;
        }
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
        if std::env::var_os(WRITE_AGAIN).is_some() {
            std::fs::write(path, &generated).unwrap();
            return;
        }
        let at = generated
            .bytes()
            .zip(GENERATED.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(generated.len().min(GENERATED.len()));
        let context = |text: &str| {
            let from = at.saturating_sub(60);
            text.char_indices()
                .skip_while(|(i, _)| *i < from)
                .take_while(|(i, _)| *i < at + 60)
                .map(|(_, c)| c)
                .collect::<String>()
        };
        panic!(
            "docs/openapi.json is not what the handlers declare; at byte {at} the handlers \
             give {:?} and the file {:?}. Write it again with `{WRITE_AGAIN}=1 cargo test \
             --lib server::openapi` and commit it",
            context(&generated),
            context(GENERATED)
        );
    }

    #[test]
    fn the_openai_routes_document_openai_errors() {
        let doc = document(&crate::server::api());
        let json = serde_json::to_value(&doc).unwrap();
        let schema = &json["paths"]["/v1/chat/completions"]["post"]["responses"]["401"]["content"]
            ["application/json"]["schema"]["$ref"];
        assert_eq!(schema, "#/components/schemas/OpenAIError");
    }
}
