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
