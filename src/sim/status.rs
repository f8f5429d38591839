//! Kubernetes-shaped error answers: a `Status` object with the real API server's wording.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::resources::Resource;

/// An error answer; converts into a `kind: Status` JSON response.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    code: StatusCode,
    reason: &'static str,
    message: String,
    details: serde_json::Value,
}

impl ApiError {
    /// `pods "x" not found`, as the real server words it.
    pub(crate) fn not_found(resource: Resource, name: &str) -> ApiError {
        let mut details = json!({"name": name, "kind": resource.plural()});
        if !resource.group().is_empty() {
            details["group"] = resource.group().into();
        }
        ApiError {
            code: StatusCode::NOT_FOUND,
            reason: "NotFound",
            message: format!("{} \"{name}\" not found", resource.plural()),
            details,
        }
    }

    /// A path the server does not serve.
    pub(crate) fn no_route() -> ApiError {
        ApiError {
            code: StatusCode::NOT_FOUND,
            reason: "NotFound",
            message: "the server could not find the requested resource".into(),
            details: json!({"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]}),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            code: StatusCode::BAD_REQUEST,
            reason: "BadRequest",
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    pub(crate) fn method_not_allowed(detail: &str) -> ApiError {
        ApiError {
            code: StatusCode::METHOD_NOT_ALLOWED,
            reason: "MethodNotAllowed",
            message: format!(
                "the server does not allow this method on the requested resource ({detail})"
            ),
            details: serde_json::Value::Null,
        }
    }

    /// The pod proxy could not reach the pod: the real server's 503 wording.
    pub(crate) fn service_unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            code: StatusCode::SERVICE_UNAVAILABLE,
            reason: "ServiceUnavailable",
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    /// A PATCH whose Content-Type is none of the three patch flavours.
    pub(crate) fn unsupported_media_type(content_type: &str) -> ApiError {
        ApiError {
            code: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            reason: "UnsupportedMediaType",
            message: format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got `{content_type}`)"
            ),
            details: serde_json::Value::Null,
        }
    }

    /// `Deployment.apps "x" is invalid: ...`: the written object fails validation (422).
    pub(crate) fn invalid(resource: Resource, name: &str, why: &str) -> ApiError {
        let qualified = if resource.group().is_empty() {
            resource.kind().to_string()
        } else {
            format!("{}.{}", resource.kind(), resource.group())
        };
        let mut details = json!({"name": name, "kind": resource.kind(), "causes": [{"reason": "FieldValueInvalid", "message": why}]});
        if !resource.group().is_empty() {
            details["group"] = resource.group().into();
        }
        ApiError {
            code: StatusCode::UNPROCESSABLE_ENTITY,
            reason: "Invalid",
            message: format!("{qualified} \"{name}\" is invalid: {why}"),
            details,
        }
    }

    /// A write based on a stale resourceVersion (409), worded as the real server does.
    pub(crate) fn conflict(resource: Resource, name: &str) -> ApiError {
        ApiError {
            code: StatusCode::CONFLICT,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                resource.plural()
            ),
            details: json!({"name": name, "kind": resource.plural()}),
        }
    }

    /// A DELETE whose `preconditions` do not match the object (409), worded as the real server.
    pub(crate) fn precondition_failed(
        resource: Resource,
        name: &str,
        field: &str,
        want: &str,
        got: &str,
    ) -> ApiError {
        ApiError {
            code: StatusCode::CONFLICT,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: {field} in precondition: {want}, {field} in object meta: {got}",
                resource.plural()
            ),
            details: json!({"name": name, "kind": resource.plural()}),
        }
    }

    /// The HTTP status code of the answer.
    pub(crate) fn code(&self) -> StatusCode {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        if !self.details.is_null() {
            body["details"] = self.details;
        }
        (self.code, Json(body)).into_response()
    }
}
